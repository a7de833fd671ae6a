"""culpa audit verify — does the team store's case history still hash-chain?"""

from __future__ import annotations

import typer

from culpa.cli.common import DbOption, JsonOption, app, emit_json, err, handle_errors, out, \
    resolve_db
from culpa.cli.serve import CasesOption

audit_app = typer.Typer(help="Check the case history.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@handle_errors()
def verify(db: DbOption = None, cases: CasesOption = None, json: JsonOption = False) -> None:
    """Exit 0 when every history entry chains to the one before; 1 naming the first that does
    not."""
    from culpa.team import default_cases_url
    from culpa.team.store import TeamStore

    with TeamStore(default_cases_url(resolve_db(db), cases)) as team:
        verdict = team.verify()
    if json:
        emit_json(verdict.to_dict())
    elif verdict.ok:
        out.print(f"history verified: {verdict.entries} entries chain")
    if not verdict.ok:
        err.print(f"[bold red]history broken:[/bold red] {verdict.reason}", highlight=False)
        raise typer.Exit(1)
