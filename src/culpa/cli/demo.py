"""culpa demo — the main job end to end on the bundled real UCDP sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from culpa.cli.common import JsonOption, app, emit_json, handle_errors, out


@app.command()
@handle_errors()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its store and report.")] = Path(
        "culpa-demo"),
    json: JsonOption = False,
) -> None:
    """Ingest the bundled UCDP sample and summarise it."""
    from culpa.data import UCDP_CREDIT, sample_path
    from culpa.events.store import Store

    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "culpa.duckdb"
    with Store(db) as store:
        report = store.ingest([sample_path()])
        stats = store.stats()
    doc = {"db": str(db), "ingest": report.to_dict(), "stats": stats, "credit": UCDP_CREDIT}
    if json:
        emit_json(doc)
        return
    out.print(f"[bold]1. ingest[/bold]  {report.rows:,} UCDP GED events read, {report.added:,} new "
              f"-> {db}")
    top = ", ".join(f"{a['actor']} ({a['events']:,})" for a in stats["actors"][:5])
    out.print(f"[bold]2. stats[/bold]   {stats['events']:,} events {stats['first_date']} .. "
              f"{stats['last_date']}; most active: {top}")
    out.print(f"[dim]{UCDP_CREDIT}[/dim]")
