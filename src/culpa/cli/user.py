"""culpa user add|list|remove|token — the accounts of the team store."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from culpa.cli.common import DbOption, JsonOption, app, emit_json, handle_errors, out, resolve_db
from culpa.cli.serve import CasesOption

user_app = typer.Typer(help="Accounts: add, list, remove, token.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _team(db, cases):
    from culpa.team import default_cases_url
    from culpa.team.store import TeamStore

    return TeamStore(default_cases_url(resolve_db(db), cases))


@user_app.command("add")
@handle_errors()
def add(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    role: Annotated[str, typer.Option("--role", help="viewer | editor | admin")] = "viewer",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin.")] = False,
    db: DbOption = None,
    cases: CasesOption = None,
    json: JsonOption = False,
) -> None:
    """Add an account (the password from a prompt, or --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    with _team(db, cases) as team:
        made = team.add_user(name, role, password)
    if json:
        emit_json(made)
        return
    out.print(f"added {made['username']} ({made['role']})")


@user_app.command("list")
@handle_errors()
def list_(db: DbOption = None, cases: CasesOption = None, json: JsonOption = False) -> None:
    """The accounts and their roles."""
    with _team(db, cases) as team:
        users = team.list_users()
    if json:
        emit_json({"users": users})
        return
    for u in users:
        out.print(f"{u['username']}\t{u['role']}\t{u['created_at']}")


@user_app.command("remove")
@handle_errors()
def remove(name: Annotated[str, typer.Argument(metavar="NAME")], db: DbOption = None,
           cases: CasesOption = None, json: JsonOption = False) -> None:
    """Remove an account; its sessions and tokens stop working."""
    with _team(db, cases) as team:
        team.remove_user(name)
    if json:
        emit_json({"username": name, "removed": True})
        return
    out.print(f"removed {name}")


@user_app.command("token")
@handle_errors()
def token(name: Annotated[str, typer.Argument(metavar="NAME")], db: DbOption = None,
          cases: CasesOption = None, json: JsonOption = False) -> None:
    """A new API token for scripts: send it as 'Authorization: Bearer TOKEN'."""
    with _team(db, cases) as team:
        value = team.new_api_token(name)
    if json:
        emit_json({"username": name, "token": value})
        return
    out.print(value, highlight=False)
