"""culpa case CASE.yaml — combine the model's prior with graded evidence; report it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from culpa.cli.common import DbOption, JsonOption, app, emit_json, handle_errors, out, status, \
    workspace


@app.command()
@handle_errors()
def case(
    case_file: Annotated[Path, typer.Argument(help="Case file (YAML).", metavar="CASE.yaml")],
    db: DbOption = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the report here.")] = None,
    json: JsonOption = False,
) -> None:
    """Who did it, given the event record and the evidence? Prior, posterior, break-even."""
    with status(not json) as progress:
        doc = workspace(db).case(case_file, html=html, progress=progress)
    if json:
        emit_json(doc)
        return
    print_summary(doc)


def print_summary(doc: dict) -> None:
    from rich.table import Table

    lead = doc["leading"]
    out.print(f"[bold]{doc['title']}[/bold]")
    out.print(f"Leading explanation: [bold green]{lead}[/bold green] "
              f"({doc['posterior'][lead]:.0%} after the evidence, {doc['prior'][lead]:.0%} from the "
              "event record alone)")
    if doc.get("model_note"):
        out.print(f"[yellow]{doc['model_note']}[/yellow]")
    table = Table()
    table.add_column("hypothesis")
    table.add_column("prior", justify="right")
    table.add_column("posterior", justify="right")
    table.add_column("without undisclosed", justify="right")
    for hid, p in doc["posterior"].items():
        table.add_row(hid, f"{doc['prior'][hid]:.1%}", f"{p:.1%}",
                      f"{doc['without_undisclosed']['posterior'][hid]:.1%}")
    out.print(table)
    for sentence in doc.get("break_even_text", []):
        out.print(f"• {sentence}")
    if doc.get("report"):
        out.print(f"report -> {doc['report']}")
