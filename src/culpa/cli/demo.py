"""culpa demo — the main job end to end on the bundled real UCDP sample."""

from __future__ import annotations

import time
from contextlib import nullcontext
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from culpa.cli.common import JsonOption, app, emit_json, err, handle_errors, out


@app.command()
@handle_errors()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its store and report.")] = Path(
        "culpa-demo"),
    json: JsonOption = False,
) -> None:
    """Ingest the bundled UCDP sample, fit the model, run the example case, write its report."""
    from culpa.cli.case import print_summary
    from culpa.cli.modelling import default_model_path
    from culpa.data import UCDP_CREDIT, sample_path
    from culpa.events.store import Store
    from culpa.evidence.case import load_case
    from culpa.evidence.context import case_document
    from culpa.model.hawkes import HawkesAttributor
    from culpa.report.html import render_case_report

    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "culpa.duckdb"
    with Store(db) as store:
        report = store.ingest([sample_path()])
        stats = store.stats()
        events = store.events_frame()
    if not json:
        out.print(f"[bold]1. ingest[/bold]  {report.rows:,} UCDP GED events read "
                  f"({report.added:,} new) -> {db}")
        top = ", ".join(f"{a['actor']} ({a['events']:,})" for a in stats["actors"][:4])
        out.print(f"   {stats['events']:,} events {stats['first_date']} .. {stats['last_date']}; "
                  f"most active: {top}")

    t0 = time.perf_counter()
    with err.status("2. fitting the model ...") if not json else nullcontext():
        model = HawkesAttributor().fit(events)
    model_path = model.save(default_model_path(db))
    fit_seconds = time.perf_counter() - t0
    if not json:
        out.print(f"[bold]2. fit[/bold]     {len(events):,} events, {len(model.actors_)} actors, "
                  f"{model.n_iter_} EM iterations, {fit_seconds:.1f} s -> {model_path}")

    case_file = Path(str(resources.files("culpa.data").joinpath("demo_case.yaml")))
    the_case = load_case(case_file)
    with err.status("3. running the example case ...") if not json else nullcontext():
        doc = case_document(the_case, db)
    html = workdir / "report.html"
    render_case_report(doc, html)
    doc["report"] = str(html)
    if json:
        emit_json({"db": str(db), "ingest": report.to_dict(), "stats": stats,
                   "model": str(model_path), "fit_seconds": round(fit_seconds, 3),
                   "case_file": str(case_file), "case": doc, "report": str(html),
                   "credit": UCDP_CREDIT})
        return
    out.print(f"[bold]3. case[/bold]    {case_file}")
    print_summary(doc)
    out.print(f"\nOpen [bold]{html}[/bold] in a browser for the map, timeline and evidence chart.")
    out.print(f"[dim]{UCDP_CREDIT}[/dim]")
