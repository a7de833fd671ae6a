"""culpa fit / attribute / chain / backtest — the attribution model's verbs."""

from __future__ import annotations

import time as _time
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table
from rich.tree import Tree

from culpa.cli.common import (DbOption, JsonOption, app, emit_json, err, handle_errors, out,
                              resolve_db)
from culpa.errors import AnalysisError, InputError

SinceOption = Annotated[str | None, typer.Option("--since", help="First day (YYYY-MM-DD).")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Day after the last (YYYY-MM-DD).")]
ModelOption = Annotated[Path | None, typer.Option(
    "--model", help="Fitted model (default: the one `culpa fit` saved beside the store).")]


def default_model_path(db: Path) -> Path:
    return db.with_name(db.name + ".model.npz")


def parse_day(value: str | None, flag: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InputError(f"not a date: {value!r} (use YYYY-MM-DD)", field=flag) from None


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        w, s, e, n = (float(v) for v in value.split(","))
    except ValueError:
        raise InputError(f"expected W,S,E,N in degrees, got {value!r}", field="--bbox") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InputError(f"not a box: {value!r} (W<E, S<N, in range)", field="--bbox")
    return w, s, e, n


def load_events(db: Path, since=None, until=None, bbox=None) -> pd.DataFrame:
    from culpa.events.store import Store

    with Store(db, read_only=True) as store:
        events = store.events_frame(since=since, until=until, bbox=bbox)
    if events.empty:
        raise AnalysisError("no events in the store for that selection")
    return events


@app.command()
@handle_errors()
def fit(
    db: DbOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    bbox: Annotated[str | None, typer.Option("--bbox", help="W,S,E,N in degrees.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Where to save the model.")] = None,
    json: JsonOption = False,
) -> None:
    """Fit the attribution model (multi-actor spatio-temporal Hawkes, EM) and save it."""
    from culpa.model.hawkes import HawkesAttributor

    db = resolve_db(db)
    events = load_events(db, parse_day(since, "--since"), parse_day(until, "--until"),
                         parse_bbox(bbox))
    t0 = _time.perf_counter()
    with err.status(f"fitting on {len(events):,} events ...", spinner="dots") if not json \
            else nullcontext():
        model = HawkesAttributor().fit(events)
    seconds = _time.perf_counter() - t0
    path = out_path or default_model_path(db)
    model.save(path)
    branching, persistence = model.actor_means(model.branching_ratio_), \
        model.actor_means(model.mark_persistence_)
    doc = {"model": str(path), "n_events": len(events), "n_actors": len(model.actors_),
           "actors": list(model.actors_), "processes": list(model.processes_),
           "n_iter": int(model.n_iter_),
           "fit_seconds": round(seconds, 3), "log_likelihood": float(model.log_likelihood_[-1]),
           "decay_days": float(1.0 / model.omega_), "sigma_km": float(model.sigma_km_),
           "branching_ratio": dict(zip(model.actors_, map(float, branching))),
           "mark_persistence": dict(zip(model.actors_, map(float, persistence))),
           "process_branching_ratio": dict(zip(model.processes_,
                                               map(float, model.branching_ratio_)))}
    if json:
        emit_json(doc)
        return
    out.print(f"fitted on [bold]{len(events):,}[/bold] events, {len(model.actors_)} actors, "
              f"{model.n_iter_} EM iterations in {seconds:.1f} s -> {path}")
    out.print(f"  triggering: mean delay {doc['decay_days']:.1f} days, spatial spread "
              f"{doc['sigma_km']:.1f} km")
    top = sorted(doc["branching_ratio"].items(), key=lambda kv: -kv[1])[:5]
    out.print("  branching ratio (events triggered per event): "
              + ", ".join(f"{a} {b:.2f}" for a, b in top))
    big = [a for a, _ in top if a in doc["mark_persistence"]]
    out.print("  triggered events repeating their trigger's type and target: "
              + ", ".join(f"{a} {doc['mark_persistence'][a]:.0%}" for a in big))


def _load_or_fit(db: Path, model_path: Path | None, json: bool):
    from culpa.model.hawkes import HawkesAttributor

    path = model_path or default_model_path(db)
    if path.exists():
        return HawkesAttributor.load(path)
    if model_path is not None:
        raise InputError("no such model file", file=str(model_path))
    if not json:
        err.print(f"[yellow]no saved model at {path}; fitting one now (run `culpa fit` to keep "
                  "it)[/yellow]")
    return HawkesAttributor().fit(load_events(db))


@app.command()
@handle_errors()
def attribute(
    lat: Annotated[float, typer.Option("--lat", help="Latitude in degrees.", min=-90, max=90)],
    lon: Annotated[float, typer.Option("--lon", help="Longitude in degrees.", min=-180, max=180)],
    time: Annotated[str, typer.Option("--time", help="When (YYYY-MM-DD or ISO datetime).")],
    db: DbOption = None,
    model_path: ModelOption = None,
    precision_km: Annotated[float | None, typer.Option(
        "--precision-km", min=0, help="How exactly the place is known, km (default: exactly).")
    ] = None,
    event_type: Annotated[str | None, typer.Option("--event-type")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", help="Who was attacked or fought (e.g. 'Civilians', 'SDF').")] = None,
    fatalities: Annotated[int | None, typer.Option("--fatalities", min=0)] = None,
    top: Annotated[int, typer.Option("--top", help="Earlier events to show per actor.")] = 5,
    json: JsonOption = False,
) -> None:
    """Who did it? Ranked probabilities for an event at a place and time, with the reasons."""
    when = parse_day(time, "--time")
    model = _load_or_fit(resolve_db(db), model_path, json)
    doc = model.explain(when, lat, lon, precision_km=precision_km, event_type=event_type,
                        fatalities=fatalities, top=top, target=target)
    if json:
        emit_json(doc)
        return
    table = Table(title=f"Who acted at {lat:.4f}, {lon:.4f} on {when.date()}?")
    for col in ("actor", "probability", "background share", "main reasons"):
        table.add_column(col)
    shown = [a for a in doc["actors"] if a["probability"] >= 0.001][:10] or doc["actors"][:1]
    for a in shown:
        reasons = "; ".join(f"{e['id']} {e['date']} {e['distance_km']:.0f} km "
                            f"({e['share']:.0%})" for e in a["top_events"][:3]
                            if e["share"] >= 0.01)
        table.add_row(a["actor"], f"{a['probability']:.1%}", f"{a['background_share']:.0%}",
                      reasons or "its usual ground (background)")
    out.print(table)
    hidden = len(doc["actors"]) - len(shown)
    if hidden:
        out.print(f"[dim]{hidden} more actors below 0.1% (--json lists them all)[/dim]")


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
    model = _load_or_fit(resolve_db(db), model_path, json)
    doc = model.chain(event_id, depth=depth, min_proba=min_prob)
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


def _grow(node: Tree, items: list[dict], key: str) -> None:
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
    since: Annotated[str, typer.Option("--since", help="Mask labels from this day on.")] = "2018-01-01",
    mask_fraction: Annotated[float, typer.Option("--mask-fraction")] = 0.2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="Reliability diagram (PNG).")] = None,
    json: JsonOption = False,
) -> None:
    """Hide a share of known labels, infer them, and score the model against baselines."""
    from culpa.evaluate.backtest import plot_reliability, run_backtest

    events = load_events(resolve_db(db))
    parse_day(since, "--since")
    with err.status("fitting with masked labels ...", spinner="dots") if not json \
            else nullcontext():
        result = run_backtest(events, since, mask_fraction, seed)
    if plot is not None:
        plot_reliability(result, plot)
    doc = result.to_dict() | ({"plot": str(plot)} if plot else {})
    if json:
        emit_json(doc)
        return
    table = Table(title=f"{result.n_scored} masked events since {result.since} "
                        f"({len(result.classes)} classes)")
    for col in ("", "top-1", "log-loss", "Brier", "ECE"):
        table.add_column(col, justify="right")
    for name, s in {"model": result.model, **result.baselines}.items():
        table.add_row(name, f"{s['top1']:.3f}", f"{s['log_loss']:.3f}", f"{s['brier']:.3f}",
                      f"{s['ece']:.3f}")
    out.print(table)
    out.print(f"fit: {result.fit_seconds:.1f} s" + (f"; reliability diagram -> {plot}" if plot else ""))
