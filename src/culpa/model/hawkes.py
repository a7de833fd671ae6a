"""HawkesAttributor: a multi-actor spatio-temporal Hawkes process with latent labels, fitted by EM.

The model (DESIGN.md, "The model")
----------------------------------
For actor ``k`` at time ``t`` (days) and place ``x`` (km, local projection):

    lambda_k(t, x) = mu_k(t) b_k(x, t) + sum_{j: t_j < t} sum_l Q[j, l] alpha[l, k] g(t - t_j) h(x - x_j)

``Q[j, l]`` is P(event j was by actor l): one-hot for labelled events, learned for latent ones.
``b_k(x, t) = sum_e psi_e(t) b_ke(x)`` changes slowly between epochs (``background_epoch_days``,
hat-function interpolation; one epoch = the static ``b_k(x)`` of DESIGN.md).
The units ``k`` above are *processes*: by default (``process_by="kind"``) one per actor, event
type and target (``"IS|state-based|Government of Syria"``; targets with under
``PROCESS_MIN_TARGET`` events in the fit pooled as ``"*"``), each with its own ground, rate,
triggering and marks, and an attribution sums an actor's processes: ``P(actor) = sum_{k of
actor} lambda_k f_k / sum_k lambda_k f_k``. Where an actor fights the army, where it fights
another faction and where it kills civilians are different places (and times): one ground per
actor for all of them blurs exactly the distinction an attribution needs. A latent event may
take any process; its kind mark makes processes of other kinds unlikely (never impossible).
Measured on the Syria backtest (log-loss, seeds 0/1/2, and Iraq since 2016, seed 0):
``process_by="actor"`` 0.278/0.244/0.290 and 0.083, ``"type"`` 0.268/0.240/0.272 and 0.070,
``"kind"`` 0.259/0.234/0.259 and 0.070. On data whose types carry no information (the fit
benchmark's simulation) the extra processes only cost time: there ``process_by="actor"`` is the
model simulated.
Times are the midpoints of the date ranges (``u`` = half their width); events on the same day
may trigger one another in input order (their imprecise dates allow it), never with exact ties.
``g``, ``h``: see :mod:`culpa.model.kernels` (exponential in time, Gaussian in space with each
pair's own variance ``sigma^2 + s_i^2 + s_j^2``, date imprecision by convolution); ``b_k``,
``mu_k``: :mod:`culpa.model.background`; marks ``f_k(m)``: :mod:`culpa.model.marks`.

Objective and EM
----------------
EM maximises (and ``log_likelihood_`` records, once per iteration)

    J(theta, Q) = sum_i sum_k Q[i,k] (log lambda_k(t_i, x_i) + log f_k(m_i)) + sum_{latent} H(Q[i])
                  - sum_k int mu_k dt - sum_j sum_k (Q alpha)[j, k] Ghat_j + log priors

where ``Ghat_j = G_W(T - t_j)`` is the share of ``j``'s triggering kernel inside the observed
period (the spatial mass of h is taken as one) and the priors are the Dirichlet pseudo-counts of
the marks and the Gamma pseudo-count of ``mu``. When every label is known ``J`` is the
log-likelihood of the marked multi-type process. For a latent event with its parents' labels held
fixed, maximising ``J`` over ``Q[i]`` alone gives ``Q[i,k] ∝ lambda_k f_k`` and ``J`` becomes the
log-likelihood with ``i``'s label marginalised; ``J`` is the variational free energy of that
model, where parents excite in proportion to their label probabilities.

Every step below either maximises ``J`` exactly in a block of variables or maximises a minorising
surrogate of it, so ``J`` never decreases (tested):

E-step (one fused pass over the candidate pairs, :func:`culpa.model.kernels.estep`): the
  branching responsibilities — for child ``i`` in its label ``k`` — of the background,
  ``Q[i,k] mu_k b_k / lambda_k``, and of each candidate parent ``j`` acting as ``l``,
  ``Q[i,k] Q[j,l] alpha[l,k] g h / lambda_k``, summed into the M-step statistics.
M-step (conditional maximisations of the surrogate, in this order):
  - mark persistence (``mark_persistence``): a triggered event repeats its trigger's kind (type
    and target) with probability ``rho_k``, else draws it from ``f_k`` (see "Marks that persist"
    in :mod:`culpa.model.kernels`); ``rho_k = (copied_k + 1) / (copied_k + fresh_k + 2)``, the
    MAP under a Beta(2, 2) prior whose log density is part of ``J``;
  - marks: ``P(c|k) ∝ sum_i Q[i,k] [m_i = c] + a`` (for the kind channel, ``Q[i,k]`` less the
    share of ``i`` whose kind was copied from its trigger);
  - ``mu_kb = (sum_{i in bin b} phi_ik + tau + s_kb) / L_b`` with ``phi_ik`` the background
    resp. and ``s_kb`` the fixed pseudo-counts that shrink a process's rate towards its
    actor's activity (``ground_shrink``; 0 with one process per actor);
  - ``b_k``: a new weighted KDE of the background responsibilities (Zhuang-style declustering)
    is *proposed* and mixed in as ``(1 - eta) b_old + eta b_new`` with ``eta`` in [0, 1]
    maximising the background part of the surrogate, ``sum_i phi_ik log b_k(x_i)`` (concave in
    eta; 1-D Newton). A KDE step alone is not an M-step and can lower the likelihood; this
    line search keeps EM monotone while letting the KDE do the work;
  - ``alpha[l,k] = N[l,k] / sum_j Q[j,l] Ghat_j`` (diagonal unless ``cross_excitation``);
  - ``omega``: 1-D maximisation of ``Sw log omega - omega Sdt - Sw log(1 - e^{-omega W})
    - sum_j (Q alpha 1)_j G_W(T - t_j)``, with ``Sdt`` built from ``E[dt*]`` (date imprecision);
  - ``sigma^2 = Sdd / (2 Sw)`` (variance-component EM step for the imprecise locations; per
    component, with weights ``rho_c = Sc / Sw``, when the spatial kernel is a mixture).
  The background rendered at the fitted events is cross-fitted over alternating time blocks
  (:class:`culpa.model.background.CrossFitKDE`) so that a cluster cannot explain itself; a
  process's ground is shrunk towards its actor's (``ground_shrink`` pseudo-events).
Acceleration: SQUAREM (Varadhan & Roland 2008) extrapolates (mu, alpha, omega, sigma) from two
  EM steps; the extrapolated state is kept only if ``J`` does not drop, else the plain EM state
  is used — so the recorded ``J`` stays monotone. EM alone crawls along the ridge where
  background and triggering trade off (hundreds of iterations); this needs a few dozen.
Labels (latent events only): a Gauss–Seidel sweep over latent events, each updated by the exact
  maximiser of a surrogate of ``J`` in ``Q[j]`` that contains (1) its own evidence
  ``lambda_k(t_j, x_j) f_k(m_j)``, (2) the expected-offspring penalty ``exp(-Ghat_j sum_k
  alpha[l,k])`` and (3) the evidence of its offspring — children whose intensity in their own
  label is best explained by ``j`` acting as ``l`` pull ``Q[j]`` towards ``l`` (see
  :func:`culpa.model.kernels.label_sweep`). This is the "better" posterior: it uses the events
  that followed, stays monotone, and costs one pass over the latent events' children.

Attribution of a new event (``predict_proba``): ``P(k) ∝ lambda_k(t, x, m) f_k(m)`` from the
fitted history strictly before ``t`` (no offspring yet, by construction); with persistence, an
earlier event of the same kind nearby counts more than one of another kind. Measured on the
shared UCDP Syria data (``culpa backtest --since 2018-01-01 --mask-fraction 0.2``, seeds 0/1/2,
one process per actor, before the date fix): the kind mark with persistence took top-1 from
0.897/0.893/0.870 to 0.910/0.913/0.904 and log-loss from 0.325/0.332/0.360 to
0.302/0.254/0.300; the kind mark alone, without persistence, changed nothing
(0.895/0.897/0.870).

Persistence: :meth:`HawkesAttributor.save` writes one ``.npz`` holding plain arrays plus a JSON
metadata blob (stored as bytes), compressed; :meth:`HawkesAttributor.load` reads it with
``allow_pickle=False``. The fitted events needed for predictions are included; background rasters
that repeat (an actor's quiet epochs) are stored once.

Known limits (measured, see tests/test_model_recovery.py and benchmarks/bench_fit.py): where
background hotspots are as narrow as the triggering spread, the adaptive KDE absorbs part of the
triggered halo, so branching ratios and sigma come out low (5-20 % at 10k-100k simulated events,
more at extreme densities, where the pair budget also trims candidates); attribution accuracy is
much less affected. Convergence is declared on the relative gain of a plain EM step.
"""

