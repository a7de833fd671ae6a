"""HawkesAttributor: a multi-actor spatio-temporal Hawkes process with latent labels, fitted by EM.

The model (DESIGN.md, "The model")
----------------------------------
For process ``k`` at time ``t`` (days) and place ``x`` (km, local projection):

    lambda_k(t, x) = mu_k(t) b_k(x, t) + sum_{j: t_j < t} sum_l Q[j, l] alpha[l, k] g(t - t_j) h(x - x_j)

``Q[j, l]`` is P(event j was by process l): one-hot for labelled events, learned for latent ones.
``b_k(x, t) = sum_e psi_e(t) b_ke(x)`` changes slowly between epochs (``background_epoch_days``,
hat-function interpolation; one epoch = the static ``b_k(x)`` of DESIGN.md).
The processes ``k`` are an actor's events of one kind (:mod:`culpa.model.processes`): by default
(``process_by="kind"``) one per actor, event type and target, each with its own ground, rate,
triggering and marks, and an attribution sums an actor's processes: ``P(actor) = sum_{k of
actor} lambda_k f_k / sum_k lambda_k f_k``. Where an actor fights the army, where it fights
another faction and where it kills civilians are different places (and times): one ground per
actor for all of them blurs exactly the distinction an attribution needs. A latent event may
take any process; its kind mark makes processes of other kinds unlikely (never impossible).
Times are the midpoints of the date ranges (``u`` = half their width,
:func:`culpa.model.frames.date_intervals`); events on the same day may trigger one another in
input order (their imprecise dates allow it), never with exact ties.
``g``, ``h``: see :mod:`culpa.model.kernels` (exponential in time, :mod:`culpa.model.timekernel`,
Gaussian in space with each pair's own variance ``sigma^2 + s_i^2 + s_j^2``, date imprecision by
convolution); ``b_k``, ``mu_k``: :mod:`culpa.model.background`; marks ``f_k(m)``:
:mod:`culpa.model.marks`; the objective and the EM steps: :mod:`culpa.model.em`.

Attribution of a new event (``predict_proba``): ``P(k) ∝ lambda_k(t, x, m) f_k(m)`` from the
fitted history strictly before ``t`` (no offspring yet, by construction); with persistence, an
earlier event of the same kind nearby counts more than one of another kind. Explanations and
escalation chains: :mod:`culpa.model.explain`; saving and loading: :mod:`culpa.model.io`.

Known limits (see tests/test_model_recovery.py and benchmarks/bench_fit.py): where background
hotspots are as narrow as the triggering spread, the adaptive KDE absorbs part of the triggered
halo, so branching ratios and sigma come out low; attribution accuracy is much less affected.
"""

from __future__ import annotations

import math
import time as _time
import warnings

import numpy as np

from culpa import lazyimport
from culpa.errors import AnalysisError, ParameterError
from culpa.model import kernels as kr
from culpa.model import onequery
from culpa.model.background import (CrossFitKDE, SpatialBackground, TemporalBackground,
                                     knn_bandwidths, member_bandwidths)
from culpa.model.em import EM, EMData, EMState, compensator_weights
from culpa.model.explain import ExplanationMixin
from culpa.model.fitted import FittedEvents, NotFittedError, check_fitted
from culpa.model.frames import (OPTIONAL_COLUMNS, REQUIRED_COLUMNS, EventArrays, QueryArrays,
                                date_intervals)
from culpa.model.geo import LocalProjection
from culpa.model.io import FORMAT_VERSION, SaveLoadMixin
from culpa.model.params import ParamsMixin
from culpa.model.marks import MARK_CHANNELS, MarkModel, clean_texts
from culpa.model.pairs import BYTES_PER_PAIR, GridIndex, build_pairs
from culpa.model.processes import PROCESS_BY, PROCESS_MIN_TARGET, ProcessMap
from culpa.openmp import blas_single_threaded

pd = lazyimport.module("pandas")  # imported when first used: a single query needs none

