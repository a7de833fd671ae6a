"""Forecasts from the fitted attribution model: how many events of each actor to expect in a
place over the coming days, against that place's long-run rate — the early-warning view.

There is no second model: everything below integrates the fitted
:class:`~culpa.model.hawkes.HawkesAttributor` intensity

    lambda_k(t, x) = mu_k(t) b_k(x) + sum_{j: t_j < t} Ex[j, k] g_j(t - t_j) h_j(x - x_j)

over a region ``D`` (a disc around a watched site, or a square cell) and a horizon
``[T, T + H]`` (days since the model's ``t0_``; ``T`` is the start of the horizon, e.g. midnight of
``--at``, and an event dated day ``d`` lies in ``[d, d + 1)`` with its time at the midpoint, as in
the fit). The history ``j`` is every event before ``T``: the fitted ones and, when the model is
older than ``T``, the events since its fit (:func:`history`; their ``Q`` is one-hot for labelled
events and ``predict_proba`` for the others, so they excite exactly as fitted events would).

First order (the expected number of events if none of the events *in* the horizon triggered
more):

    Lambda0_k = sum_e [int_T^{T+H} mu_k(t) psi_e(t) dt] [int_D b_ke(x) dx]
                + sum_j Ex[j, k] [Gbar_j(T + H - t_j) - Gbar_j(T - t_j)] P_j(D)

where the ground ``b_k(x, t) = sum_e psi_e(t) b_ke(x)`` may change slowly over epochs ``e`` (hat
functions ``psi`` between epoch centres; one epoch: a static ground).

- ``int mu_k psi_e``: exact (piecewise constant times piecewise linear); past the end of the
  fitted data the rate and the ground of the last observed time hold (:class:`BackgroundRates`:
  the model's ``t_end_`` can lie months past its last event, and its bins there hold only the
  prior);
- ``int_D b_k``: the background raster (bilinear, as the model looks it up) summed on a lattice
  of points inside the disc (spacing ``min(cell / 2, R / 20)``) plus the floor ``eps / |region|``
  times the disc's area; for square cells, the raster cells whose centres fall in the cell;
- ``Gbar_j``: the cumulative of the truncated exponential ``g_W`` averaged over the event's own
  date uncertainty ``+-u_j`` (the model's kernel for a query with an exact time), in closed form;
- ``P_j(D)``: the mass inside ``D`` of the spatial kernel ``h`` centred on ``x_j`` — a Gaussian of
  variance ``sigma^2 + s_j^2``, or a mixture of such Gaussians (``spatial_weights_``,
  ``spatial_sigmas_km_``) summed component by component — *truncated at* ``radius_km``, because the model's intensity only counts parents
  within ``radius_km`` of a place (:func:`culpa.model.kernels.query_intensity`). For a disc:
  ``ncx2.cdf(R^2 / v, 2, d^2 / v)`` (non-central chi-square, 2 dof) minus the part beyond
  ``radius_km``, a 1-D integral over the distance ``r`` from ``x_j`` of the Rayleigh density
  times the closed-form share of the circle of radius ``r`` that lies in the disc. For a square
  cell: products of ``erf`` differences when the kernel is narrow (``5 sd <= radius_km``: the
  truncation then moves under 1e-5 of its mass), else a polar quadrature inside ``radius_km``.

``P(at least one event) = 1 - exp(-Lambda0_k)``: exact for the probability that no event occurs
when no event in the horizon can excite another in ``D`` (the only excitation then is the history,
which ``Lambda0`` integrates), and otherwise a lower bound (events in the horizon only add
intensity).

Events triggered *within* the horizon by events of the horizon (the cascade) are added to the
expected count only, by one documented approximation: an event at a uniform time in the horizon
leaves a share ``c = Fbar(H) / H`` of its offspring inside it (``Fbar`` the integral of ``G_W``),
so the expected counts solve ``Lambda = Lambda0 + c alpha^T Lambda`` (``Lambda = Lambda0 / (1 -
c alpha_kk)`` for a diagonal ``alpha``), with the spectral radius of ``c alpha`` capped at
``CASCADE_CAP``; offspring are assumed to stay in ``D`` (an upper bound for small regions,
roughly balanced by offspring coming in from outside).

Baseline (the long-run rate of a site): the model's own expected number of events in ``D`` over
the whole fitted period — its compensator, ``int mu_k dt int_D b_k + sum_j Ex[j, k] Ghat_j
P_j(D)`` over every fitted event (this counts triggered events of every generation, since it
sums over the events that happened) — divided by the fitted period's length (first bin to the
day after the last event) and multiplied by ``H``. It is never zero (the background floor), so ``ratio = expected / baseline`` is finite.

Levels (per site, the highest over its actors; ``LEVELS``):

    =========  =====================================================
    level      rule for at least one actor
    =========  =====================================================
    high       ratio >= 3   and P(at least one event) >= 0.20
    elevated   ratio >= 1.5 and P(at least one event) >= 0.05
    normal     otherwise
    =========  =====================================================

The drivers of a site are the history events whose excitation adds most to the expected count
of the actor that sets its level (of all actors together when the level is normal): each with
its ``contribution`` (expected events it adds over the horizon, first order) and ``share`` of
that actor's first-order expected count. When the level comes from an actor's background rate
(e.g. an actor newly active in the area) there may be no drivers: ``background`` and
``excitation`` per actor say which.

Accessors wanted from ``HawkesAttributor`` (written here as functions of the model until it has
them): :func:`intensity` (``lambda_k`` at exact times and places) and the fitted events' arrays
(``_t``, ``_u``, ``_x``, ``_y``, ``_s2``, ``_Ex``, ``_Q``, ``_lab``, ``_ids``, ``_start``) and
background objects (``_temporal``, ``_spatial``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import ndtr
from scipy.stats import ncx2

from culpa.model import timekernel
from culpa.model.fitted import check_fitted
from culpa.model.frames import EventArrays, days_since
from culpa.model.geo import LocalProjection, haversine_km

#: Spectral radius allowed for the in-horizon cascade (``c alpha``).
CASCADE_CAP = 0.9
#: Level thresholds, most severe first: (level, minimum ratio, minimum P(at least one event)).
LEVELS = (("high", 3.0, 0.20), ("elevated", 1.5, 0.05))
NORMAL = "normal"
LEVEL_ORDER = {NORMAL: 0, "elevated": 1, "high": 2}
#: Gauss-Legendre nodes for the radial integrals of the truncated spatial kernel.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)


# ---------------------------------------------------------------------------------------------
# accessors on the fitted model


def days_since_t0(model, when) -> np.ndarray:
    """Time(s) in the model's frame: days since ``model.t0_`` (float)."""
    return days_since(pd.Series(np.atleast_1d(when)), model.t0_)