from __future__ import annotations

import json
import math
import time as _time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from culpa.errors import AnalysisError, InputError, ParameterError
from culpa.events.schema import LABELLED_STATUSES
from culpa.model import kernels as kr
from culpa.model.background import (CrossFitKDE, SpatialBackground, TemporalBackground,
                                     knn_bandwidths, member_bandwidths)
from culpa.model.geo import LocalProjection
from culpa.model.marks import MARK_CHANNELS, MarkModel, clean_texts
from culpa.model.pairs import BYTES_PER_PAIR, GridIndex, build_pairs, reverse_index

FORMAT_VERSION = 3
#: Columns fit() requires; the others have defaults (see HawkesAttributor.fit).
REQUIRED_COLUMNS = ("id", "time_start", "latitude", "longitude", "actor", "attribution")
OPTIONAL_COLUMNS = {"time_end": None, "date_precision_days": 1.0, "location_precision_km": None,
                    "event_type": None, "target": None, "fatalities": np.nan,
                    "latent": False}


@dataclass(frozen=True)
class FittedEvents:
    """A fitted model's events in time order: ``t`` days since ``t0_`` (midpoint of the date
    range), ``u`` its half-width, ``x``/``y`` km in the model's projection, ``s2`` squared
    location precision, ``excitation[j, k]`` = sum_l Q[j, l] alpha[l, k] (what event j excites in
    actor k), ``label_proba`` Q (N x K), ``labels`` the known actor index or -1."""

    ids: np.ndarray
    start: np.ndarray
    t: np.ndarray
    u: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s2: np.ndarray
    excitation: np.ndarray
    label_proba: np.ndarray
    labels: np.ndarray


class NotFittedError(AnalysisError, SklearnNotFittedError):
    """The estimator is used before fit() (or load()); scikit-learn's NotFittedError too."""