__all__ = ["HawkesAttributor", "NotFittedError", "FittedEvents", "date_intervals",
           "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "FORMAT_VERSION"]


class HawkesAttributor(ExplanationMixin, SaveLoadMixin, ParamsMixin):
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


    #: Ways to split an actor into processes (see ``process_by``).
    PROCESS_BY = PROCESS_BY
    #: With ``process_by="kind"``, targets with fewer events in the fit are pooled as "*".
    PROCESS_MIN_TARGET = PROCESS_MIN_TARGET

    # -----------------------------------------------------------------------------------------
    # parameters

    def check_params(self) -> None:
        """Check every parameter's value (``fit`` does this first); raises ``ParameterError``
        (a ``ValueError``) naming the first bad one in ``field``. Reads no data, so a caller
        can refuse bad values before a long load."""
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
        for name in ("mark_pseudo_count", "max_pair_memory_mb"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ParameterError(f"must be a positive number, got {v!r}", field=name)
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

    #: A conditioned model's newcomers (:mod:`culpa.model.newcomers`); a fitted one has none.
    _newcomers = None
    #: Whether the fit keeps its last E pass (``_final_pass``) for steps after the EM.
    _keeps_final_pass = False

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "actors_")

    def _clear_fitted(self) -> None:
        """Forget everything a fit learned or cached: all but the parameters."""
        params = self.get_params(deep=False)
        for name in [k for k in vars(self) if k not in params]:
            delattr(self, name)

    # -----------------------------------------------------------------------------------------
    # fit

    @blas_single_threaded  # its small products must not take the cores from numba's passes
    def fit(self, events: pd.DataFrame, y=None, warm_start: "HawkesAttributor | None" = None
            ) -> "HawkesAttributor":
        """Fit to events in the normalised schema; returns self.

        ``warm_start``: a fitted HawkesAttributor (e.g. the fit on a month less data) whose
        state EM starts from, mapped onto this fit's processes and events
        (:mod:`culpa.model.warm`); it reaches the same optimum in fewer iterations.

        Required columns: id, time_start, latitude, longitude, actor, attribution. Optional:
        time_end (default time_start), date_precision_days (1), location_precision_km
        (min_bandwidth_km), event_type, target (who was attacked or fought; the store's
        ``other_raw`` is used when there is no ``target``), fatalities, latent (False). An event
        is labelled iff its actor is set, its attribution is claimed/attributed and it is not
        ``latent``.
        """
        self.check_params()
        self._clear_fitted()
        tick = _time.perf_counter()
        ev = self._events_in_time_order(events)
        self._split_into_processes(ev)
        pairs = self._candidate_pairs()
        tick_pairs = _time.perf_counter()
        if warm_start is not None:
            check_fitted(warm_start)
        em = self._initial_em(ev, pairs, warm_start)
        em.run(self.max_iter, self.tol, self.accelerate)
        self._keep_fitted(em)
        self.fit_seconds_ = {"pairs": tick_pairs - tick, "total": _time.perf_counter() - tick}
        return self

    def _events_in_time_order(self, events: pd.DataFrame) -> dict:
        """The events' arrays in time order: dates as midpoints ``t`` and half-widths ``u``
        (days since ``t0_``), places in the model's projection (km)."""
        a = EventArrays.parse(events)
        if not a.labelled.any():
            raise AnalysisError("no labelled events: at least one event needs a known actor "
                                "(attribution claimed or attributed)")
        n = len(a.ids)
        t0 = pd.Timestamp(a.start.min()).floor("D").to_datetime64().astype("datetime64[s]")
        t, u = a.dates_since(t0)
        order = np.lexsort((np.arange(n), t))  # stable by time
        proj = LocalProjection.about(a.lat, a.lon)
        x, y = proj.forward(a.lat, a.lon)
        prec = np.where(np.isnan(a.location_precision), self.min_bandwidth_km,
                        a.location_precision)
        self.order_, self.t0_, self.projection_, self.n_events_ = order, t0, proj, n
        c = np.ascontiguousarray
        return {"t": c(t[order]), "u": c(u[order]), "x": c(x[order]), "y": c(y[order]),
                "precision": c(prec[order]), "labelled": a.labelled[order],
                "ids": a.ids[order], "start": a.start.to_numpy(dtype="datetime64[s]")[order],
                "actor": a.actor[order], "event_type": a.event_type[order],
                "target": a.target[order], "fatalities": a.fatalities[order],
                "location_precision": a.location_precision[order]}

    def _split_into_processes(self, ev: dict) -> None:
        """Actors, processes and each event's process label (-1: latent); the marks."""
        labelled = ev["labelled"]
        pm = ProcessMap.of_events(self.process_by, ev["actor"], ev["event_type"], ev["target"],
                                  labelled)
        self._set_processes(pm)
        lab = np.full(len(labelled), -1, np.int32)
        lab[labelled] = pm.index(pm.names(ev["actor"], ev["event_type"], ev["target"])[labelled])
        marks = MarkModel.for_events(ev["event_type"], ev["target"], len(pm.processes),
                                     self.mark_pseudo_count, self.mark_channels)
        self._mcode = marks.encode(ev["event_type"], ev["target"], ev["fatalities"],
                                   ev["location_precision"], fitting=True)
        marks.forbid_self_targets([pm.actors[g] for g in pm.process_actor])
        self._marks, self._mk, self._lab = marks, marks.kind_codes(self._mcode), lab
        self._t, self._u, self._x, self._y = ev["t"], ev["u"], ev["x"], ev["y"]
        self._prec, self._s2 = ev["precision"], ev["precision"] ** 2
        self._ids, self._start = ev["ids"], ev["start"]
        self.t_end_ = float(np.max(self._t + self._u))

    def _set_processes(self, pm: ProcessMap) -> None:
        self.process_map_ = pm
        self.actors_, self.processes_, self.process_actor_ = (pm.actors, pm.processes,
                                                              pm.process_actor)

    def _build_pairs(self, grid: GridIndex):
        W, R = float(self.window_days), float(self.radius_km)
        max_pairs = int(self.max_pair_memory_mb * 2**20 / BYTES_PER_PAIR)
        return build_pairs(self._t, self._x, self._y, W, R, u=self._u, s2=self._s2,
                           max_pairs=max_pairs, omega0=6.0 / W, sigma0_km=R / 10.0, grid=grid)

    def _candidate_pairs(self):
        """Every event's candidate parents (within ``window_days`` and ``radius_km``)."""
        grid = GridIndex.build(self._t, self._x, self._y, float(self.radius_km))
        pairs = self._build_pairs(grid)
        if pairs.capped:
            warnings.warn(
                f"{pairs.n_candidates:,} candidate pairs exceed max_pair_memory_mb="
                f"{self.max_pair_memory_mb:g}: each event keeps its {pairs.cap} nearest "
                f"candidates in space and time (reduce window_days or radius_km, or raise the "
                f"budget)", RuntimeWarning, stacklevel=3)
        self._grid, self._pairs = grid, pairs
        self.n_pairs_ = pairs.n_pairs
        return pairs

    def _initial_em(self, ev: dict, pairs, warm_start=None) -> EM:
        """The backgrounds and the state EM starts from: the labelled events' marks, grounds
        and rates, a modest diagonal triggering, the latent events' labels from the background
        alone; or, from a fitted ``warm_start``, its state (:mod:`culpa.model.warm`)."""
        t, u, x, y, prec, lab = self._t, self._u, self._x, self._y, self._prec, self._lab
        s2, mcode, marks = self._s2, self._mcode, self._marks
        n, K = len(t), len(self.processes_)
        W, R = float(self.window_days), float(self.radius_km)
        labelled = lab >= 0
        latent = np.flatnonzero(lab < 0)
        persist = bool(self.mark_persistence) and "kind" in marks.channels
        t_begin = float(np.min(t - u))
        # ---- background ----------------------------------------------------------------------
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
        # ---- the labelled events' marks, grounds and rates -----------------------------------
        Q = np.zeros((n, K))
        Q[labelled, lab[labelled]] = 1.0
        marks.update(Q, mcode)  # from the labelled events only
        spatial.set_levels(prec)
        lvl = spatial.level_of(prec)
        block = W if self.crossfit_block_days is None else float(self.crossfit_block_days)
        fold = (np.floor((t - t_begin) / block) % 2).astype(np.int8)
        shrink, H_actor, fought = self._actor_grounds(x, y, lab, ev["target"], prec, R)
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
        from culpa.model import warm  # the fit path only (it imports pandas)

        carried = (warm.carry_grounds(self, warm_start, kde) if warm_start is not None
                   else np.zeros(K, bool))
        for k in np.flatnonzero(~carried).tolist():
            kde.accept(k, kde.propose(k, (lab == k).astype(float)), 1.0)
        ground = spatial.with_floor(kde.values)
        frac = np.bincount(lab[labelled], minlength=K) / labelled.sum()
        for k in range(K):
            cnt = np.bincount(bins[lab == k], minlength=temporal.mu.shape[1]).astype(float)
            cnt += np.bincount(bins[latent], minlength=temporal.mu.shape[1]) * frac[k]
            temporal.mu[k] = 0.5 * (cnt + temporal.tau) / temporal.lengths
        # ---- triggering, and the latent labels from the background ---------------------------
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
        B = temporal.rate(t) * ground
        if len(latent):
            lp = np.log(B[latent]) + logf[latent]
            lp -= lp.max(1, keepdims=True)
            q = np.exp(lp)
            Q[latent] = q / q.sum(1, keepdims=True)
        prho = np.full(K, 0.5 if persist else 0.0)
        state = EMState(alpha=alpha, omega=omega, space=space, persistence=prho, logf=logf,
                        ground=ground, Ghat=compensator_weights(t, self.t_end_, omega, W), B=B,
                        pers=(kr.persistence(self._mk, marks.kind_log_p(), prho) if persist
                              else None))
        data = EMData(pairs=pairs, t=t, u=u, s2=s2, labels=lab, latent=latent,
                      children=kr.children_of(pairs, n, lab < 0) if len(latent) else None,
                      mcode=mcode, kinds=self._mk, bins=bins, presence=fought,
                      to_actors=self.process_map_.to_actors, Q=Q, marks=marks,
                      temporal=temporal, spatial=spatial, kde=kde, t_end=self.t_end_, window=W,
                      cross_excitation=bool(self.cross_excitation), persist=persist)
        em = EM(data, state, verbose=self.verbose)
        if warm_start is not None:
            warm.apply(self, warm_start, em, carried)
        return em

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

    def _keep_fitted(self, em: EM) -> None:
        """The learned state from EM's final state and its last E pass."""
        final, r = em.final()
        d = em.d
        self.mark_persistence_ = final.persistence
        self._pers = final.pers
        self._w = r.w
        self._Q, self._Ex = d.Q, d.Q @ final.alpha
        self._bg = r.Phi.sum(1)
        if self._keeps_final_pass:  # read by the fit's own later steps, then dropped
            self._final_pass = r
        self._spatial, self._temporal = d.spatial, d.temporal
        d.kde.finalize()
        self._kde_loo = d.kde.values
        self.alpha_ = final.alpha
        self.omega_ = float(final.omega)
        self._space = final.space
        self._set_space_attrs()
        self.log_likelihood_ = em.history
        self.n_iter_ = em.n_iter
        self.converged_ = em.converged
        self._set_public()

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

    # -----------------------------------------------------------------------------------------
    # actors and processes, and the fitted state other faces read

    def by_actor(self, per_process) -> np.ndarray:
        """Sum the last axis of a per-process array (probabilities, intensities, counts) into
        actors (columns = ``actors_``)."""
        return self.process_map_.by_actor(per_process)

    def event_actors(self, Q, labels) -> tuple[np.ndarray, np.ndarray]:
        """Each event's actor (index into ``actors_``: its label's, else the most probable) and
        that actor's probability, from process probabilities ``Q`` (n x processes) and process
        labels (-1 where latent)."""
        return self.process_map_.event_actors(Q, labels)

    def process_names(self, actor, event_type, target=None) -> np.ndarray:
        """Each event's process name under this model (None without an actor; a name may be
        one the model has no process for)."""
        check_fitted(self)
        return self.process_map_.names(actor, event_type, target)

    def actor_means(self, per_process) -> np.ndarray:
        """A per-process quantity (``branching_ratio_``, ``mark_persistence_``) per actor: the
        mean over its processes weighted by their events."""
        check_fitted(self)
        w = self._Q.sum(0) + 1e-12
        return self.by_actor(np.asarray(per_process, float) * w) / self.by_actor(w)

    @property
    def unseen_actor_proba_(self) -> float:
        """The chance that an event is by an actor with no labelled event in the history (no
        column of ``actors_``): Good-Turing's estimate, the share of labelled events whose
        actor has exactly one, with one pseudo-count so that it is never zero."""
        check_fitted(self)
        lab = self._lab[self._lab >= 0]
        counts = np.bincount(self.process_actor_[lab], minlength=len(self.process_map_.actors))
        if self._newcomers is not None:
            counts = np.concatenate([counts, np.bincount(self._newcomers.ground_of)])
        return float(((counts == 1).sum() + 1) / (counts.sum() + 1))

    @property
    def fitted_events_(self) -> FittedEvents:
        """The fitted events in time order as the model holds them (see :class:`FittedEvents`)."""
        check_fitted(self)
        return FittedEvents(ids=self._ids, start=self._start, t=self._t, u=self._u, x=self._x,
                            y=self._y, s2=self._s2, excitation=self._Ex, label_proba=self._Q,
                            labels=self._lab)

    @property
    def spatial_background_(self) -> SpatialBackground:
        """Each process's ground b_k(x) (per epoch), as rasters."""
        check_fitted(self)
        return self._spatial

    @property
    def temporal_background_(self) -> TemporalBackground:
        """Each process's background rate mu_k(t), piecewise constant."""
        check_fitted(self)
        return self._temporal

    # -----------------------------------------------------------------------------------------
    # prediction

    def _query_arrays(self, queries: "pd.DataFrame | QueryArrays"):
        """(t, lat, lon, precision km, u, mark codes) of a query frame (or of its parsed
        arrays)."""
        q = queries if isinstance(queries, QueryArrays) else QueryArrays.parse(queries, self.t0_)
        codes = self._marks.encode(q.event_type, q.target, q.fatalities, q.location_precision)
        prec = np.where(np.isnan(q.location_precision), self.min_bandwidth_km,
                        q.location_precision)
        return q.t, q.lat, q.lon, prec, q.u, codes

    def _intensities(self, tq, u, x, y, prec, codes):
        """(background, triggered, log marks), each (n x K), at midpoints ``tq`` of date ranges
        of half-width ``u``."""
        # one query in NumPy (the same numbers): it need not load numba (see onequery)
        query = onequery.triggered if len(tq) == 1 else kr.query_intensity
        trig = query(self._grid_index(), self._x, self._y, self._s2, self._u, self._Ex, tq, x, y,
                     prec ** 2, u, self.omega_, self.window_days, self._space, self.radius_km,
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
        check_fitted(self)
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
        check_fitted(self)
        q = self._query_arrays(queries)
        logp = self._log_scores(q)
        if self._newcomers is not None:  # a conditioned model's further actors
            return self._newcomers.actor_proba(self, q, logp)
        return self.by_actor(_normalise(logp))

    def predict_process_proba(self, queries: pd.DataFrame) -> np.ndarray:
        """As :meth:`predict_proba`, per process (columns = ``processes_``; a conditioned
        model's newcomers have none, so this is among the fitted processes)."""
        check_fitted(self)
        return _normalise(self._log_scores(self._query_arrays(queries)))

    def _log_scores(self, query) -> np.ndarray:
        """log(lambda_k · f_k(marks)) of each process at the parsed queries (n x K)."""
        t, lat, lon, prec, u, codes = query
        x, y = self.projection_.forward(lat, lon)
        bg, trig, logf = self._intensities(t, u, x, y, prec, codes)
        return np.log(bg + trig) + logf

    def warm_up(self) -> dict:
        """Do now what a loaded model otherwise does during its first queries: render (or
        decompress) every ground raster (:meth:`SpatialBackground.render_all`), build the
        query index and load the compiled query kernels (one attribution, at the last fitted
        event). A server calls it once in the background after loading the model, so that the
        first requests cost what later ones do. Returns ``{"rasters": N}``, the rasters made
        now. The answers are unchanged."""
        check_fitted(self)
        made = self._spatial.render_all()
        lat, lon = self.projection_.inverse(self._x[-1:], self._y[-1:])
        self.explain(pd.Timestamp(self._start[-1]), float(lat[0]), float(lon[0]), top=1)
        return {"rasters": made}

    def predict(self, queries: pd.DataFrame) -> np.ndarray:
        """Most probable actor for each query."""
        p = self.predict_proba(queries)
        return np.asarray(self.actors_, dtype=object)[p.argmax(1)]

    def with_history(self, events: pd.DataFrame) -> "HawkesAttributor":
        """This fitted model (parameters, backgrounds, marks unchanged) with ``events`` it was
        not fitted on added to the history its predictions count, e.g. the events since the
        fit (labelled ones excite as labelled, the others with their predicted labels); see
        :mod:`culpa.model.conditioned`. Returns a copy; ``self`` is unchanged."""
        from culpa.model.conditioned import with_history

        return with_history(self, events)


def _normalise(logp: np.ndarray) -> np.ndarray:
    logp = logp - logp.max(1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(1, keepdims=True)