def intensity(model, time, lat, lon) -> np.ndarray:
    """``lambda_k(t, x)`` (n x K actors, events per day per km^2; an actor's processes summed)
    at exact times and places, the way
    ``predict_proba`` evaluates it (history strictly before each time, no mark term), with the
    background of :class:`BackgroundRates` and :func:`background_density` (the model's own up
    to the end of its data, held from then on).

    ``time``: datetimes, or floats already in days since ``model.t0_``."""
    check_fitted(model)
    t = np.asarray(time, dtype=float) if np.asarray(time).dtype.kind == "f" \
        else days_since_t0(model, time)
    lat, lon = np.atleast_1d(np.asarray(lat, float)), np.atleast_1d(np.asarray(lon, float))
    t = np.broadcast_to(t, lat.shape).astype(float)
    x, y = model.projection_.forward(lat, lon)
    _, trig = model.intensity_parts(t, lat, lon)
    bg = BackgroundRates.of(model).rate(t) * background_density(model, t, x, y)
    return model.by_actor(bg + trig)


# ---------------------------------------------------------------------------------------------
# the history: events that can excite the future


@dataclass
class History:
    """Events before the horizon that can excite it, in the model's frame (days since ``t0_``,
    km in its projection). ``Ex[j, p]``: what event ``j`` triggers in process ``p`` (the
    model's ``processes_``)."""

    t: np.ndarray
    u: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s2: np.ndarray
    Ex: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ids: np.ndarray
    date: np.ndarray  # datetime64[s] of time_start
    actor: np.ndarray  # index of the label, else of the most probable actor
    actor_probability: np.ndarray
    labelled: np.ndarray
    fitted: np.ndarray  # True for the model's own events
    t_start: np.ndarray  # days since t0_ of time_start (when the event became known)

    def __len__(self) -> int:
        return len(self.t)


def history(model, extra: pd.DataFrame | None = None) -> History:
    """The model's fitted events plus ``extra`` events (same schema as ``fit``) that it has not
    seen, e.g. those between its fit and the forecast time. Rows of ``extra`` with a missing
    latitude or longitude, or an id the model was fitted on, are skipped."""
    fe = model.fitted_events_
    lat, lon = model.projection_.inverse(fe.x, fe.y)
    lab = np.asarray(fe.labels)
    top, top_p = model.event_actors(fe.label_proba, lab)
    parts = [dict(t=fe.t, u=fe.u, x=fe.x, y=fe.y, s2=fe.s2, Ex=fe.excitation,
                  lat=lat, lon=lon, ids=np.asarray(fe.ids, dtype=object),
                  date=np.asarray(fe.start, dtype="datetime64[s]"), actor=top,
                  actor_probability=top_p, labelled=lab >= 0,
                  fitted=np.ones(len(top), bool))]
    parts[0]["t_start"] = ((parts[0]["date"] - model.t0_).astype(np.float64) / 86400.0)
    if extra is not None and len(extra):
        parts.append(_extra_history(model, extra))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return History(**out)


