"""culpa warn / forecast-backtest — early warning near watched sites, scored like a forecast.

Both use the attribution model itself (no second model): :mod:`culpa.model.forecast` integrates
its intensity over a place and the coming days; :mod:`culpa.evaluate.forecast_backtest` checks
those forecasts week by week against what happened and against two simple rules.
"""

from __future__ import annotations

import math
import time as _time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from culpa.cli.common import DbOption, JsonOption, app, emit_json, err, handle_errors, out, \
    resolve_db
from culpa.cli.modelling import default_model_path, load_events, parse_day
from culpa.errors import InputError

WarnModelOption = Annotated[Path | None, typer.Option(
    "--model", help="Fitted model (default: the one `culpa fit` saved beside the store if it "
                    "was fitted on data before --at, else a fit on the store's events before "
                    "--at).")]
LEVEL_STYLE = {"normal": "green", "elevated": "yellow", "high": "bold red"}


def _positive(value: float, flag: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"must be a positive number, got {value!r}", field=flag)
    return float(value)


def _model_for(db: Path, model_path: Path | None, at: pd.Timestamp, json: bool):
    """The model to forecast from, and where it came from.

    ``--model`` if given; else the model saved beside the store if it was fitted only on data
    before ``at`` (so that no later event shaped it); else a fit on the store's events before
    ``at``."""
    from culpa.model.hawkes import HawkesAttributor

    if model_path is not None:
        if not model_path.exists():
            raise InputError("no such model file", file=str(model_path))
        return HawkesAttributor.load(model_path), str(model_path)
    saved = default_model_path(db)
    if saved.exists():
        model = HawkesAttributor.load(saved)
        if _fitted_until(model) <= at:
            return model, str(saved)
    events = load_events(db, until=at)  # located events only; raises when there are none
    ctx = (err.status(f"fitting the model on {len(events):,} events before {at.date()} ...",
                      spinner="dots") if not json else nullcontext())
    with ctx:
        model = HawkesAttributor().fit(events)
    return model, f"fitted now on {len(events):,} events before {at.date()}"


def _fitted_until(model) -> pd.Timestamp:
    """The day after the last fitted event began (``t_end_`` can lie months later: it is the
    latest end of an event's date range)."""
    last = pd.Timestamp(np.max(np.asarray(model.fitted_events_.start, dtype="datetime64[s]")))
    return last.normalize() + pd.Timedelta(days=1)


def _recent_events(db: Path, model, at: pd.Timestamp) -> pd.DataFrame | None:
    """Store events before ``at`` that the model was not fitted on and that can still excite."""
    from culpa.events.store import Store

    # older events cannot excite any more (their kernel ends window_days after their date
    # range, at most a year wide); the model's own events are skipped by ``history``
    since = at - pd.Timedelta(days=float(model.window_days) + 400)
    if not db.exists():
        return None
    with Store(db, read_only=True) as store:
        ev = store.events_frame(since=since, until=at)
    return ev if len(ev) else None


@app.command()
@handle_errors()
def warn(
    sites_file: Annotated[Path, typer.Argument(
        help="Watch-list YAML: sites with name, lat, lon, radius_km (optional horizon_days).")],
    at: Annotated[str, typer.Option(
        "--at", help="First day of the horizon (YYYY-MM-DD); events dated before it excite.")],
    horizon_days: Annotated[float, typer.Option(
        "--horizon-days", help="Days ahead, for sites without their own horizon_days.")] = 7.0,
    db: DbOption = None,
    model_path: WarnModelOption = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Driving events to name per site.")] = 5,
    json: JsonOption = False,
) -> None:
    """Early warning: each actor's expected events near watched sites against the usual rate.

    Levels: high if for some actor ratio >= 3 and P(at least one) >= 0.2; elevated if ratio >= 1.5
    and P >= 0.05; else normal (ratio = expected / the site's long-run count for as many days).
    """
    from culpa.model import forecast as fc
    from culpa.sites import load_sites

    sites = load_sites(sites_file)
    when = parse_day(at, "--at")
    horizon = _positive(horizon_days, "--horizon-days")
    db = resolve_db(db)
    model, source = _model_for(db, model_path, when, json)
    extra = _recent_events(db, model, when)
    hist = fc.history(model, extra)
    forecasts = [fc.forecast_site(model, s, when, horizon, hist, top=top) for s in sites]
    doc = {"at": str(when.date()) if when == when.normalize() else when.isoformat(),
           "horizon_days": horizon,
           "sites": [f.to_dict() for f in forecasts],
           "model": {"source": source, "fitted_until": str(_fitted_until(model).date()),
                     "actors": len(model.actors_)},
           "levels": {name: {"min_ratio": r, "min_p_any": p} for name, r, p in fc.LEVELS}}
    if json:
        emit_json(doc)
        return
    table = Table(title=f"Early warning from {doc['at']} ({source})")
    for col in ("site", "level", "actor", "expected", "usual", "ratio", "P(≥1)"):
        table.add_column(col, justify="right" if col not in ("site", "level", "actor") else "left")
    for f in forecasts:
        style = LEVEL_STYLE[f.level]
        order = sorted(range(len(f.actors)), key=lambda k: -f.expected[k])[:3]
        for n, k in enumerate(order):
            table.add_row(
                f"{escape(f.site.name)} ({f.site.radius_km:g} km, {f.horizon_days:g} d)"
                if n == 0 else "",
                f"[{style}]{f.level}[/{style}]" if n == 0 else "", escape(f.actors[k]),
                f"{f.expected[k]:.2f}", f"{f.baseline[k]:.2f}", f"{f.ratio[k]:.1f}×",
                f"{f.p_any[k]:.0%}", end_section=n == len(order) - 1)
    out.print(table)
    for f in forecasts:
        if f.level == "normal":
            continue
        k = f.actors.index(f.level_actor)
        out.print(f"[{LEVEL_STYLE[f.level]}]{escape(f.site.name)}: {f.level}[/] for "
                  f"{escape(str(f.level_actor))} ({f.expected[k]:.2f} expected, usually "
                  f"{f.baseline[k]:.2f}; {f.excitation[k] / f.first_order[k]:.0%} from recent "
                  "events)" + (", driven by:" if f.drivers else ": its background rate"))
        for d in f.drivers:
            out.print(f"  {d['id']} {d['date']} {escape(d['actor'])} "
                      f"{d['distance_km']:.0f} km away: +{d['contribution']:.2f} expected "
                      f"({d['share']:.0%})")


