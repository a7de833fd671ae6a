"""Faces that show a case: the self-contained HTML report (``render_case_report``)."""

from culpa.report.html import render_case_report, render_case_report_html

__all__ = ["render_case_report", "render_case_report_html"]