def _extra_history(model, ev: pd.DataFrame) -> dict:
    K = len(model.processes_)
    ev = ev[ev["latitude"].notna() & ev["longitude"].notna()]
    seen = set(map(str, model.fitted_events_.ids))
    ev = ev[~ev["id"].astype(str).isin(seen)].reset_index(drop=True)
    n = len(ev)
    if n == 0:
        return {k: v[:0] for k, v in _empty(K).items()}
    a = EventArrays.parse(ev)
    t, u = a.dates_since(model.t0_)
    x, y = model.projection_.forward(a.lat, a.lon)
    prec = np.where(np.isnan(a.location_precision), model.min_bandwidth_km,
                    a.location_precision)
    process = model.process_map_.index(model.process_names(a.actor, a.event_type, a.target))
    # labelled by an actor the model does not know: excites none of its processes (Q row 0)
    known = a.labelled & (process >= 0)
    Q = np.zeros((n, K))
    Q[known, process[known]] = 1.0
    latent = ~a.labelled
    if latent.any():
        Q[latent] = model.predict_process_proba(pd.DataFrame({
            "time": a.start[latent], "latitude": a.lat[latent], "longitude": a.lon[latent],
            "location_precision_km": prec[latent],
            "date_precision_days": a.date_precision[latent], "time_end": a.end[latent],
            "event_type": a.event_type[latent], "fatalities": a.fatalities[latent]}))
    top, top_p = model.event_actors(Q, np.full(n, -1))
    return dict(t=t, u=u, x=x, y=y, s2=prec ** 2, Ex=Q @ model.alpha_, lat=a.lat, lon=a.lon,
                ids=a.ids.astype(object), date=a.start.to_numpy(dtype="datetime64[s]"),
                actor=top, actor_probability=top_p, labelled=known,
                fitted=np.zeros(n, bool), t_start=days_since(a.start, model.t0_))


def _empty(K: int) -> dict:
    f = np.zeros(0)
    return dict(t=f, u=f, x=f, y=f, s2=f, Ex=np.zeros((0, K)), lat=f, lon=f,
                ids=np.zeros(0, object), date=np.zeros(0, "datetime64[s]"),
                actor=np.zeros(0, int), actor_probability=f, labelled=np.zeros(0, bool),
                fitted=np.zeros(0, bool), t_start=f)


# ---------------------------------------------------------------------------------------------
# time: the triggering kernel's mass in a window


def time_mass(lo, hi, t, u, omega: float, W: float) -> np.ndarray:
    """int_lo^hi g_u(t - t_j) dt: the share of each event's triggering kernel (the truncated
    exponential convolved with its date uncertainty U[-u_j, u_j]) that falls in [lo, hi]."""
    t, u = np.asarray(t, float), np.asarray(u, float)
    a, b = np.asarray(lo, float) - t, np.asarray(hi, float) - t
    uu = np.maximum(u, 1e-9)
    fuzzy = ((timekernel.cdf_integral(b + uu, omega, W) - timekernel.cdf_integral(b - uu, omega, W))
             - (timekernel.cdf_integral(a + uu, omega, W) - timekernel.cdf_integral(a - uu, omega, W))) / (2 * uu)
    sharp = timekernel.cdf(b, omega, W) - timekernel.cdf(a, omega, W)
    return np.clip(np.where(u > 1e-6, fuzzy, sharp), 0.0, 1.0)


def _excitation_window(hist: "History", T: float, H: float, W: float):
    """History events that can excite [T, T + H] and the part of it each one excites.

    An event counts when it began before ``T`` (it is known then). Its time is the midpoint of
    its date range, and, as in the model, it excites only after that time: from
    ``max(T, t_j)`` (an event that began before ``T`` but is dated over a range reaching past it
    starts exciting inside the horizon)."""
    cand = np.flatnonzero((hist.t_start < T) & (hist.t < T + H) & (hist.t > T - W - hist.u - 1.0))
    return cand, np.maximum(T, hist.t[cand])


