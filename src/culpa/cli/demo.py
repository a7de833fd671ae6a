"""culpa demo — the main job end to end on the bundled real UCDP sample."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from culpa.cli.common import JsonOption, app, emit_json, handle_errors, out, status
from culpa.errors import InputError


@app.command()
@handle_errors()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its store and report.")] = Path(
        "culpa-demo"),
    json: JsonOption = False,
) -> None:
    """Ingest the bundled UCDP sample, fit the model, run the example case, write its report."""
    from culpa.api import Workspace
    from culpa.cli.case import print_summary
    from culpa.data import UCDP_CREDIT, sample_path

    if workdir.exists() and not workdir.is_dir():
        raise InputError("exists and is not a directory", file=str(workdir), field="--workdir")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the directory: {exc.strerror or exc}",
                         file=str(workdir), field="--workdir") from None
    ws = Workspace(workdir / "culpa.duckdb")
    ingest = ws.ingest([sample_path()])
    stats = ws.stats()
    if not json:
        out.print(f"[bold]1. ingest[/bold]  {ingest['rows']:,} UCDP GED events read "
                  f"({ingest['added']:,} new) -> {ws.db}")
        top = ", ".join(f"{a['actor']} ({a['events']:,})" for a in stats["actors"][:4])
        out.print(f"   {stats['events']:,} events {stats['first_date']} .. {stats['last_date']}; "
                  f"most active: {top}")

    with status(not json) as progress:
        progress("2. fitting the model")
        fitted = ws.fit(progress=progress)
    if not json:
        out.print(f"[bold]2. fit[/bold]     {fitted['n_events']:,} events, "
                  f"{fitted['n_actors']} actors, {fitted['n_iter']} EM iterations, "
                  f"{fitted['fit_seconds']:.1f} s -> {fitted['model']}")

    case_file = Path(str(resources.files("culpa.data").joinpath("demo_case.yaml")))
    html = workdir / "report.html"
    with status(not json) as progress:
        progress("3. running the example case")
        doc = ws.case(case_file, html=html, progress=progress)
    if json:
        emit_json({"db": str(ws.db), "ingest": ingest, "stats": stats,
                   "model": fitted["model"], "fit_seconds": fitted["fit_seconds"],
                   "case_file": str(case_file), "case": doc, "report": str(html),
                   "credit": UCDP_CREDIT})
        return
    out.print(f"[bold]3. case[/bold]    {case_file}")
    print_summary(doc)
    out.print(f"\nOpen [bold]{html}[/bold] in a browser for the map, timeline and evidence chart.")
    out.print(f"[dim]{UCDP_CREDIT}[/dim]")
