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
  ``spatial_sigmas_km_``) summed component by component — *truncated at* ``radius_km``,
  because the model's intensity only counts parents within ``radius_km`` of a place (:func:`culpa.model.kernels.query_intensity`). For a disc:
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
day after the last event) and multiplied by ``H``. It is never zero (the background
floor), so ``ratio = expected / baseline`` is finite.

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

Modules: ``history`` (the events a forecast starts from), ``background`` (rates and grounds as
forecasts use them, the model's intensity), ``masses`` (the kernels' shares of a horizon and a
disc, the cascade), ``sites`` (watched sites, levels, drivers), ``cells`` (square cells). They
read only the model's public fitted state.
"""

from __future__ import annotations

from culpa.model.forecast.background import (BackgroundRates, background_density,
                                             background_weights, disc_background, intensity)
from culpa.model.forecast.cells import CellGrid, cell_background, forecast_cells
from culpa.model.forecast.history import History, days_since_t0, history
from culpa.model.forecast.masses import (CASCADE_CAP, cascade_factor, disc_mass,
                                         kernel_disc_mass, spatial_kernel, time_mass)
from culpa.model.forecast.sites import (LEVEL_ORDER, LEVELS, NORMAL, Site, SiteForecast,
                                        forecast_site, level_of, long_run)

__all__ = ["BackgroundRates", "background_density", "background_weights", "disc_background",
           "intensity", "CellGrid", "cell_background", "forecast_cells", "History",
           "days_since_t0", "history", "CASCADE_CAP", "cascade_factor", "disc_mass",
           "kernel_disc_mass", "spatial_kernel", "time_mass", "LEVEL_ORDER", "LEVELS", "NORMAL",
           "Site", "SiteForecast", "forecast_site", "level_of", "long_run"]
