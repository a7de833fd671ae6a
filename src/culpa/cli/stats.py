"""culpa stats — what the store holds: events per actor, dates, sources."""

from __future__ import annotations

from typing import Annotated

import typer

from culpa.cli.common import DbOption, JsonOption, app, emit_json, handle_errors, out, workspace


@app.command()
@handle_errors()
def stats(
    db: DbOption = None,
    json: JsonOption = False,
    top: Annotated[int, typer.Option(help="Actors to list in the table.")] = 20,
) -> None:
    """Summarise the store: events, date range, events per actor."""
    from rich.table import Table

    doc = workspace(db).stats()
    if json:
        emit_json(doc)
        return
    out.print(f"[bold]{doc['events']:,}[/bold] events from {doc['first_date']} to "
              f"{doc['last_date']} in {doc['db']}; {doc['unattributed']:,} unattributed")
    out.print("by source: " + ", ".join(f"{k} {v:,}" for k, v in doc["by_source"].items()))
    table = Table(title=f"Top {min(top, doc['n_actors'])} of {doc['n_actors']} actors")
    for col in ("actor", "events", "first", "last", "fatalities"):
        table.add_column(col, justify="right" if col in ("events", "fatalities") else "left")
    for a in doc["actors"][:top]:
        table.add_row(a["actor"], f"{a['events']:,}", a["first"], a["last"], f"{a['fatalities']:,}")
    out.print(table)