@dataclass(frozen=True)
class BackgroundRates:
    """mu_k(t) as forecasts use it: the model's piecewise-constant rates up to the end of the
    observed data, and the last observed rate after it.

    The fitted bins run to the model's ``t_end_``, the latest *end* of an event's date range
    (``t + u``), which lies months past the last event when some events are dated only to a
    year. Bins past the last event then hold only the prior (``mu ~ tau / L``, near zero) and
    the bin holding the last event is diluted by the empty time after it. Here the rate of that
    bin is re-estimated over the time actually observed (its MAP count ``mu_b L_b`` over the
    observed part of ``L_b``, merged with the bin before when that part is under a quarter of a
    bin) and holds from then on; before it the model's rates are used unchanged. When the data
    run to ``t_end_`` this is exactly the model's ``mu_k(t)``."""

    edges: np.ndarray  # bin edges; the last bin is open-ended (+inf)
    mu: np.ndarray  # (K, n_bins)
    observed_end: float  # days since t0_: the day after the last fitted event began

    @classmethod
    def of(cls, model) -> "BackgroundRates":
        tb = model.temporal_background_
        edges, mu = np.asarray(tb.edges, float), np.asarray(tb.mu, float)
        last = np.max(np.asarray(model.fitted_events_.start, dtype="datetime64[s]")).astype(
            "datetime64[D]")
        end = float(((last + np.timedelta64(1, "D")).astype("datetime64[s]") - model.t0_)
                    .astype(np.float64) / 86400.0)
        end = min(max(end, float(edges[0]) + 1e-9), float(edges[-1]))
        b = int(np.clip(np.searchsorted(edges, end, side="left") - 1, 0, len(edges) - 2))
        lengths = np.diff(edges)
        observed = end - edges[b]
        mass = mu[:, b] * lengths[b]
        first = b
        if observed < 0.25 * float(model.background_bin_days) and b > 0:
            mass = mass + mu[:, b - 1] * lengths[b - 1]
            observed += lengths[b - 1]
            first = b - 1
        rate = mass / max(observed, 1e-9)
        new_edges = np.concatenate([edges[:first + 1], [np.inf]])
        new_mu = np.concatenate([mu[:, :first], rate[:, None]], axis=1)
        return cls(new_edges, new_mu, end)

    def rate(self, t) -> np.ndarray:
        """mu_k(t), (n x K)."""
        i = np.clip(np.searchsorted(self.edges, np.asarray(t, float), side="right") - 1, 0,
                    self.mu.shape[1] - 1)
        return self.mu[:, i].T

    def integral(self, a: float, b: float) -> np.ndarray:
        """int_a^b mu_k(t) dt per actor (exact)."""
        inner = self.edges[1:-1]
        cuts = np.concatenate([[a], inner[(inner > a) & (inner < b)], [b]])
        mids = 0.5 * (cuts[1:] + cuts[:-1])
        return self.rate(mids).T @ np.diff(cuts)


def _epochs(sb) -> np.ndarray:
    """Centres (days) of the epochs of the spatial background (one epoch: a static ground)."""
    return np.atleast_1d(np.asarray(getattr(sb, "epochs", [0.0]), float))


def _psi(sb, t) -> np.ndarray:
    """Weights of the epochs at times t, (n x E) (hat functions between epoch centres)."""
    t = np.atleast_1d(np.asarray(t, float))
    if len(_epochs(sb)) == 1:
        return np.ones((len(t), 1))
    return sb.psi(t)


def _kde_epoch(sb, x, y, e: int) -> np.ndarray:
    """KDE part (no floor) of every actor's ground in epoch e at points (x, y), (n x K)."""
    ep = _epochs(sb)
    if len(ep) == 1:
        return sb.kde(x, y)
    return sb.kde(x, y, None, np.full(len(x), ep[e]))


def background_density(model, t, x, y) -> np.ndarray:
    """b_k(x) at time t as forecasts use it, (n x K): the model's ground, held at the end of
    its data after it (like the rate, :class:`BackgroundRates`)."""
    sb = model.spatial_background_
    end = BackgroundRates.of(model).observed_end
    psi = _psi(sb, np.minimum(np.broadcast_to(np.asarray(t, float), np.shape(x)), end))
    kde = np.zeros((len(x), len(model.processes_)))
    for e in range(psi.shape[1]):
        if np.any(psi[:, e] > 0):
            kde += psi[:, e:e + 1] * _kde_epoch(sb, x, y, e)
    return (1.0 - sb.eps) * kde + sb.eps / sb.area


