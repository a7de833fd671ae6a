"""culpa fit / attribute / chain / backtest — the attribution model's verbs.

Each gathers its options, makes one :class:`culpa.api.Workspace` call and prints the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from culpa.cli.common import (DbOption, JsonOption, app, emit_json, handle_errors, out, status,
                              workspace)

SinceOption = Annotated[str | None, typer.Option("--since", help="First day (YYYY-MM-DD).")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Day after the last (YYYY-MM-DD).")]
ModelOption = Annotated[Path | None, typer.Option(
    "--model", help="Fitted model (default: the one `culpa fit` saved beside the store).")]
ParamOption = Annotated[list[str] | None, typer.Option(
    "--param", help="Model hyperparameter NAME=VALUE (repeatable), e.g. process_by=actor.")]


def parse_params(values: list[str] | None) -> dict:
    """``--param NAME=VALUE`` options -> estimator parameters, checked against its own list."""
    from culpa.api import parse_param

    return dict(parse_param(v) for v in values or [])


@app.command()
@handle_errors()
def fit(
    db: DbOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    bbox: Annotated[str | None, typer.Option("--bbox", help="W,S,E,N in degrees.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Where to save the model.")] = None,
    param: ParamOption = None,
    json: JsonOption = False,
) -> None:
    """Fit the attribution model (multi-actor spatio-temporal Hawkes, EM) and save it."""
    params = parse_params(param)
    with status(not json) as progress:
        doc = workspace(db).fit(since, until, bbox, out=out_path, progress=progress, **params)
    if json:
        emit_json(doc)
        return
    out.print(f"fitted on [bold]{doc['n_events']:,}[/bold] events, {doc['n_actors']} actors, "
              f"{doc['n_iter']} EM iterations in {doc['fit_seconds']:.1f} s -> {doc['model']}")
    out.print(f"  triggering: mean delay {doc['decay_days']:.1f} days, spatial spread "
              f"{doc['sigma_km']:.1f} km")
    top = sorted(doc["branching_ratio"].items(), key=lambda kv: -kv[1])[:5]
    out.print("  branching ratio (events triggered per event): "
              + ", ".join(f"{a} {b:.2f}" for a, b in top))
    big = [a for a, _ in top if a in doc["mark_persistence"]]
    out.print("  triggered events repeating their trigger's type and target: "
              + ", ".join(f"{a} {doc['mark_persistence'][a]:.0%}" for a in big))


@app.command()
@handle_errors()
def attribute(
    lat: Annotated[float, typer.Option("--lat", help="Latitude in degrees, -90..90.")],
    lon: Annotated[float, typer.Option("--lon", help="Longitude in degrees, -180..180.")],
    time: Annotated[str, typer.Option("--time", help="When (YYYY-MM-DD or ISO datetime).")],
    db: DbOption = None,
    model_path: ModelOption = None,
    precision_km: Annotated[float | None, typer.Option(
        "--precision-km", help="How exactly the place is known, km (default: exactly).")
    ] = None,
    event_type: Annotated[str | None, typer.Option("--event-type")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", help="Who was attacked or fought (e.g. 'Civilians', 'SDF').")] = None,
    fatalities: Annotated[int | None, typer.Option("--fatalities", min=0)] = None,
    top: Annotated[int, typer.Option("--top", help="Earlier events to show per actor.")] = 5,
    json: JsonOption = False,
) -> None:
    """Who did it? Ranked probabilities for an event at a place and time, with the reasons."""
    from rich.table import Table

    with status(not json) as progress:
        doc = workspace(db).attribute(lat, lon, time, event_type=event_type, target=target,
                                      fatalities=fatalities, precision_km=precision_km, top=top,
                                      model_path=model_path, progress=progress)
    if json:
        emit_json(doc)
        return
    table = Table(title=f"Who acted at {lat:.4f}, {lon:.4f} on {doc['time'][:10]}?")
    pooled = "combiner" in doc
    columns = ["actor", "probability"] + (["Hawkes", "trees"] if pooled else []) + [
        "background share", "main reasons"]
    for col in columns:
        table.add_column(col)
    shown = [a for a in doc["actors"] if a["probability"] >= 0.001][:10] or doc["actors"][:1]
    for a in shown:
        reasons = "; ".join(f"{e['id']} {e['date']} {e['distance_km']:.0f} km "
                            f"({e['share']:.0%})" for e in a["top_events"][:3]
                            if e["share"] >= 0.01)
        members = ([f"{a['hawkes_probability']:.1%}", f"{a['trees_probability']:.1%}"]
                   if pooled else [])
        table.add_row(a["actor"], f"{a['probability']:.1%}", *members,
                      f"{a['background_share']:.0%}", reasons or "its usual ground (background)")
    out.print(table)
    if pooled:
        out.print(combiner_line(doc["combiner"]))
    hidden = len(doc["actors"]) - len(shown)
    if hidden:
        out.print(f"[dim]{hidden} more actors below 0.1% (--json lists them all)[/dim]")


def combiner_line(comb: dict) -> str:
    """How the probability column was made from the Hawkes and trees columns, in one line."""
    w = comb["weights"]
    agree = "agree" if comb.get("members_agree", True) else "disagree"
    return (f"[dim]probability ∝ Hawkes^{w['hawkes']:.2f} · trees^{w['trees']:.2f} "
            f"({comb['calibration']} calibration: {comb['why']}; the two {agree} on the "
            "most likely actor)[/dim]")


@app.command()
@handle_errors()
def chain(
    event_id: Annotated[str, typer.Argument(help="Event id, e.g. ucdp:214797.")],
    db: DbOption = None,
    model_path: ModelOption = None,
    depth: Annotated[int, typer.Option(min=1, max=10)] = 3,
    min_prob: Annotated[float, typer.Option("--min-prob", min=0, max=1)] = 0.05,
    json: JsonOption = False,
) -> None:
    """What followed what: an event's likely triggers and what it likely triggered."""
    from rich.tree import Tree

    with status(not json) as progress:
        doc = workspace(db).chain(event_id, depth=depth, min_prob=min_prob,
                                  model_path=model_path, progress=progress)
    if json:
        emit_json(doc)
        return
    root = Tree(f"[bold]{_label(doc)}[/bold] (background {doc['background_proba']:.0%})")
    _grow(root.add("[cyan]likely triggered by[/cyan]"), doc["parents"], "parents")
    _grow(root.add("[magenta]likely triggered[/magenta]"), doc["children"], "children")
    out.print(root)


