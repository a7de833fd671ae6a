"""culpa ingest FILE... — load event files into the store, all or nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from culpa.cli.common import (DbOption, JsonOption, app, emit_json, err, handle_errors,
                               out, workspace)
from culpa.errors import IngestInterrupted, InputError


def alias_files(explicit: list[Path] | None) -> list[Path]:
    files = list(explicit or [])
    env = os.environ.get("CULPA_ALIASES")
    if env:
        files += [Path(p) for p in env.split(os.pathsep) if p]
    return files


@app.command()
@handle_errors(fields={"pairs": "--map"})  # parse_mapping(pairs) takes the --map pairs
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Event files: CSV (plain or .gz) or Parquet.")],
    format: Annotated[str, typer.Option("--format", help="auto|ucdp|acled|gtd|csv")] = "auto",
    db: DbOption = None,
    aliases: Annotated[list[Path] | None, typer.Option(
        "--aliases", help="YAML file of extra actor aliases (canonical: [alias, ...]).")] = None,
    mapping: Annotated[list[str] | None, typer.Option(
        "--map", help="Generic CSV/Parquet column mapping, FIELD=COLUMN (repeatable).")] = None,
    mapping_file: Annotated[Path | None, typer.Option(
        "--mapping", help="Generic CSV/Parquet column mapping as YAML.")] = None,
    json: JsonOption = False,
) -> None:
    """Read event files (UCDP GED, ACLED, GTD or a mapped CSV/Parquet) into the store.

    Re-reading a file adds nothing; any bad row aborts the whole ingest and leaves the store
    as it was.
    """
    # Ctrl-C inside the ingest is reported by it (IngestInterrupted: committed or not); one
    # that lands here came before it began (nothing was done) or after it returned (done).
    done: dict = {}
    try:
        _ingest(files, format, db, aliases, mapping, mapping_file, json, done)
    except KeyboardInterrupt:
        if "doc" not in done:
            raise IngestInterrupted(committed=False) from None
        raise IngestInterrupted(committed=True, report=_Added(done["doc"]["added"])) from None


class _Added:
    def __init__(self, added: int):
        self.added = added


def _ingest(files, format, db, aliases, mapping, mapping_file, json, done: dict) -> None:
    from culpa.cli.progress import byte_progress
    from culpa.events import readers

    if format not in readers.FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(readers.FORMATS)}",
                         field="--format")
    col_map = None
    if mapping or mapping_file:
        from culpa.events.readers.generic import parse_mapping

        col_map = parse_mapping(mapping or [], mapping_file)
    ws = workspace(db)
    total = sum(f.stat().st_size for f in files if f.is_file())
    with byte_progress("ingesting", total, enabled=not json) as advance:
        done["doc"] = doc = ws.ingest(files, format, aliases=alias_files(aliases),
                                      mapping=col_map, progress=advance)
    if json:
        emit_json(doc)
        return
    from rich.markup import escape

    for f in doc["files"]:
        differing = (f", [yellow]{f['differing_from_store']:,} differ from the store[/yellow]"
                     if f["differing_from_store"] else "")
        out.print(f"{escape(f['path'])}: [bold]{f['rows']:,}[/bold] {f['format']} events read, "
                  f"[green]{f['added']:,} new[/green]{differing}", highlight=False)
    out.print(f"{escape(doc['db'])}: {doc['events_in_store']:,} events in the store",
              highlight=False)
    warn_differing(doc)


def warn_differing(doc: dict) -> None:
    """Say (on stderr) which events the store already held with other content: it keeps its
    own version, so the files' version of them was not stored."""
    n, examples = doc["differing_from_store"], doc["differing_examples"]
    if not n:
        return
    from rich.markup import escape

    err.print(f"[yellow]warning:[/yellow] {n:,} event{'s' if n != 1 else ''} of these files "
              f"{'are' if n != 1 else 'is'} already in the store with other content; the store "
              f"keeps its version (ingest into a new store to take the files' version):",
              highlight=False)
    for ex in examples:
        fields = "; ".join(f"{name} {v['here']!r} here, {v['stored']!r} in the store"
                           for name, v in ex["fields"].items())
        err.print(escape(f"  {ex['id']} at {ex['file']} line {ex['line']} (stored from "
                         f"{ex['stored_file']} line {ex['stored_line']}): {fields}"),
                  highlight=False)
    if n > len(examples):
        err.print(f"  ... and {n - len(examples):,} more", highlight=False)