def background_weights(model, a: float, b: float) -> np.ndarray:
    """int_a^b mu_k(t) psi_e(t) dt, (E x K): the background rate over [a, b] shared among the
    epochs of the spatial ground (exact: mu is piecewise constant, psi piecewise linear, and
    both are held at the end of the data). With one epoch: int_a^b mu_k dt."""
    rates = BackgroundRates.of(model)
    sb = model.spatial_background_
    ep = _epochs(sb)
    inner = np.concatenate([rates.edges[1:-1], ep, [rates.observed_end]])
    cuts = np.unique(np.concatenate([[a], inner[(inner > a) & (inner < b)], [b]]))
    mids = 0.5 * (cuts[1:] + cuts[:-1])
    w = rates.rate(mids) * np.diff(cuts)[:, None]  # (pieces x K)
    psi = _psi(sb, np.minimum(mids, rates.observed_end))  # (pieces x E)
    return psi.T @ w


def cascade_factor(model, H: float) -> np.ndarray:
    """(I - c alpha^T)^-1 with c = Fbar(H) / H and the spectral radius of c alpha capped."""
    K = len(model.processes_)
    c = float(timekernel.cdf_integral(H, model.omega_, float(model.window_days))) / H
    M = c * np.asarray(model.alpha_, float)
    rho = float(np.max(np.abs(np.linalg.eigvals(M)))) if K else 0.0
    if rho > CASCADE_CAP:
        M *= CASCADE_CAP / rho
    return np.linalg.inv(np.eye(K) - M.T)


# ---------------------------------------------------------------------------------------------
# space: the spatial kernel's mass in a disc


def _circle_share_in_disc(r, d, R):
    """Share of the circle of radius r (centred at distance d from the disc's centre) inside
    the disc of radius R."""
    r, d = np.broadcast_arrays(np.asarray(r, float), np.asarray(d, float))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (r * r + d * d - R * R) / (2 * r * d)
    share = np.arccos(np.clip(np.nan_to_num(cos, nan=1.0), -1.0, 1.0)) / math.pi
    share = np.where(r + d <= R, 1.0, share)
    return np.where((r >= R + d) | (d >= r + R), 0.0, share)


def disc_mass(d, R: float, v, cutoff: float) -> np.ndarray:
    """Mass of N(x_j, v I) truncated to within ``cutoff`` of x_j, inside a disc of radius R whose
    centre is at distance d from x_j."""
    d, v = np.broadcast_arrays(np.asarray(d, float), np.asarray(v, float))
    full = np.where(d > 0, ncx2.cdf(R * R / v, 2, np.maximum(d * d / v, 1e-300)),
                    -np.expm1(-R * R / (2 * v)))
    # minus the part beyond the cutoff: r in [cutoff, d + R]
    lo = np.maximum(cutoff, np.abs(d - R))
    hi = d + R
    tail = np.zeros_like(d)
    # where the circle is wholly inside the disc (r <= R - d) beyond the cutoff: closed form
    inner_hi = np.where(d < R, R - d, 0.0)
    a = np.minimum(np.maximum(cutoff, 0.0), inner_hi)
    inside = (inner_hi > cutoff)
    tail += np.where(inside, np.exp(-a * a / (2 * v)) - np.exp(-inner_hi ** 2 / (2 * v)), 0.0)
    need = (hi > lo) & (np.exp(-lo * lo / (2 * v)) > 1e-14)
    if need.any():
        dn, vn, lon, hin = d[need], v[need], lo[need], hi[need]
        r = 0.5 * (hin - lon)[:, None] * _GL_X[None, :] + 0.5 * (hin + lon)[:, None]
        dens = r / vn[:, None] * np.exp(-r * r / (2 * vn[:, None]))
        f = _circle_share_in_disc(r, dn[:, None], R)
        tail[need] += 0.5 * (hin - lon) * ((dens * f) @ _GL_W)
    return np.clip(full - tail, 0.0, 1.0)


def spatial_kernel(model) -> tuple[np.ndarray, np.ndarray]:
    """(weights, variances km^2) of the Gaussians of the model's spatial triggering kernel h (one
    component with variance ``sigma_km_^2`` for a model without a mixture)."""
    if getattr(model, "spatial_weights_", None) is not None:
        return (np.asarray(model.spatial_weights_, float),
                np.asarray(model.spatial_sigmas_km_, float) ** 2)
    return np.ones(1), np.array([float(model.sigma_km_) ** 2])


def kernel_disc_mass(model, d, R: float, s2) -> np.ndarray:
    """P_j(D): mass of each event's kernel h (its own location variance ``s2`` added to every
    component, truncated at ``radius_km``) in a disc of radius R at distance d from it."""
    out = np.zeros(np.shape(d))
    for rho, sig2 in zip(*spatial_kernel(model)):
        out += rho * disc_mass(d, R, sig2 + np.asarray(s2, float), float(model.radius_km))
    return out