def _label(e: dict) -> str:
    how = (f" p={e['probability']:.2f}, {e['days']:.0f} d, {e['distance_km']:.0f} km"
           if "probability" in e else "")
    who = e["actor"] if e.get("labelled") else f"{e['actor']}? ({e['actor_probability']:.0%})"
    return f"{e['id']} {e['date']} {who}{how}"


def _grow(node, items: list[dict], key: str) -> None:
    if not items:
        node.add("[dim]nothing above the threshold[/dim]")
    for item in items:
        branch = node.add(_label(item))
        for sub in item.get(key, []):
            _grow(branch, [sub], key)


@app.command()
@handle_errors()
def backtest(
    db: DbOption = None,
    since: Annotated[str, typer.Option(
        "--since", help="Score labelled events from this day on (masked: mask their labels; "
                        "forward: the first step).")] = "2018-01-01",
    mask_fraction: Annotated[float, typer.Option("--mask-fraction")] = 0.2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    mode: Annotated[str, typer.Option(
        "--mode", help="masked: hide a share of labels and infer them; forward: attribute each "
                       "step's events from a model that saw only the events before the step.")
    ] = "masked",
    until: Annotated[str | None, typer.Option(
        "--until", help="forward: day after the last step (default: after the last event).")
    ] = None,
    step_days: Annotated[float, typer.Option(
        "--step-days", help="forward: days per step.")] = 7.0,
    refit_every: Annotated[int | None, typer.Option(
        "--refit-every", help="forward: refit the parameters every N steps (in between the "
                              "model is conditioned on every event before each step); "
                              "default 13.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Reliability diagram (PNG).")] = None,
    param: ParamOption = None,
    json: JsonOption = False,
) -> None:
    """Score the model against baselines: hide a share of known labels and infer them
    (--mode masked), or attribute week by week from the past only (--mode forward)."""
    from rich.table import Table

    params = parse_params(param)
    ws = workspace(db)
    if mode == "forward":
        with _step_progress(not json) as progress:
            doc = ws.backtest(since, mask_fraction, seed, mode=mode, until=until,
                              step_days=step_days, refit_every=refit_every, plot=plot,
                              progress=progress, **params)
    else:
        with status(not json) as progress:
            doc = ws.backtest(since, mask_fraction, seed, mode=mode, plot=plot,
                              progress=progress, **params)
    if json:
        emit_json(doc)
        return
    if doc.get("mode") == "forward":
        title = (f"{doc['n_scored']} events attributed forward from {doc['since']} to "
                 f"{doc['until']}: {doc['n_steps']} steps of {doc['step_days']:g} days, "
                 f"{doc['n_refits']} fits ({len(doc['classes'])} classes)")
    else:
        title = (f"{doc['n_scored']} masked events since {doc['since']} "
                 f"({len(doc['classes'])} classes)")
    table = Table(title=title)
    for col in ("", "top-1", "log-loss", "Brier", "ECE"):
        table.add_column(col, justify="right")
    rows = {"model": doc["model"], **doc["baselines"]}
    if doc.get("combined"):
        rows["model x gbm (geometric mean)"] = doc["combined"]
    for name, s in rows.items():
        table.add_row(name, f"{s['top1']:.3f}", f"{s['log_loss']:.3f}", f"{s['brier']:.3f}",
                      f"{s['ece']:.3f}")
    out.print(table)
    out.print(f"fit: {doc['fit_seconds']:.1f} s" + (f"; reliability diagram -> {plot}" if plot else ""))


@contextmanager
def _step_progress(enabled: bool) -> Iterator[Callable]:
    """A Rich progress bar over the forward backtest's steps (stderr; silent with --json)."""
    from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from culpa.cli.common import err

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total} steps"), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=err.real, transient=True,
                   disable=not enabled or not err.is_terminal)
    with bar:
        task = bar.add_task("first fit", total=None)

        def update(stage: str, done: int = 0, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total, description=stage)

        yield update