def date_intervals(start_days, end_days, precision_days) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint and half-width (days) of when each event happened.

    The stated range is ``[start, end + 1 day)`` for dates (precision >= 1 day; an exact time
    when the precision is 0) and the event happened somewhere in it. A precision wider than the
    stated range (a source that gives one date and says "that week") widens the range
    symmetrically about the stated dates rather than shifting it: the event is no later or
    earlier than the dates say, on average. (Before, the range was anchored at ``start`` with the
    precision as its width: a UCDP event coded "within the year" but dated 21 Sep - 1 Nov sat in
    next March, where nothing near it could trigger it or be triggered by it.)
    """
    s, e = np.asarray(start_days, float), np.asarray(end_days, float)
    p = np.asarray(precision_days, float)
    stated = (e - s) + np.minimum(p, 1.0)
    return s + 0.5 * stated, 0.5 * np.maximum(p, stated)


def _days(ts: pd.Series, t0: np.datetime64) -> np.ndarray:
    v = pd.to_datetime(ts).to_numpy(dtype="datetime64[s]")
    return (v - t0).astype(np.float64) / 86400.0


class HawkesAttributor(BaseEstimator):
    """Multi-actor spatio-temporal Hawkes process with latent labels (EM / stochastic declustering).

    Parameters
    ----------
    window_days, radius_km : candidate parents are at most this far back in time and in space.
    max_iter, tol : EM stops after ``max_iter`` iterations or when the relative increase of the
        objective falls below ``tol``.
    cross_excitation : learn the full K x K ``alpha`` (else diagonal: actors excite themselves).
    min_bandwidth_km : smallest background kernel (also the background raster's cell).
    n_neighbors : the background bandwidth of an event is the distance to this nearest neighbour.
    background_bin_days : width of the piecewise-constant background rate ``mu_k(t)``.
    max_pair_memory_mb : memory the candidate pairs may take (12 bytes a pair); beyond it each
        event keeps only its nearest candidates in space and time (a warning says so).
    background_floor : share ``eps`` of every actor's spatial density spread over the region.
    mark_pseudo_count : Dirichlet pseudo-count of the mark distributions.
    spatial_components : Gaussians in the spatial triggering kernel (1). Two give it a heavier
        tail: a narrow component (the same village) and a wide one (the surrounding area).
        ``sigma_km_`` is then the RMS spread; ``spatial_sigmas_km_``/``spatial_weights_`` the parts.
    background_epoch_days : an actor's ground changes slowly (fronts move): its spatial
        background is interpolated between epochs this far apart, each a KDE of that period's
        background events shrunk towards the actor's all-time ground. None: one static ground.
    mark_channels : which marks inform the attribution (see :mod:`culpa.model.marks`):
        ``kind`` (event type and target), ``fatalities`` (band), ``precision`` (how exactly the
        source placed the event).
    mark_persistence : a triggered event repeats its trigger's kind (type and target) with
        probability ``rho_k`` (learned, ``mark_persistence_``), else draws it from the actor's
        marks: who an actor fights here and now follows who it fought here lately.
    process_by : how each actor is split into processes, each with its own ground, rate,
        triggering and marks, summed back into the actor for attributions: ``"actor"`` (one
        process per actor), ``"type"`` (per event type, ``"IS|one-sided"``) or ``"kind"`` (per
        event type and target, ``"IS|state-based|Government of Syria"``). ``processes_`` names
        them, ``process_actor_`` says whose; ``alpha_``, ``branching_ratio_``,
        ``mark_persistence_``, the backgrounds and ``fitted_events_`` are per process,
        ``predict_proba``, ``label_proba_``, ``explain`` and ``chain`` per actor
        (``actor_means`` averages a per-process quantity per actor).
    ground_shrink : when actors are split into processes, each process's spatial ground is
        shrunk towards its actor's with this many pseudo-events: a process with a handful of
        events keeps the shape of where its actor is (see :class:`CrossFitKDE`). Its rate
        ``mu_k(t)`` gets as many background pseudo-events, spread over time as its actor's
        activity: the SDF rarely kills civilians, but more likely when it is fighting nearby.
    ground_presence : an actor's ground (the one its processes are shrunk towards) also counts
        the events where it was the target, one pseudo-event each: where others fought the
        army or the SDF, the army or the SDF was. A target counts when its text is the
        actor's canonical name exactly.
    crossfit_block_days : the background is cross-fitted over alternating time blocks this
        long (None: ``window_days``), so that a burst of triggered events cannot explain
        itself as background; longer blocks also hide the weeks around an event from its
        own background, which is where the actors nearby are best known.
    accelerate : SQUAREM extrapolation of the global parameters between EM steps (kept only when
        the objective does not drop, so EM stays monotone). Plain EM crawls along the ridge
        where background and triggering trade off; this reaches the optimum in far fewer passes.
    verbose : print the objective at every iteration.
    """

    def __init__(self, window_days: float = 60.0, radius_km: float = 50.0, max_iter: int = 200,
                 tol: float = 1e-6, cross_excitation: bool = False, min_bandwidth_km: float = 1.0,
                 n_neighbors: int = 15, background_bin_days: float = 90.0,
                 max_pair_memory_mb: float = 1024.0, background_floor: float = 1e-3,
                 mark_pseudo_count: float = 1.0, spatial_components: int = 1,
                 background_epoch_days: float | None = 365.0,
                 accelerate: bool = True, mark_channels: tuple = MARK_CHANNELS,
                 mark_persistence: bool = True, process_by: str = "kind",
                 ground_shrink: float = 10.0, ground_presence: bool = True,
                 crossfit_block_days: float | None = 15.0,
                 verbose: bool = False):
        self.window_days = window_days
        self.radius_km = radius_km
        self.max_iter = max_iter
        self.tol = tol
        self.cross_excitation = cross_excitation
        self.min_bandwidth_km = min_bandwidth_km
        self.n_neighbors = n_neighbors
        self.background_bin_days = background_bin_days
        self.max_pair_memory_mb = max_pair_memory_mb
        self.background_floor = background_floor
        self.mark_pseudo_count = mark_pseudo_count
        self.spatial_components = spatial_components
        self.background_epoch_days = background_epoch_days
        self.accelerate = accelerate
        self.mark_channels = mark_channels
        self.mark_persistence = mark_persistence
        self.process_by = process_by
        self.ground_shrink = ground_shrink
        self.ground_presence = ground_presence
        self.crossfit_block_days = crossfit_block_days
        self.verbose = verbose

    # -----------------------------------------------------------------------------------------
    # parameters and fitted state

    def _check_params(self) -> None:
        for name in ("window_days", "radius_km", "min_bandwidth_km", "background_bin_days"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ParameterError(f"must be a positive number, got {v!r}", field=name)
        for name in ("background_epoch_days", "crossfit_block_days"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ParameterError(f"must be a positive number or None, got {v!r}", field=name)
        gs = self.ground_shrink
        if not (isinstance(gs, (int, float)) and np.isfinite(gs) and gs >= 0):
            raise ParameterError(f"must be a number >= 0, got {gs!r}", field="ground_shrink")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ParameterError(f"must be a positive integer, got {self.max_iter!r}",
                             field="max_iter")
        for name in ("n_neighbors", "spatial_components"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise ParameterError(f"must be a positive integer, got {v!r}", field=name)
        if not (self.tol >= 0):
            raise ParameterError(f"must be >= 0, got {self.tol!r}", field="tol")
        ch = tuple(self.mark_channels)
        if len(set(ch)) != len(ch) or not set(ch) <= set(MARK_CHANNELS):
            raise ParameterError(f"must be distinct names from {MARK_CHANNELS}, got {ch!r}",
                             field="mark_channels")
        if self.process_by not in self.PROCESS_BY:
            raise ParameterError(f"must be one of {self.PROCESS_BY}, got {self.process_by!r}",
                             field="process_by")
        if not (0 < self.background_floor < 1):
            raise ParameterError("must be in (0, 1)", field="background_floor")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "actors_")

    def _clear_fitted(self) -> None:
        """Forget everything a fit learned or cached: all but the parameters."""
        params = self.get_params(deep=False)
        for name in [k for k in vars(self) if k not in params]:
            delattr(self, name)

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("this HawkesAttributor is not fitted yet: call fit() or load()")

    # -----------------------------------------------------------------------------------------
    # input validation

    @staticmethod
    def _validate_frame(df, required, what: str) -> None:
        if not isinstance(df, pd.DataFrame):
            raise InputError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
        for col in required:
            if col not in df.columns:
                raise InputError(f"{what} has no column '{col}'", field=col)
        if len(df) == 0:
            raise InputError(f"{what} is empty")

    @staticmethod
    def _floats(df, col, *, lo=-np.inf, hi=np.inf, allow_nan=False, what="events") -> np.ndarray:
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) if not allow_nan else np.isinf(v)
        bad |= (v < lo) | (v > hi)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise InputError(f"{what} row {r}: {df[col].iloc[r]!r} is not a number in "
                             f"[{lo}, {hi}] ({int(bad.sum())} such rows)", field=col)
        return v

    @staticmethod
    def _times(df, col, what="events") -> pd.Series:
        try:
            ts = pd.to_datetime(df[col])
        except (ValueError, TypeError) as e:
            raise InputError(f"{what}: not a timestamp ({e})", field=col) from None
        if ts.isna().any():
            r = int(np.flatnonzero(ts.isna().to_numpy())[0])
            raise InputError(f"{what} row {r}: timestamp is missing", field=col)
        if ts.dt.tz is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts

    def _date_range(self, df, start_col: str, what: str) -> tuple[pd.Series, pd.Series]:
        """``start_col`` and ``time_end`` (default: the start), the end never before the start."""
        start = self._times(df, start_col, what)
        end = self._times(df, "time_end", what) if "time_end" in df.columns else start
        if (end < start).any():
            r = int(np.flatnonzero((end < start).to_numpy())[0])
            raise InputError(f"{what} row {r}: time_end is before {start_col}", field="time_end")
        return start, end

    def _event_arrays(self, df: pd.DataFrame) -> dict:
        self._validate_frame(df, REQUIRED_COLUMNS, "events")
        ids = df["id"].astype(object)
        if ids.isna().any():
            raise InputError(f"events row {int(np.flatnonzero(ids.isna())[0])}: id is missing",
                             field="id")
        ids = ids.astype(str).to_numpy()
        if len(set(ids)) != len(ids):
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
            raise InputError(f"events: id {dup!r} occurs more than once", field="id")
        start, end = self._date_range(df, "time_start", "events")
        lat = self._floats(df, "latitude", lo=-90, hi=90)
        lon = self._floats(df, "longitude", lo=-180, hi=180)
        n = len(df)
        dprec = (self._floats(df, "date_precision_days", lo=0, allow_nan=True)
                 if "date_precision_days" in df.columns else np.ones(n))
        dprec = np.where(np.isnan(dprec), 1.0, dprec)
        lprec = (self._floats(df, "location_precision_km", lo=0, allow_nan=True)
                 if "location_precision_km" in df.columns else np.full(n, np.nan))
        lprec_raw = lprec
        lprec = np.where(np.isnan(lprec), self.min_bandwidth_km, lprec)
        actor = df["actor"].astype(object).where(df["actor"].notna(), None)
        status = df["attribution"].astype(object)
        latent = (df["latent"].fillna(False).astype(bool).to_numpy()
                  if "latent" in df.columns else np.zeros(n, bool))
        labelled = (actor.notna() & status.isin(LABELLED_STATUSES)).to_numpy() & ~latent
        etype = df["event_type"] if "event_type" in df.columns else pd.Series([None] * n)
        fat = df["fatalities"] if "fatalities" in df.columns else np.full(n, np.nan)
        return {"ids": ids, "start": start, "end": end, "lat": lat, "lon": lon, "dprec": dprec,
                "lprec": lprec, "lprec_raw": lprec_raw, "actor": actor.to_numpy(),
                "labelled": labelled, "etype": np.asarray(etype, dtype=object),
                "target": _target_column(df), "fat": np.asarray(fat)}

    #: Ways to split an actor into processes (see ``process_by``).
    PROCESS_BY = ("actor", "type", "kind")
    #: With ``process_by="kind"``, targets with fewer events in the fit are pooled as "*".
    PROCESS_MIN_TARGET = 100

    def _process_targets(self, target) -> list[str]:
        """The targets that get processes of their own (``process_by="kind"``)."""
        vc = pd.Series(clean_texts(target, len(target)), dtype=object).dropna().value_counts()
        return sorted(vc.index[vc >= self.PROCESS_MIN_TARGET])

    def _unit_names(self, actor, etype, target=None) -> np.ndarray:
        """Each event's process name, ``actor``, ``actor|type`` or ``actor|type|target`` (None
        without an actor)."""
        n = len(actor)
        act = [None if v is None else str(v) for v in actor]
        if self.process_by == "actor":
            return np.array(act, dtype=object)
        et = [e or "?" for e in clean_texts(etype, n)]
        if self.process_by == "type":
            return np.array([None if v is None else f"{v}|{e}" for v, e in zip(act, et)],
                            dtype=object)
        common = set(self._targets)
        tg = clean_texts(target, n)
        return np.array([None if v is None else f"{v}|{e}|{g if g in common else '*'}"
                         for v, e, g in zip(act, et, tg)], dtype=object)

    @property
    def _to_actors(self) -> np.ndarray:
        """(processes x actors) 0/1: which actor each process belongs to."""
        A = np.zeros((len(self.processes_), len(self.actors_)))
        A[np.arange(len(self.processes_)), self.process_actor_] = 1.0
        return A

    def by_actor(self, per_process) -> np.ndarray:
        """Sum the last axis of a per-process array (probabilities, intensities, counts) into
        actors (columns = ``actors_``)."""
        return np.asarray(per_process, float) @ self._to_actors

    def event_actors(self, Q, labels) -> tuple[np.ndarray, np.ndarray]:
        """Each event's actor (index into ``actors_``: its label, else the most probable) and
        that actor's probability, from process probabilities ``Q`` (n x processes) and process
        labels (-1 where latent)."""
        qa = self.by_actor(Q)
        lab = np.asarray(labels)
        k = np.where(lab >= 0, self.process_actor_[np.maximum(lab, 0)], qa.argmax(1))
        return k, qa[np.arange(len(k)), k]

    # -----------------------------------------------------------------------------------------
    # fit

    def fit(self, events: pd.DataFrame, y=None) -> "HawkesAttributor":
        """Fit to events in the normalised schema (see module doc); returns self.

        Required columns: id, time_start, latitude, longitude, actor, attribution. Optional:
        time_end (default time_start), date_precision_days (1), location_precision_km
        (min_bandwidth_km), event_type, target (who was attacked or fought; the store's
        ``other_raw`` is used when there is no ``target``), fatalities, latent (False). An event
        is labelled iff its
        actor is set, its attribution is claimed/attributed and it is not ``latent``.
        """
        self._check_params()
        self._clear_fitted()
        tick = _time.perf_counter()
        a = self._event_arrays(events)
        n = len(a["ids"])
        if not a["labelled"].any():
            raise AnalysisError("no labelled events: at least one event needs a known actor "
                                "(attribution claimed or attributed)")
        # ---- time: midpoint of the date range, half-width u -------------------------------
        t0 = pd.Timestamp(a["start"].min()).floor("D").to_datetime64().astype("datetime64[s]")
        t_all, u_all = date_intervals(_days(a["start"], t0), _days(a["end"], t0), a["dprec"])
        order = np.lexsort((np.arange(n), t_all))  # stable by time
        self.order_ = order
        self.t0_ = t0
        t = np.ascontiguousarray(t_all[order])
        u = np.ascontiguousarray(u_all[order])
        # ---- space ------------------------------------------------------------------------
        proj = LocalProjection.about(a["lat"], a["lon"])
        xa, ya = proj.forward(a["lat"], a["lon"])
        x, y = np.ascontiguousarray(xa[order]), np.ascontiguousarray(ya[order])
        prec = np.ascontiguousarray(a["lprec"][order])
        s2 = prec ** 2
        # ---- labels -----------------------------------------------------------------------
        labelled = a["labelled"][order]
        actors = sorted({str(v) for v in a["actor"][order][labelled]})
        self._targets = (self._process_targets(a["target"]) if self.process_by == "kind"
                         else [])
        unit_of = self._unit_names(a["actor"][order], a["etype"][order], a["target"][order])
        units = sorted(set(unit_of[labelled]))
        owner = dict(zip(unit_of[labelled], a["actor"][order][labelled]))
        K = len(units)
        lut = {k: i for i, k in enumerate(units)}
        lab = np.full(n, -1, np.int32)
        lab[labelled] = [lut[v] for v in unit_of[labelled]]
        latent = np.flatnonzero(lab < 0)
        # ---- marks ------------------------------------------------------------------------
        marks = MarkModel.for_events(a["etype"], a["target"], K, self.mark_pseudo_count,
                                     self.mark_channels)
        mcode = marks.encode(a["etype"][order], a["target"][order], a["fat"][order],
                             a["lprec_raw"][order], fitting=True)

        self.projection_ = proj
        self.actors_ = actors
        self.processes_ = units
        a_lut = {k: i for i, k in enumerate(actors)}
        self.process_actor_ = np.array([a_lut[str(owner[v])] for v in units], np.int32)
        marks.forbid_self_targets([actors[g] for g in self.process_actor_])
        self.n_events_ = n
        self._t, self._u, self._x, self._y, self._prec, self._s2 = t, u, x, y, prec, s2
        self._lab, self._mcode = lab, mcode
        mk = marks.kind_codes(mcode)
        persist = bool(self.mark_persistence) and "kind" in marks.channels
        self._mk = mk
        self._ids = a["ids"][order]
        self._start = a["start"].to_numpy(dtype="datetime64[s]")[order]
        self._marks = marks
        self.t_end_ = float(np.max(t + u))
        t_begin = float(np.min(t - u))
        W, R = float(self.window_days), float(self.radius_km)

        # ---- candidate pairs --------------------------------------------------------------
        grid = GridIndex.build(t, x, y, R)
        max_pairs = int(self.max_pair_memory_mb * 2**20 / BYTES_PER_PAIR)
        pairs = build_pairs(t, x, y, W, R, u=u, s2=s2, max_pairs=max_pairs,
                            omega0=6.0 / W, sigma0_km=R / 10.0, grid=grid)
        if pairs.capped:
            warnings.warn(
                f"{pairs.n_candidates:,} candidate pairs exceed max_pair_memory_mb="
                f"{self.max_pair_memory_mb:g}: each event keeps its {pairs.cap} nearest "
                f"candidates in space and time (reduce window_days or radius_km, or raise the "
                f"budget)", RuntimeWarning, stacklevel=2)
        self._grid, self._pairs = grid, pairs
        self.n_pairs_ = pairs.n_pairs
        rev = kr.children_of(pairs, n, lab < 0) if len(latent) else None
        tick_pairs = _time.perf_counter()

        # ---- background ------------------------------------------------------------------
        span = self.t_end_ - t_begin
        ep = self.background_epoch_days
        n_ep = 1 if (ep is None or span <= ep) else int(math.ceil(span / ep)) + 1
        spatial = SpatialBackground.for_points(x, y, K, self.min_bandwidth_km,
                                               margin=max(10.0, 3 * self.min_bandwidth_km),
                                               eps=self.background_floor,
                                               epochs=np.linspace(t_begin, self.t_end_, n_ep))
        temporal = TemporalBackground(t_begin, self.t_end_, self.background_bin_days, K)
        bins = temporal.bin_of(t)
        H = knn_bandwidths(x, y, lab, K, self.n_neighbors, prec, self.min_bandwidth_km,
                           default_bw=R)

        # ---- initial state ---------------------------------------------------------------
        Q = np.zeros((n, K))
        Q[labelled, lab[labelled]] = 1.0
        marks.update(Q, mcode)  # from the labelled events only
        spatial.set_levels(prec)
        lvl = spatial.level_of(prec)
        block = W if self.crossfit_block_days is None else float(self.crossfit_block_days)
        fold = (np.floor((t - t_begin) / block) % 2).astype(np.int8)
        shrink, H_actor, fought = self._actor_grounds(x, y, lab, a["target"][order], prec, R)
        kde = CrossFitKDE(spatial, x, y, t, H, lvl, fold, group=self.process_actor_,
                          H_group=H_actor, group_shrink=shrink)
        presence = self.by_actor(Q) + fought  # the labels (and targets), at the start
        kde.set_group_weights(presence)
        if shrink > 0:  # the rates too: pseudo-events spread as the actor's activity in time
            nb = temporal.mu.shape[1]
            profile = np.stack([np.bincount(bins, weights=presence[:, g], minlength=nb)
                                for g in range(presence.shape[1])])
            profile /= np.maximum(profile.sum(1, keepdims=True), 1e-12)
            temporal.add_prior(shrink * profile[self.process_actor_])
        for k in range(K):
            kde.accept(k, kde.propose(k, (lab == k).astype(float)), 1.0)
        bloo = spatial.with_floor(kde.values)
        frac = np.bincount(lab[labelled], minlength=K) / labelled.sum()
        for k in range(K):
            cnt = np.bincount(bins[lab == k], minlength=temporal.mu.shape[1]).astype(float)
            cnt += np.bincount(bins[latent], minlength=temporal.mu.shape[1]) * frac[k]
            temporal.mu[k] = 0.5 * (cnt + temporal.tau) / temporal.lengths
        alpha = 0.3 * np.eye(K)
        if self.cross_excitation and K > 1:
            alpha += 0.02 * (1 - np.eye(K))
        omega = 6.0 / W
        C = int(self.spatial_components)
        if C == 1:
            space = (np.ones(1), np.array([(R / 10.0) ** 2]))
        else:  # from narrow to wide, log-spaced between R/25 and R/4
            space = (np.full(C, 1.0 / C), (R * np.geomspace(0.04, 0.25, C)) ** 2)
        logf = marks.loglik(mcode)
        B = temporal.rate(t) * bloo
        if len(latent):
            lp = np.log(B[latent]) + logf[latent]
            lp -= lp.max(1, keepdims=True)
            q = np.exp(lp)
            Q[latent] = q / q.sum(1, keepdims=True)
        Lam = np.zeros((n, K))
        Phi = np.zeros((n, K))
        prho = np.full(K, 0.5 if persist else 0.0)
        st = {"alpha": alpha, "omega": omega, "space": space, "logf": logf, "bloo": bloo,
              "Ghat": self._ghat(t, omega), "B": B, "prho": prho,
              "pers": kr.persistence(mk, marks.kind_log_p(), prho) if persist else None}

        def e_pass():
            Ex = Q @ st["alpha"]
            r = kr.estep(pairs, s2, u, lab, Q, Ex, st["B"], st["alpha"], st["omega"], W,
                         st["space"], st["pers"], Lam=Lam, Phi=Phi)
            J = self._objective(r.ll, Q, st["logf"], latent, temporal, Ex, st["Ghat"], marks)
            if persist:
                J += float(np.sum(np.log(st["prho"]) + np.log1p(-st["prho"])))
            return J, r

        def m_step(r, refresh: bool) -> None:
            if persist:  # Beta(2, 2) MAP of the persistence; fresh kinds alone inform f_k
                st["prho"] = (r.copied + 1.0) / (r.copied + r.fresh + 2.0)
                marks.update(Q, mcode, kind_weights=np.maximum(Q - r.Cp, 0.0))
                st["pers"] = kr.persistence(mk, marks.kind_log_p(), st["prho"])
            else:
                marks.update(Q, mcode)
            st["logf"] = marks.loglik(mcode)
            temporal.update(r.Phi, bins)
            if refresh:
                kde.set_group_weights(self.by_actor(r.Phi) + fought)
                self._update_spatial(kde, r.Phi)
                st["bloo"] = spatial.with_floor(kde.values)
            D = Q.T @ st["Ghat"]
            with np.errstate(divide="ignore", invalid="ignore"):
                new_alpha = np.where(D[:, None] > 0, r.N / D[:, None], 0.0)
            alpha = new_alpha if self.cross_excitation else np.diag(np.diag(new_alpha))
            st["alpha"] = alpha
            st["omega"] = self._update_omega(st["omega"], r.Sw, r.Sdt, Q @ alpha.sum(1), t)
            if r.Sw > 0:  # spatial mixture: weights and variance-component EM step
                rho, sig2 = st["space"]
                live = r.Sc > 0
                sig2 = np.where(live, r.Sdd / (2.0 * np.where(live, r.Sc, 1.0)), sig2)
                st["space"] = (r.Sc / r.Sc.sum(), np.maximum(sig2, 1e-8))
            st["Ghat"] = self._ghat(t, st["omega"])
            st["B"] = temporal.rate(t) * st["bloo"]
            if len(latent):  # labels, with the new parameters
                Ex = Q @ st["alpha"]
                kr.intensity(pairs, s2, u, lab, Ex, st["B"], st["alpha"], st["omega"], W,
                             st["space"], st["pers"], Lam=Lam)
                kr.label_sweep(latent, rev, pairs, s2, u, lab, Q, Ex, Lam, st["alpha"],
                               st["omega"], W, st["space"], st["logf"], st["Ghat"], st["pers"])

        def get_theta():
            return (temporal.mu.copy(), st["alpha"].copy(), st["omega"],
                    (st["space"][0].copy(), st["space"][1].copy()), st["prho"].copy())

        def set_theta(th) -> None:
            temporal.mu, st["alpha"], st["omega"], st["space"], st["prho"] = (
                th[0].copy(), th[1].copy(), th[2], th[3], th[4].copy())
            st["Ghat"] = self._ghat(t, st["omega"])
            st["B"] = temporal.rate(t) * st["bloo"]
            if persist:
                st["pers"] = kr.persistence(mk, marks.kind_log_p(), st["prho"])

        hist: list[float] = []
        n_m = 0
        refresh_due = False
        amax = 4.0

        def step(r) -> bool:
            nonlocal n_m, refresh_due
            n_m += 1
            refresh = n_m <= 4 or n_m % 4 == 0 or refresh_due
            refresh_due = False
            m_step(r, refresh)
            return refresh

        def done(J_new, J_old, refreshed) -> bool:
            """A plain EM step that gained under tol (relative) after a background update."""
            nonlocal refresh_due
            if J_new - J_old > self.tol * abs(J_old):
                return False
            if refreshed:
                return True
            refresh_due = True
            return False

        def log(J):
            hist.append(J)
            if self.verbose:
                print(f"iter {n_m:4d}  J = {J:.10g}  alpha_diag = {np.diag(st['alpha']).round(4)}"
                      f"  omega = {st['omega']:.4g}  sigma = {np.sqrt(st['space'][1]).round(3)}",
                      flush=True)

        J, r = e_pass()
        log(J)
        converged = False
        while n_m < self.max_iter:
            th0 = get_theta()
            ref = step(r)
            th1 = get_theta()
            J1, r = e_pass()
            log(J1)
            if done(J1, hist[-2], ref):
                converged = True
                break
            if n_m >= self.max_iter or not self.accelerate:
                continue
            # SQUAREM (Varadhan & Roland 2008) on the global parameters, safeguarded: a second
            # EM step, then an extrapolated state that is kept only if J does not drop
            ref = step(r)
            th2 = get_theta()
            ext = _squarem(th0, th1, th2, amax)
            if ext is not None:
                set_theta(ext)
                Jp, r = e_pass()
                if np.isfinite(Jp) and Jp >= J1:
                    log(Jp)
                    amax = min(2.0 * amax, 1024.0)
                    continue
                amax = max(0.5 * amax, 1.0)
                set_theta(th2)
            J2, r = e_pass()
            log(J2)
            if done(J2, J1, ref):
                converged = True
                break
        ll_hist = hist
        # ---- final state -----------------------------------------------------------------
        alpha, omega, B = st["alpha"], st["omega"], st["B"]
        order_c = np.argsort(st["space"][1])  # components from narrow to wide
        space = (st["space"][0][order_c], st["space"][1][order_c])
        Ex = Q @ alpha
        self.mark_persistence_ = st["prho"]
        self._pers = st["pers"]
        r = kr.estep(pairs, s2, u, lab, Q, Ex, B, alpha, omega, W, space, self._pers,
                     want_w=True)
        self._w = r.w
        self._Q, self._Ex = Q, Ex
        self._bg = r.Phi.sum(1)
        self._spatial, self._temporal = spatial, temporal
        kde.finalize()
        self._kde_loo = kde.values
        self.alpha_ = alpha
        self.omega_ = float(omega)
        self._space = space
        self._set_space_attrs()
        self.log_likelihood_ = ll_hist
        self.n_iter_ = n_m
        self.converged_ = converged
        self._set_public()
        self.fit_seconds_ = {"pairs": tick_pairs - tick, "total": _time.perf_counter() - tick}
        return self

    def _set_space_attrs(self) -> None:
        rho, sig2 = self._space
        self.spatial_weights_ = np.asarray(rho, float)
        self.spatial_sigmas_km_ = np.sqrt(np.asarray(sig2, float))
        self.sigma_km_ = float(math.sqrt(float(rho @ sig2)))

    def _set_public(self) -> None:
        inv = np.empty_like(self.order_)
        inv[self.order_] = np.arange(len(self.order_))
        self._inv = inv
        self.label_proba_ = self.by_actor(self._Q[inv])
        self.background_proba_ = self._bg[inv]
        self.branching_ratio_ = self.alpha_.sum(1)
        self.event_ids_ = self._ids[inv]

    # ---- fitted state, read-only, for forecasts and other faces ----------------------------

    @property
    def fitted_events_(self) -> "FittedEvents":
        """The fitted events in time order as the model holds them (see :class:`FittedEvents`)."""
        self._check_fitted()
        return FittedEvents(ids=self._ids, start=self._start, t=self._t, u=self._u, x=self._x,
                            y=self._y, s2=self._s2, excitation=self._Ex, label_proba=self._Q,
                            labels=self._lab)

    @property
    def spatial_background_(self) -> SpatialBackground:
        """Each actor's ground b_k(x) (per epoch), as rasters."""
        self._check_fitted()
        return self._spatial

    @property
    def temporal_background_(self) -> TemporalBackground:
        """Each actor's background rate mu_k(t), piecewise constant."""
        self._check_fitted()
        return self._temporal

    # ---- pieces of the EM --------------------------------------------------------------------

    def _ghat(self, t, omega) -> np.ndarray:
        W = float(self.window_days)
        tau = np.clip(self.t_end_ - t, 0.0, W)
        return -np.expm1(-omega * tau) / -np.expm1(-omega * W)

    def _objective(self, ll, Q, logf, latent, temporal, Ex, Ghat, marks) -> float:
        J = ll + float(np.sum(Q * logf))
        if len(latent):
            q = Q[latent]
            with np.errstate(divide="ignore", invalid="ignore"):
                J -= float(np.sum(np.where(q > 0, q * np.log(q), 0.0)))
        J -= float(temporal.integral().sum())
        J -= float(Ex.sum(1) @ Ghat)
        J += marks.log_prior() + temporal.log_prior()
        return J

    def _update_omega(self, omega, Sw, Sdt, c, t) -> float:
        """Maximise the omega part of the surrogate (exact 1-D maximisation)."""
        if Sw <= 0:
            return omega
        W = float(self.window_days)
        tau = self.t_end_ - t
        edge = tau < W
        tau_e, c_e = tau[edge], c[edge]

        def neg(logw):
            w = math.exp(logw)
            zw = -math.expm1(-w * W)
            G = -np.expm1(-w * np.maximum(tau_e, 0.0)) / zw
            return -(Sw * logw - w * Sdt - Sw * math.log(zw) - float(c_e @ G))

        res = optimize.minimize_scalar(neg, bounds=(math.log(1e-4), math.log(1e3)),
                                       method="bounded", options={"xatol": 1e-10})
        if res.fun <= neg(math.log(omega)):
            return float(math.exp(res.x))
        return omega

    def _actor_grounds(self, x, y, lab, target, prec, R):
        """What the processes' grounds are shrunk towards (only when actors are split): the
        shrinkage, the actor-level bandwidths, and where each actor was the target (n x
        actors, 1 there: ``ground_presence``)."""
        n, A = len(lab), len(self.actors_)
        fought = np.zeros((n, A))
        if not (self.ground_shrink > 0 and A < len(self.processes_)):
            return 0.0, None, fought
        members = np.zeros((n, A), bool)
        own = np.flatnonzero(lab >= 0)
        members[own, self.process_actor_[lab[own]]] = True
        if self.ground_presence:
            index = {v: i for i, v in enumerate(self.actors_)}
            tg = clean_texts(target, n)
            rows = np.array([i for i, v in enumerate(tg) if v in index], int)
            if len(rows):
                fought[rows, [index[tg[i]] for i in rows]] = 1.0
            members |= fought > 0
        H = member_bandwidths(x, y, members, lab < 0, self.n_neighbors, prec,
                              self.min_bandwidth_km, default_bw=R)
        return float(self.ground_shrink), H, fought

    @staticmethod
    def _update_spatial(kde: CrossFitKDE, Phi) -> None:
        """Propose the Zhuang KDE of background responsibilities; mix it in by line search.

        An actor whose background weights moved by under 1 % (L1) since its last proposal is
        skipped (skipping an update never lowers the objective)."""
        eps, area = kde.sb.eps, kde.sb.area
        for k in range(kde.sb.n_actors):
            p = Phi[:, k]
            tot = p.sum()
            if tot <= 0:
                continue
            last = kde.last_weights[k]
            if last is not None and np.abs(p / tot - last).sum() < 0.01:
                continue
            kde.last_weights[k] = p / tot
            prop = kde.propose(k, p)
            sel = p > 0
            a = (1 - eps) * kde.values[sel, k] + eps / area
            b = (1 - eps) * prop[2][sel] + eps / area
            eta = _line_search(p[sel], a, b)
            if eta > 0:
                kde.accept(k, prop, eta)

    # -----------------------------------------------------------------------------------------
    # prediction

    def _query_arrays(self, queries: pd.DataFrame):
        tcol = "time" if "time" in queries.columns else "time_start"
        self._validate_frame(queries, (tcol, "latitude", "longitude"), "queries")
        ts, end = self._date_range(queries, tcol, "queries")
        n = len(queries)
        lat = self._floats(queries, "latitude", lo=-90, hi=90, what="queries")
        lon = self._floats(queries, "longitude", lo=-180, hi=180, what="queries")
        prec = (self._floats(queries, "location_precision_km", lo=0, allow_nan=True,
                             what="queries")
                if "location_precision_km" in queries.columns else np.full(n, np.nan))
        prec_raw = prec
        dprec = (self._floats(queries, "date_precision_days", lo=0, allow_nan=True,
                              what="queries")
                 if "date_precision_days" in queries.columns else np.ones(n))
        dprec = np.where(np.isnan(dprec), 1.0, dprec)
        etype = queries["event_type"] if "event_type" in queries.columns else [None] * n
        fat = queries["fatalities"] if "fatalities" in queries.columns else np.full(n, np.nan)
        codes = self._marks.encode(np.asarray(etype, dtype=object), _target_column(queries),
                                   np.asarray(fat), prec_raw)
        prec = np.where(np.isnan(prec_raw), self.min_bandwidth_km, prec_raw)
        t, u = date_intervals(_days(ts, self.t0_), _days(end, self.t0_), dprec)
        return t, lat, lon, prec, u, codes

    def _intensities(self, tq, u, x, y, prec, codes):
        """(background, triggered, log marks), each (n x K), at midpoints ``tq`` of date ranges
        of half-width ``u``."""
        trig = kr.query_intensity(self._grid_index(), self._x, self._y, self._s2, self._u,
                                  self._Ex, tq, x, y, prec ** 2, u, self.omega_,
                                  self.window_days, self._space, self.radius_km,
                                  self._mk, self._query_persistence(codes))
        bg = self._temporal.rate(tq) * self._spatial.density(x, y, prec, tq)
        logf = self._marks.loglik(codes)
        return bg, trig, logf

    def _query_persistence(self, codes):
        """The persistence arrays of queries (None when persistence is off)."""
        if self._pers is None:
            return None
        return kr.persistence(self._marks.kind_codes(codes), self._marks.kind_log_p(),
                              self.mark_persistence_)

    def intensity_parts(self, t_days, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """``(background, triggered)`` parts of ``lambda_k`` (n x K, events per day per km^2) at
        exact times (days since ``t0_``) and places, without marks, as ``predict_proba`` sees
        them: the history strictly before each time."""
        self._check_fitted()
        lat, lon = np.atleast_1d(np.asarray(lat, float)), np.atleast_1d(np.asarray(lon, float))
        t = np.broadcast_to(np.asarray(t_days, float), lat.shape).astype(float)
        x, y = self.projection_.forward(lat, lon)
        n = len(lat)
        bg, trig, _ = self._intensities(t, np.zeros(n), x, y, np.zeros(n),
                                        np.full((n, len(self._marks.channels)), -1, np.int32))
        return bg, trig

    def predict_proba(self, queries: pd.DataFrame) -> np.ndarray:
        """P(actor | time, place, marks) for each query row, (n x K), columns = ``actors_``.

        Columns: ``time`` (or ``time_start``), ``latitude``, ``longitude``; optional
        ``location_precision_km``, ``date_precision_days``, ``event_type``, ``fatalities``.
        The history is every fitted event strictly before the query within ``window_days``.
        """
        self._check_fitted()
        return self.by_actor(self.predict_process_proba(queries))

    def predict_process_proba(self, queries: pd.DataFrame) -> np.ndarray:
        """As :meth:`predict_proba`, per process (columns = ``processes_``)."""
        self._check_fitted()
        t, lat, lon, prec, u, codes = self._query_arrays(queries)
        x, y = self.projection_.forward(lat, lon)
        bg, trig, logf = self._intensities(t, u, x, y, prec, codes)
        return _normalise(np.log(bg + trig) + logf)

    def predict(self, queries: pd.DataFrame) -> np.ndarray:
        """Most probable actor for each query."""
        p = self.predict_proba(queries)
        return np.asarray(self.actors_, dtype=object)[p.argmax(1)]

    def explain(self, time, lat: float, lon: float, precision_km: float | None = None,
                event_type: str | None = None, fatalities: float | None = None,
                top: int = 10, date_precision_days: float = 1.0,
                target: str | None = None) -> dict:
        """Attribution of one (time, place, marks), split into its terms.

        ``precision_km``: how exactly the place is known (None: exactly, and the precision says
        nothing about the actor); ``target``: who was attacked or fought, if known.

        Returns ``{"time", "latitude", "longitude", "actors": [...]}`` with, per actor (most
        probable first): ``probability``, ``intensity`` (lambda_k, events/day/km^2),
        ``mark_likelihood``, ``background`` (mu_k b_k), ``background_share`` and ``top_events``:
        the earlier events that raise lambda_k most (``id``, ``date``, ``distance_km``,
        ``days_before``, ``actor`` (label or most probable actor), ``actor_probability``,
        ``contribution`` and ``share`` = contribution / lambda_k). ``top_events`` at the top
        level ranks all earlier events by their share of the total sum_k lambda_k f_k.
        """
        self._check_fitted()
        q = pd.DataFrame({"time": [pd.Timestamp(time)], "latitude": [lat], "longitude": [lon],
                          "location_precision_km": [
                              np.nan if precision_km is None else precision_km],
                          "date_precision_days": [date_precision_days],
                          "event_type": [event_type], "target": [target],
                          "fatalities": [np.nan if fatalities is None else fatalities]})
        t, la, lo, prec, uq, codes = self._query_arrays(q)
        x, y = self.projection_.forward(la, lo)
        bg, trig, logf = self._intensities(t, uq, x, y, prec, codes)
        lam = (bg + trig)[0]
        u = float(uq[0])
        idx, gh, d2 = kr.query_contributions(self._grid_index(), self._x, self._y, self._s2,
                                             self._u, t[0], x[0], y[0], prec[0] ** 2, u,
                                             self.omega_, self.window_days,
                                             self._space, self.radius_km)
        contrib = self._Ex[idx] * gh[:, None]  # (m, K)
        qp = self._query_persistence(codes)
        if qp is not None:  # the factor of a trigger whose kind this event repeats (or not)
            qm, qA, qB = qp
            known = (qm[0] >= 0) & (self._mk[idx] >= 0)
            contrib *= np.where(known[:, None],
                                qA[0] + qB[0] * (self._mk[idx] == qm[0])[:, None], 1.0)
        fk = np.exp(logf[0])
        total = float(lam @ fk)
        # per actor: the sums over its processes (one process per actor with process_by="actor")
        score = self.by_actor(lam * fk)  # lambda_k f_k
        lam_a = self.by_actor(lam)
        f_a = np.divide(score, lam_a, out=np.zeros_like(score), where=lam_a > 0)
        contrib_a = self.by_actor(contrib * fk)  # each earlier event's part of lambda_k f_k
        post = score / score.sum() if score.sum() > 0 else np.full(len(score), 1 / len(score))

        def best(v):  # positions of the `top` largest positive values, largest first
            cand = np.flatnonzero(v > 0)
            if len(cand) > top:
                cand = cand[np.argpartition(-v[cand], top - 1)[:top]]
            return cand[np.argsort(-v[cand], kind="stable")]

        def ev(i, c, share):
            j = int(idx[i])
            la_ = int(self._lab[j])
            k, pk = self._event_actor(j)
            return {"id": str(self._ids[j]),
                    "date": str(pd.Timestamp(self._start[j]).date()),
                    "distance_km": float(math.sqrt(d2[i])),
                    "days_before": float(t[0] - self._t[j]),
                    "actor": self.actors_[k],
                    "actor_probability": pk,
                    "labelled": la_ >= 0,
                    "contribution": float(c), "share": float(share)}

        bg_a, bgf_a = self.by_actor(bg[0]), self.by_actor(bg[0] * fk)
        actors = []
        for k in np.argsort(-post, kind="stable"):
            sk, fa = float(score[k]), float(f_a[k])
            actors.append({
                "actor": self.actors_[k], "probability": float(post[k]),
                "intensity": float(lam_a[k]), "mark_likelihood": fa,
                "background": float(bg_a[k]),
                "background_share": float(bgf_a[k] / sk) if sk > 0 else 1.0,
                "top_events": [ev(i, contrib_a[i, k] / fa if fa > 0 else 0.0,
                                  contrib_a[i, k] / sk if sk > 0 else 0.0)
                               for i in best(contrib_a[:, k])]})
        overall = contrib @ fk
        return {"time": str(pd.Timestamp(time)), "latitude": float(lat), "longitude": float(lon),
                "marks": {"event_type": event_type, "target": target,
                          "fatalities": None if fatalities is None else float(fatalities),
                          "precision_km": precision_km},
                "total_intensity": total,
                "background_share": float(bg[0] @ fk / total) if total > 0 else 1.0,
                "actors": actors,
                "top_events": [ev(i, overall[i], overall[i] / total) for i in best(overall)]}

    # -----------------------------------------------------------------------------------------
    # branching structure

    def _ensure_branching(self) -> None:
        if getattr(self, "_pairs", None) is None or getattr(self, "_w", None) is None:
            W, R = float(self.window_days), float(self.radius_km)
            grid = self._grid_index()
            max_pairs = int(self.max_pair_memory_mb * 2**20 / BYTES_PER_PAIR)
            self._pairs = build_pairs(self._t, self._x, self._y, W, R, u=self._u, s2=self._s2,
                                      max_pairs=max_pairs, omega0=6.0 / W, sigma0_km=R / 10.0,
                                      grid=grid)
            B = self._temporal.rate(self._t) * self._spatial.with_floor(self._kde_loo)
            r = kr.estep(self._pairs, self._s2, self._u, self._lab, self._Q, self._Ex, B,
                         self.alpha_, self.omega_, W, self._space, self._pers, want_w=True)
            self._w = r.w

    @property
    def parent_proba_(self) -> sparse.csr_matrix:
        """Branching matrix (N x N, rows = child, columns = parent, input order): entry (i, j) is
        P(event j triggered event i) over the candidate pairs; ``background_proba_`` holds
        P(background) per event, and each row plus it sums to one."""
        self._check_fitted()
        self._ensure_branching()
        if getattr(self, "_parent_csr", None) is None:
            p = self._pairs
            n = self.n_events_
            m = sparse.csr_matrix((self._w, self.order_[p.parent].astype(np.int32), p.indptr),
                                  shape=(n, n))
            self._parent_csr = m[self._inv]
        return self._parent_csr

    def _children_index(self):
        if getattr(self, "_rev_all", None) is None:
            self._ensure_branching()
            self._rev_all = reverse_index(self._pairs, self.n_events_)
        return self._rev_all

    def chain(self, event_id: str, depth: int = 3, min_proba: float = 0.05,
              max_branch: int = 5) -> dict:
        """Escalation chain around an event from the branching probabilities.

        Returns ``{"id", "date", "actor", "actor_probability", "background_proba", "parents",
        "children"}``: ``parents`` are its likely triggers (probability >= ``min_proba``, at most
        ``max_branch``), each with its own ``parents`` down to ``depth`` levels; ``children`` the
        events it likely triggered, each with its own ``children``.
        """
        self._check_fitted()
        self._ensure_branching()
        pos = self._id_pos().get(str(event_id))
        if pos is None:
            raise InputError(f"no fitted event with id {event_id!r}", field="event_id")
        p = self._pairs
        rptr, rpair, rchild = self._children_index()

        def node(j):
            la_ = int(self._lab[j])
            k, pk = self._event_actor(j)
            return {"id": str(self._ids[j]), "date": str(pd.Timestamp(self._start[j]).date()),
                    "actor": self.actors_[k], "actor_probability": pk,
                    "labelled": la_ >= 0, "background_proba": float(self._bg[j])}

        def up(i, d):
            if d == 0:
                return []
            sl = slice(p.indptr[i], p.indptr[i + 1])
            w, par = self._w[sl], p.parent[sl]
            out = []
            for o in np.argsort(-w)[:max_branch]:
                if w[o] < min_proba:
                    break
                j = int(par[o])
                nd = node(j)
                nd.update(probability=float(w[o]), days=float(p.dt[sl][o]),
                          distance_km=float(math.sqrt(p.d2[sl][o])), parents=up(j, d - 1))
                out.append(nd)
            return out

        def down(j, d):
            if d == 0:
                return []
            sl = slice(rptr[j], rptr[j + 1])
            pp, cc = rpair[sl], rchild[sl]
            w = self._w[pp]
            out = []
            for o in np.argsort(-w)[:max_branch]:
                if w[o] < min_proba:
                    break
                c = int(cc[o])
                nd = node(c)
                nd.update(probability=float(w[o]), days=float(p.dt[pp[o]]),
                          distance_km=float(math.sqrt(p.d2[pp[o]])), children=down(c, d - 1))
                out.append(nd)
            return out

        root = node(pos)
        root.update(parents=up(pos, depth), children=down(pos, depth))
        return root

    def actor_means(self, per_process) -> np.ndarray:
        """A per-process quantity (``branching_ratio_``, ``mark_persistence_``) per actor: the
        mean over its processes weighted by their events."""
        self._check_fitted()
        w = self._Q.sum(0) + 1e-12
        return self.by_actor(np.asarray(per_process, float) * w) / self.by_actor(w)

    def _event_actor(self, j: int) -> tuple[int, float]:
        """A fitted event's actor and its probability (see :meth:`event_actors`)."""
        k, p = self.event_actors(self._Q[j:j + 1], self._lab[j:j + 1])
        return int(k[0]), float(p[0])

    def _id_pos(self) -> dict:
        if getattr(self, "_id_lut", None) is None:
            self._id_lut = {s: i for i, s in enumerate(self._ids)}
        return self._id_lut

    def _grid_index(self) -> GridIndex:
        if getattr(self, "_grid", None) is None:
            self._grid = GridIndex.build(self._t, self._x, self._y, float(self.radius_km))
        return self._grid

    # -----------------------------------------------------------------------------------------
    # persistence

    def save(self, path) -> Path:
        """Write the fitted model to one ``.npz`` (arrays + JSON metadata, no pickle)."""
        self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(
                ".npz")
        meta = {
            "format": "culpa.HawkesAttributor", "version": FORMAT_VERSION,
            "params": self.get_params(), "actors": self.actors_,
            "processes": self.processes_,
            "process_actor": [int(v) for v in self.process_actor_],
            "process_targets": list(self._targets),
            "projection": self.projection_.to_dict(), "t0": str(self.t0_),
            "t_end": self.t_end_, "omega": self.omega_,
            "spatial_weights": [float(v) for v in self._space[0]],
            "spatial_variances": [float(v) for v in self._space[1]],
            "n_iter": self.n_iter_, "converged": self.converged_,
            "log_likelihood": self.log_likelihood_, "n_pairs": int(self.n_pairs_),
            "marks": self._marks.meta(), "spatial": self._spatial.meta(),
            "temporal": self._temporal.meta(),
        }
        arrays = {
            "meta_json": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            "ids": np.asarray(self._ids, dtype=str), "start": self._start.astype(np.int64),
            "t": self._t, "u": self._u, "x": self._x, "y": self._y, "prec": self._prec,
            "lab": self._lab, "mcode": self._mcode, "Q": self._Q,
            "mark_persistence": self.mark_persistence_,
            "bg": self._bg, "kde_loo": self._kde_loo, "order": self.order_, "alpha": self.alpha_,
            **self._spatial.to_arrays(), "mu": self._temporal.mu,
            "mu_edges": self._temporal.edges, **self._marks.to_arrays(),
        }
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "HawkesAttributor":
        """Read a model written by :meth:`save` (``np.load(..., allow_pickle=False)``)."""
        path = Path(path)
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read model: {e}", file=str(path)) from None
        with z:
            if "meta_json" not in z.files:
                raise InputError("not a culpa model file (no metadata)", file=str(path))
            meta = json.loads(bytes(z["meta_json"]).decode("utf-8"))
            if meta.get("format") != "culpa.HawkesAttributor":
                raise InputError("not a culpa HawkesAttributor file", file=str(path))
            if meta.get("version", 0) > FORMAT_VERSION:
                raise InputError(f"model format {meta['version']} is newer than this culpa "
                                 f"({FORMAT_VERSION})", file=str(path))
            if meta.get("version", 0) < FORMAT_VERSION:
                raise InputError(f"model format {meta.get('version')} was written by an older "
                                 f"culpa: fit it again (culpa fit)", file=str(path))
            arr = {k: z[k] for k in z.files}
        known = cls().get_params()
        params = {k: v for k, v in meta["params"].items() if k in known}
        params["mark_channels"] = tuple(params.get("mark_channels", MARK_CHANNELS))
        m = cls(**params)
        m.actors_ = list(meta["actors"])
        m.processes_ = list(meta["processes"])
        m.process_actor_ = np.asarray(meta["process_actor"], np.int32)
        m._targets = list(meta["process_targets"])
        m.projection_ = LocalProjection.from_dict(meta["projection"])
        m.t0_ = np.datetime64(meta["t0"], "s")
        m.t_end_ = float(meta["t_end"])
        m.omega_ = float(meta["omega"])
        m._space = (np.asarray(meta["spatial_weights"], float),
                    np.asarray(meta["spatial_variances"], float))
        m._set_space_attrs()
        m.n_iter_ = int(meta["n_iter"])
        m.converged_ = bool(meta["converged"])
        m.log_likelihood_ = list(meta["log_likelihood"])
        m.n_pairs_ = int(meta["n_pairs"])
        m.alpha_ = arr["alpha"]
        m._ids = arr["ids"].astype(object)
        m._start = arr["start"].astype("datetime64[s]")
        m._t, m._u, m._x, m._y = arr["t"], arr["u"], arr["x"], arr["y"]
        m._prec = arr["prec"]
        m._s2 = m._prec ** 2
        m._lab, m._mcode = arr["lab"], arr["mcode"]
        m.mark_persistence_ = arr["mark_persistence"]
        m._Q, m._bg, m.order_ = arr["Q"], arr["bg"], arr["order"]
        m._kde_loo = arr["kde_loo"]
        m._Ex = m._Q @ m.alpha_
        m.n_events_ = len(m._t)
        m._marks = MarkModel.from_saved(meta["marks"], arr)
        m._mk = m._marks.kind_codes(m._mcode)
        m._pers = (kr.persistence(m._mk, m._marks.kind_log_p(), m.mark_persistence_)
                   if m.mark_persistence_.any() else None)
        m._spatial = SpatialBackground.from_saved(meta["spatial"],
                                                  SpatialBackground.rasters_from_arrays(arr))
        m._temporal = TemporalBackground.from_saved(meta["temporal"], arr["mu_edges"], arr["mu"])
        m._pairs = m._w = m._grid = None
        m._set_public()
        return m


def _squarem(th0, th1, th2, amax: float):
    """SQUAREM-3 extrapolation of (mu table, alpha, omega, spatial variances) in log space and
    of the mark persistence in logit space, or None; the spatial mixture weights are taken from
    the last EM step. (Persistence near 0 is a mixture weight at the boundary, which plain EM
    approaches very slowly.)"""
    live = (th0[1] > 0) & (th1[1] > 0) & (th2[1] > 0)
    P = len(th0[4]) if (th0[4] > 0).all() and (th2[4] > 0).all() else 0

    def vec(th):
        r = np.clip(th[4], 1e-12, 1 - 1e-12)
        return np.concatenate([np.log(r / (1 - r))[:P],
                               np.log(th[0]).ravel(), np.log(th[1][live]), [math.log(th[2])],
                               np.log(th[3][1])])

    v0, v1, v2 = vec(th0), vec(th1), vec(th2)
    r = v1 - v0
    v = v2 - v1 - r
    nv = float(np.sqrt(v @ v))
    if not np.isfinite(nv) or nv == 0.0:
        return None
    a = -float(np.sqrt(r @ r)) / nv
    a = max(min(a, -1.0), -amax)
    if a == -1.0:
        return None
    x = v0 - 2.0 * a * r + a * a * v
    prho = th2[4].copy()
    if P:
        prho = 1.0 / (1.0 + np.exp(-np.clip(x[:P], -30, 30)))
        x = x[P:]
    m = th0[0].size
    mu = np.exp(np.clip(x[:m], -700, 700)).reshape(th0[0].shape)
    alpha = th2[1].copy()
    alpha[live] = np.exp(np.clip(x[m:m + int(live.sum())], -50, 5))
    C = len(th0[3][1])
    omega = float(np.clip(math.exp(min(x[-C - 1], 50.0)), 1e-4, 1e3))
    C = len(th0[3][1])
    sig2 = np.clip(np.exp(np.minimum(x[-C:], 50.0)), 1e-8, 1e8)
    return mu, alpha, omega, (th2[3][0].copy(), sig2), prho


def _target_column(df: pd.DataFrame) -> np.ndarray:
    """Who was attacked or fought: ``target``, else the store's ``other_raw``, else unknown."""
    for col in ("target", "other_raw"):
        if col in df.columns:
            return df[col].astype(object).where(df[col].notna(), None).to_numpy()
    return np.full(len(df), None, dtype=object)


def _normalise(logp: np.ndarray) -> np.ndarray:
    logp = logp - logp.max(1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(1, keepdims=True)


def _line_search(p, a, b) -> float:
    """argmax over [0, 1] of sum p log((1 - eta) a + eta b)  (concave; a, b > 0)."""
    d = b - a

    def grad(eta):
        return float(np.sum(p * d / (a + eta * d)))

    if grad(1.0) >= 0:
        return 1.0
    if grad(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    eta = 0.5
    for _ in range(60):
        den = a + eta * d
        g = float(np.sum(p * d / den))
        h = -float(np.sum(p * (d / den) ** 2))
        if g > 0:
            lo = eta
        else:
            hi = eta
        nxt = eta - g / h if h < 0 else 0.5 * (lo + hi)
        if not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - eta) < 1e-12:
            break
        eta = nxt
    return eta