@contextmanager
def _progress(enabled: bool):
    progress = Progress(TextColumn("[bold]forecasting[/bold] {task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} periods"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=err, transient=True, disable=not enabled)
    with progress:
        task = progress.add_task("", total=None)

        def update(done: int, total: int, description: str) -> None:
            progress.update(task, completed=done, total=total, description=description)

        yield update


def _lat_lon(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lat, lon = (float(v) for v in value.split(","))
    except ValueError:
        raise InputError(f"expected LAT,LON in degrees, got {value!r}", field="--plot-cell") \
            from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InputError(f"not a place: {value!r}", field="--plot-cell")
    return lat, lon


@app.command("forecast-backtest")
@handle_errors()
def forecast_backtest(
    since: Annotated[str, typer.Option("--since", help="First forecast day (YYYY-MM-DD).")],
    until: Annotated[str | None, typer.Option(
        "--until", help="Day after the last forecast period (default: after the last event).")]
    = None,
    horizon_days: Annotated[float, typer.Option("--horizon-days")] = 7.0,
    cell_km: Annotated[float, typer.Option("--cell-km", help="Side of the square cells.")] = 50.0,
    refit_days: Annotated[float, typer.Option(
        "--refit-days", help="Refit the model this often (the excitation is always brought up "
                             "to each forecast day).")] = 28.0,
    actors: Annotated[list[str] | None, typer.Option(
        "--actors", help="Actor to score (repeat the option); default: the two most active "
                         "before --since.")] = None,
    max_iter: Annotated[int | None, typer.Option(
        "--max-iter", min=1, help="EM iterations per fit (default: the model's own).")] = None,
    db: DbOption = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="PNG: forecasts against outcomes over time in one cell.")] = None,
    plot_cell: Annotated[str | None, typer.Option(
        "--plot-cell", help="LAT,LON of the cell to plot (default: the busiest cell).")] = None,
    json: JsonOption = False,
) -> None:
    """Score week-ahead forecasts per actor and cell against two baselines, fitting only on the
    past: previous period's count (calibrated on the training data) and the long-run rate."""
    from culpa.evaluate.forecast_backtest import pick_cell, plot_forecast, run_forecast_backtest

    start = parse_day(since, "--since")
    end = parse_day(until, "--until")
    _positive(horizon_days, "--horizon-days")
    _positive(cell_km, "--cell-km")
    _positive(refit_days, "--refit-days")
    where = _lat_lon(plot_cell)
    events = load_events(resolve_db(db))
    tick = _time.perf_counter()
    with _progress(enabled=not json and err.is_terminal) as update:
        result = run_forecast_backtest(events, start, horizon_days, cell_km, refit_days,
                                       actors=actors or None, until=end,
                                       model_params={} if max_iter is None else {"max_iter": max_iter},
                                       progress=update)
    doc = result.to_dict()
    doc["run_seconds"] = round(_time.perf_counter() - tick, 3)
    if plot is not None:
        cell = plot_forecast(result, plot, pick_cell(result, where))
        lat, lon = result.grid.centre(cell)
        doc["plot"] = {"file": str(plot), "cell_latitude": lat, "cell_longitude": lon}
    if json:
        emit_json(doc)
        return
    table = Table(title=f"{len(result.times)} forecasts of {result.horizon_days:g} days from "
                        f"{result.since} to {result.until}, {result.grid.n_cells} cells of "
                        f"{result.cell_km:g} km ({doc['n_forecasts']:,} per actor)")
    for col in ("actor", "method", "Brier", "log-loss", "AUROC", "avg precision"):
        table.add_column(col, justify="left" if col in ("actor", "method") else "right")
    rows = [(a, result.scores[a]) for a in result.actors] + [("all actors", doc["all_actors"])]
    for a, s in rows:
        for n, m in enumerate(("model", "previous_period", "long_run_rate")):
            v = s[m]
            table.add_row(f"{escape(a)} ({s['n_positive']} hits)" if n == 0 else "",
                          m.replace("_", " "), f"{v['brier']:.4f}", f"{v['log_loss']:.4f}",
                          _fmt(v["auroc"]), _fmt(v["average_precision"]), end_section=n == 2)
    out.print(table)
    out.print(f"{result.n_refits} fits ({result.fit_seconds:.0f} s), {doc['run_seconds']:.0f} s "
              "in all" + (f"; plot -> {plot}" if plot else ""))


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"
