"""culpa warn / forecast-backtest — early warning near watched sites, scored like a forecast.

Both use the attribution model itself (no second model): :mod:`culpa.model.forecast` integrates
its intensity over a place and the coming days; :mod:`culpa.evaluate.forecast_backtest` checks
those forecasts week by week against what happened, against two simple rules and against
boosted trees on lagged cell counts.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from culpa.cli.common import DbOption, JsonOption, app, emit_json, err, handle_errors, out, \
    status, workspace
from culpa.errors import InputError

WarnModelOption = Annotated[Path | None, typer.Option(
    "--model", help="Fitted model (default: the model of the store's events before --at, "
                    "fitted once and saved beside the store).")]
LEVEL_STYLE = {"normal": "green", "elevated": "yellow", "high": "bold red"}


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
    from rich.markup import escape
    from rich.table import Table

    with status(not json) as progress:
        doc = workspace(db).warn(sites_file, at, horizon_days, top=top, model_path=model_path,
                                 progress=progress)
    if json:
        emit_json(doc)
        return
    source = doc["model"]["source"]
    table = Table(title=f"Early warning from {doc['at']} ({source})")
    for col in ("site", "level", "actor", "expected", "usual", "ratio", "P(≥1)"):
        table.add_column(col, justify="right" if col not in ("site", "level", "actor") else "left")
    for f in doc["sites"]:
        style = LEVEL_STYLE[f["level"]]
        shown = list(f["actors"].items())[:3]
        for n, (actor, a) in enumerate(shown):
            table.add_row(
                f"{escape(f['name'])} ({f['radius_km']:g} km, {f['horizon_days']:g} d)"
                if n == 0 else "",
                f"[{style}]{f['level']}[/{style}]" if n == 0 else "", escape(actor),
                f"{a['expected']:.2f}", f"{a['baseline']:.2f}", f"{a['ratio']:.1f}×",
                f"{a['p_any']:.0%}", end_section=n == len(shown) - 1)
    out.print(table)
    for f in doc["sites"]:
        if f["level"] == "normal":
            continue
        a = f["actors"][f["level_actor"]]
        out.print(f"[{LEVEL_STYLE[f['level']]}]{escape(f['name'])}: {f['level']}[/] for "
                  f"{escape(str(f['level_actor']))} ({a['expected']:.2f} expected, usually "
                  f"{a['baseline']:.2f}; {a['excitation'] / (a['background'] + a['excitation']):.0%}"
                  " from recent events)"
                  + (", driven by:" if f["drivers"] else ": its background rate"))
        for d in f["drivers"]:
            out.print(f"  {d['id']} {d['date']} {escape(d['actor'])} "
                      f"{d['distance_km']:.0f} km away: +{d['contribution']:.2f} expected "
                      f"({d['share']:.0%})")


@contextmanager
def _progress(enabled: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    progress = Progress(TextColumn("[bold]forecasting[/bold] {task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} periods"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=err.real, transient=True, disable=not enabled)
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
    jobs: Annotated[int | None, typer.Option(
        "--jobs", min=1, help="Worker processes for the refits (default: one per core, at most "
                              "two; the result is the same).")] = None,
    db: DbOption = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="PNG: forecasts against outcomes over time in one cell.")] = None,
    plot_cell: Annotated[str | None, typer.Option(
        "--plot-cell", help="LAT,LON of the cell to plot (default: the busiest cell).")] = None,
    json: JsonOption = False,
) -> None:
    """Score week-ahead forecasts per actor and cell against three baselines, fitting only on the
    past: previous period's count (calibrated on the training data), the long-run rate and
    gradient-boosted trees on lagged cell counts."""
    import time as _time

    tick = _time.perf_counter()
    with _progress(enabled=not json and err.is_terminal) as update:
        doc = workspace(db).forecast_backtest(
            since, until, horizon_days, cell_km, refit_days, actors=actors or None, plot=plot,
            plot_cell=_lat_lon(plot_cell), progress=update, n_jobs=jobs,
            **({} if max_iter is None else {"max_iter": max_iter}))
    doc["run_seconds"] = round(_time.perf_counter() - tick, 3)
    if json:
        emit_json(doc)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{doc['n_periods']} forecasts of {doc['horizon_days']:g} days from "
                        f"{doc['since']} to {doc['until']}, {doc['n_cells']} cells of "
                        f"{doc['cell_km']:g} km ({doc['n_forecasts']:,} per actor)")
    for col in ("actor", "method", "Brier", "log-loss", "AUROC", "avg precision"):
        table.add_column(col, justify="left" if col in ("actor", "method") else "right")
    rows = list(doc["actors"].items()) + [("all actors", doc["all_actors"])]
    for a, s in rows:
        for n, m in enumerate(("model", "previous_period", "long_run_rate", "lagged_gbm")):
            v = s[m]
            table.add_row(f"{escape(a)} ({s['n_positive']} hits)" if n == 0 else "",
                          m.replace("_", " "), f"{v['brier']:.4f}", f"{v['log_loss']:.4f}",
                          _fmt(v["auroc"]), _fmt(v["average_precision"]), end_section=n == 3)
    out.print(table)
    out.print(f"{doc['n_refits']} fits ({doc['fit_seconds']:.0f} s), {doc['run_seconds']:.0f} s "
              "in all" + (f"; plot -> {plot}" if plot else ""))


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"
