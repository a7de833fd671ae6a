"""Errors that faces turn into exit codes: bad input (2) versus a failed analysis (1)."""

from __future__ import annotations


class CulpaError(Exception):
    """Base class. ``exit_code`` is what the command line exits with."""

    exit_code = 1


class InputError(CulpaError):
    """Bad input or usage: a file, line and field a person can go and fix."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, path: str | None = None):
        # ``path`` is a key path inside a structured file, e.g. ``evidence[2].reliability``.
        self.file, self.line, self.field, self.path = file, line, field, path
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        if field:
            prefix += f"field '{field}': "
        if path:
            prefix += f"{path}: "
        super().__init__(prefix + message)
        self.detail = message


class ParameterError(InputError, ValueError):
    """A parameter of an estimator or a call is out of range: bad input (exit 2) and, as
    scikit-learn expects of bad parameters, a ``ValueError``."""


class AnalysisError(CulpaError):
    """The input was fine but the analysis could not be carried out (e.g. too little data)."""

    exit_code = 1


class IngestInterrupted(CulpaError):
    """An ingest was interrupted (Ctrl-C); ``committed`` says whether its events were kept.
    ``report``: the ingest's report (anything with ``added``), when it committed."""

    exit_code = 130

    def __init__(self, committed: bool, report=None):
        self.committed, self.report = committed, report
        if committed:
            added = report.added if report is not None else 0
            message = (f"interrupted after the ingest was committed: its {added:,} new events "
                       f"are in the store")
        else:
            message = "interrupted: nothing was ingested, the store is as it was"
        super().__init__(message)