def disc_background(model, x: float, y: float, R: float) -> np.ndarray:
    """int_D b_ke(x) dx per epoch and actor, (E x K), for the disc of radius R about (x, y)
    (model frame): the raster on a lattice of points inside the disc plus the floor."""
    sb = model.spatial_background_
    h = min(sb.cell / 2.0, R / 20.0)
    n = int(math.ceil(R / h))
    g = (np.arange(-n, n) + 0.5) * h
    X, Y = np.meshgrid(g, g)
    keep = X * X + Y * Y <= R * R
    px, py = X[keep] + x, Y[keep] + y
    E = len(_epochs(sb))
    kde = np.zeros((E, len(model.processes_)))
    for e in range(E):
        for s in range(0, len(px), 200_000):
            kde[e] += _kde_epoch(sb, px[s:s + 200_000], py[s:s + 200_000], e).sum(0)
    area = math.pi * R * R
    kde *= area / len(px)  # each lattice point carries area / n_points (exact total area)
    return (1.0 - sb.eps) * kde + sb.eps / sb.area * area


# ---------------------------------------------------------------------------------------------
# sites


@dataclass(frozen=True)
class Site:
    name: str
    lat: float
    lon: float
    radius_km: float
    horizon_days: float | None = None


@dataclass
class SiteForecast:
    """The forecast for one site: per actor (arrays in ``actors`` order) and its drivers."""

    site: Site
    start: pd.Timestamp
    horizon_days: float
    actors: list[str]
    background: np.ndarray  # first-order background part
    excitation: np.ndarray  # first-order excitation by the history
    expected: np.ndarray  # with the in-horizon cascade
    baseline: np.ndarray  # long-run expected count for a window of the same length
    p_any: np.ndarray
    level: str
    level_actor: str | None
    drivers: list[dict] = field(default_factory=list)

    @property
    def first_order(self) -> np.ndarray:
        return self.background + self.excitation

    @property
    def ratio(self) -> np.ndarray:
        return self.expected / self.baseline

    def to_dict(self, min_expected: float = 0.0) -> dict:
        actors = {}
        for i in np.argsort(-self.expected, kind="stable"):
            if self.expected[i] < min_expected:
                continue
            actors[self.actors[i]] = {
                "expected": float(self.expected[i]), "baseline": float(self.baseline[i]),
                "ratio": float(self.ratio[i]), "p_any": float(self.p_any[i]),
                "background": float(self.background[i]),
                "excitation": float(self.excitation[i])}
        return {"name": self.site.name, "latitude": self.site.lat, "longitude": self.site.lon,
                "radius_km": self.site.radius_km, "horizon_days": self.horizon_days,
                "level": self.level, "level_actor": self.level_actor, "actors": actors,
                "drivers": self.drivers}


def level_of(ratio, p_any) -> str:
    """The level of one actor's forecast (see ``LEVELS``)."""
    for name, rmin, pmin in LEVELS:
        if ratio >= rmin and p_any >= pmin:
            return name
    return NORMAL


def long_run(model, x: float, y: float, R: float, H: float, bg_space=None) -> np.ndarray:
    """The model's expected count in the disc over its whole fitted period, scaled to H days."""
    rates = BackgroundRates.of(model)
    begin = float(model.temporal_background_.edges[0])
    span = rates.observed_end - begin
    if bg_space is None:
        bg_space = disc_background(model, x, y, R)
    bg = (background_weights(model, begin, rates.observed_end) * bg_space).sum(0)
    cutoff = float(model.radius_km)
    fe = model.fitted_events_
    d = np.hypot(fe.x - x, fe.y - y)
    near = np.flatnonzero(d < R + cutoff)
    ghat = timekernel.cdf(model.t_end_ - fe.t[near], model.omega_, float(model.window_days))
    P = kernel_disc_mass(model, d[near], R, fe.s2[near])
    exc = (fe.excitation[near] * (ghat * P)[:, None]).sum(0)
    return (bg + exc) * H / span


def forecast_site(model, site: Site, start, horizon_days: float = 7.0,
                  hist: History | None = None, top: int = 5) -> SiteForecast:
    """Expected events of every actor within ``site.radius_km`` of the site over
    ``[start, start + H days)`` (``H`` = the site's own horizon, else ``horizon_days``)."""
    check_fitted(model)
    H = float(site.horizon_days or horizon_days)
    start = pd.Timestamp(start)
    T = float(days_since_t0(model, start)[0])
    if hist is None:
        hist = history(model)
    x, y = (float(v[0]) for v in model.projection_.forward([site.lat], [site.lon]))
    R, W, cutoff = float(site.radius_km), float(model.window_days), float(model.radius_km)
    space_bg = disc_background(model, x, y, R)
    background = (background_weights(model, T, T + H) * space_bg).sum(0)
    # excitation by the history
    d = np.hypot(hist.x - x, hist.y - y)
    cand, lo = _excitation_window(hist, T, H, W)
    near = d[cand] < R + cutoff
    cand, lo = cand[near], lo[near]
    tm = time_mass(lo, T + H, hist.t[cand], hist.u[cand], model.omega_, W)
    P = kernel_disc_mass(model, d[cand], R, hist.s2[cand])
    contrib = hist.Ex[cand] * (tm * P)[:, None]  # (m, processes) expected events each adds
    expected = model.by_actor(cascade_factor(model, H) @ (background + contrib.sum(0)))
    baseline = model.by_actor(long_run(model, x, y, R, H, space_bg))
    background, contrib = model.by_actor(background), model.by_actor(contrib)
    excitation = contrib.sum(0)
    first = background + excitation
    p_any = -np.expm1(-first)
    ratio = expected / baseline
    level, level_actor = NORMAL, None
    for k in np.argsort(-ratio):
        lv = level_of(ratio[k], p_any[k])
        if LEVEL_ORDER[lv] > LEVEL_ORDER[level]:
            level, level_actor = lv, model.actors_[k]
    # drivers: the history events adding most to the expected count of the actor that sets
    # the level (of all actors together when the level is normal)
    if level_actor is not None:
        k_lv = model.actors_.index(level_actor)
        weight, total = contrib[:, k_lv], float(first[k_lv])
    else:
        weight, total = contrib.sum(1), float(first.sum())
    drivers = []
    for i in np.argsort(-weight, kind="stable")[:top]:
        if weight[i] <= 0 or weight[i] < 0.01 * weight.sum():
            break
        j = int(cand[i])
        k = int(hist.actor[j])
        drivers.append({
            "id": str(hist.ids[j]), "date": str(pd.Timestamp(hist.date[j]).date()),
            "actor": model.actors_[k], "actor_probability": float(hist.actor_probability[j]),
            "labelled": bool(hist.labelled[j]),
            "distance_km": float(haversine_km(site.lat, site.lon, hist.lat[j], hist.lon[j])),
            "days_before": float(T - hist.t_start[j]),
            "contribution": float(weight[i]),
            "share": float(weight[i] / total) if total > 0 else 0.0})
    return SiteForecast(site, start, H, list(model.actors_), background, excitation, expected,
                        baseline, p_any, level, level_actor, drivers)


# ---------------------------------------------------------------------------------------------
# square cells (the forecast backtest)


@dataclass(frozen=True)
class CellGrid:
    """Square cells of ``cell_km`` in a fixed local projection (independent of any model)."""

    projection: LocalProjection
    x0: float
    y0: float
    cell_km: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, lat, lon, cell_km: float) -> "CellGrid":
        proj = LocalProjection.about(lat, lon)
        x, y = proj.forward(lat, lon)
        x0 = math.floor(float(np.min(x)) / cell_km) * cell_km
        y0 = math.floor(float(np.min(y)) / cell_km) * cell_km
        nx = int(math.floor((float(np.max(x)) - x0) / cell_km)) + 1
        ny = int(math.floor((float(np.max(y)) - y0) / cell_km)) + 1
        return cls(proj, x0, y0, float(cell_km), nx, ny)

    @property
    def n_cells(self) -> int:
        return self.nx * self.ny

    def index_xy(self, x, y) -> np.ndarray:
        ix = np.floor((np.asarray(x) - self.x0) / self.cell_km).astype(np.int64)
        iy = np.floor((np.asarray(y) - self.y0) / self.cell_km).astype(np.int64)
        ok = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        return np.where(ok, iy * self.nx + ix, -1)

    def index(self, lat, lon) -> np.ndarray:
        """Flat cell index (row-major, y then x) of each point, -1 outside the grid."""
        return self.index_xy(*self.projection.forward(lat, lon))

    def centre(self, i: int) -> tuple[float, float]:
        iy, ix = divmod(int(i), self.nx)
        lat, lon = self.projection.inverse(self.x0 + (ix + 0.5) * self.cell_km,
                                           self.y0 + (iy + 0.5) * self.cell_km)
        return float(lat), float(lon)


def cell_background(model, grid: CellGrid) -> np.ndarray:
    """int_cell b_ke(x) dx, (E x n_cells x K): raster cells assigned by their centres."""
    sb = model.spatial_background_
    c = sb.cell
    gx = sb.x0 + (np.arange(sb.nx) + 0.5) * c
    gy = sb.y0 + (np.arange(sb.ny) + 0.5) * c
    X, Y = np.meshgrid(gx, gy)
    lat, lon = model.projection_.inverse(X.ravel(), Y.ravel())
    idx = grid.index(lat, lon)
    ok = np.flatnonzero(idx >= 0)
    M = sparse.csr_matrix((np.full(len(ok), c * c), (idx[ok], ok)),
                          shape=(grid.n_cells, sb.nx * sb.ny))
    rasters = np.asarray(sb.rasters)
    if rasters.ndim == 3:  # one epoch
        rasters = rasters[:, None]
    K, E = rasters.shape[:2]
    kde = np.stack([np.asarray(M @ rasters[:, e].reshape(K, -1).astype(np.float64).T)
                    for e in range(E)])
    return (1.0 - sb.eps) * kde + sb.eps / sb.area * grid.cell_km ** 2


def _cell_masses(grid: CellGrid, x, y, v, cutoff: float):
    """Sparse (n_events x n_cells) mass of each truncated Gaussian kernel in each cell."""
    n = len(x)
    sd = np.sqrt(v)
    rows, cols, vals = [], [], []
    narrow = np.flatnonzero(5.0 * sd <= cutoff)
    if len(narrow):
        ex = grid.x0 + grid.cell_km * np.arange(grid.nx + 1)
        ey = grid.y0 + grid.cell_km * np.arange(grid.ny + 1)
        cx = np.diff(ndtr((ex[None, :] - x[narrow, None]) / sd[narrow, None]), axis=1)
        cy = np.diff(ndtr((ey[None, :] - y[narrow, None]) / sd[narrow, None]), axis=1)
        m = cy[:, :, None] * cx[:, None, :]  # (n, ny, nx)
        j, iy, ix = np.nonzero(m > 1e-12)
        rows.append(narrow[j])
        cols.append(iy * grid.nx + ix)
        vals.append(m[j, iy, ix])
    wide = np.flatnonzero(5.0 * sd > cutoff)
    if len(wide):
        # polar quadrature inside the cutoff: Gauss-Legendre radii weighted by the Rayleigh
        # density, uniform angles; each node's weight goes to the cell it falls in
        nr, na = 24, 64
        xr, wr = np.polynomial.legendre.leggauss(nr)
        r = 0.5 * cutoff * (xr + 1.0)
        ang = (np.arange(na) + 0.5) * 2 * math.pi / na
        ox, oy = np.outer(r, np.cos(ang)).ravel(), np.outer(r, np.sin(ang)).ravel()
        vw = v[wide, None]
        dens = r[None, :] / vw * np.exp(-r[None, :] ** 2 / (2 * vw)) * (0.5 * cutoff * wr / na)
        w = np.repeat(dens, na, axis=1)  # (n_wide, nr * na), same order as ox, oy
        idx = grid.index_xy(x[wide, None] + ox[None, :], y[wide, None] + oy[None, :])
        ok = idx >= 0
        key = (np.arange(len(wide))[:, None] * grid.n_cells + idx)[ok]
        acc = np.bincount(key, weights=w[ok], minlength=len(wide) * grid.n_cells)
        nz = np.flatnonzero(acc)
        rows.append(wide[nz // grid.n_cells])
        cols.append(nz % grid.n_cells)
        vals.append(acc[nz])
    if not rows:
        return sparse.csr_matrix((n, grid.n_cells))
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                     np.concatenate(cols))),
                             shape=(n, grid.n_cells))


def forecast_cells(model, grid: CellGrid, T: float, H: float, hist: History,
                   cell_bg: np.ndarray | None = None) -> np.ndarray:
    """First-order expected counts ``Lambda0`` (n_cells x K actors) over ``[T, T + H]`` (days
    since the model's ``t0_``). ``cell_bg``: :func:`cell_background` of this model and grid
    (cache it)."""
    if cell_bg is None:
        cell_bg = cell_background(model, grid)
    out = np.einsum("eck,ek->ck", cell_bg, background_weights(model, T, T + H))
    W, cutoff = float(model.window_days), float(model.radius_km)
    cand, lo = _excitation_window(hist, T, H, W)
    if len(cand):
        tm = time_mass(lo, T + H, hist.t[cand], hist.u[cand], model.omega_, W)
        keep = tm > 0
        cand, tm = cand[keep], tm[keep]
        gx, gy = grid.projection.forward(hist.lat[cand], hist.lon[cand])
        M = None
        for rho, sig2 in zip(*spatial_kernel(model)):
            Mc = rho * _cell_masses(grid, np.asarray(gx), np.asarray(gy), sig2 + hist.s2[cand],
                                    cutoff)
            M = Mc if M is None else M + Mc
        out += np.asarray(M.T @ (hist.Ex[cand] * tm[:, None]))
    return model.by_actor(out)
