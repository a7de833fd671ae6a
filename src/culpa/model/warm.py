"""Warm start of :meth:`HawkesAttributor.fit <culpa.model.hawkes.HawkesAttributor.fit>`: EM
starts from a previous fit's state instead of the default one.

A refit on a little more data (the forecast backtest refits every month on everything before
the refit) has nearly the same optimum as the fit before it. Starting there, EM needs a few
iterations instead of dozens. What is carried over, mapped by process name and event id (a
process or an event the previous fit did not have starts from the defaults):

- the global parameters: ``alpha`` (per pair of processes both fits have), ``omega``, the
  spatial kernel (when both have as many components), the mark persistence ``rho_k``, and the
  background rates ``mu_k(t)`` at each bin's midpoint where the previous fit covered it;
- the latent events' label probabilities (the mass of processes the new fit lacks goes to the
  default start, from the background alone);
- the grounds: each process's KDE is proposed from background weights ``Q[i, k] P_bg(i)``
  with the previous fit's background probabilities (an event new to the fit takes its
  process's mean background share), the weights EM itself would propose from at that state.

Only the starting point changes: EM then runs as in a cold fit, with the same objective and
convergence test, so it ends at the same optimum within its tolerance (tested).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from culpa.model import kernels as kr
from culpa.model.background import RenderedRasters, hat_weights
from culpa.model.em import EM, compensator_weights, update_grounds


def _index_of(new, old) -> np.ndarray:
    """Position in ``old`` of each item of ``new`` (-1 where absent)."""
    return pd.Index(np.asarray(old, dtype=object)).get_indexer(np.asarray(new, dtype=object))


def carry_grounds(model, previous, kde) -> np.ndarray:
    """Give each process of ``model``'s fit that ``previous`` had its ground (see
    :func:`_carry_ground`), before EM starts; returns which processes got one (none when the
    previous grounds are not held as kernels: then they are proposed afresh)."""
    kmap = _index_of(model.processes_, previous.processes_)
    rr = previous._spatial.rasters
    if not isinstance(rr, RenderedRasters) or rr.assigned:
        return np.zeros(len(kmap), bool)
    emap = _index_of(model._ids, previous._ids)
    seen = emap >= 0
    new_of_old = np.full(len(previous._ids), -1, np.int64)
    new_of_old[emap[seen]] = np.flatnonzero(seen)
    shift = _shift_days(model, previous)
    psi = hat_weights(kde.sb.epochs + shift, previous._spatial.epochs)  # (E new x E old)
    fresh = np.flatnonzero(~seen)
    at_fresh = None
    if len(fresh):  # the previous ground at the events it never saw
        lat, lon = model.projection_.inverse(model._x[fresh], model._y[fresh])
        xp, yp = previous.projection_.forward(lat, lon)
        at_fresh = previous._spatial.kde(xp, yp, model._prec[fresh], model._t[fresh] + shift)
    for k in np.flatnonzero(kmap >= 0).tolist():
        ko = int(kmap[k])
        kde.coef[k] = _carried_kernels(rr, ko, k, new_of_old, model._lab, psi)
        vals = np.zeros(len(emap))
        vals[seen] = previous._kde_loo[emap[seen], ko]
        if at_fresh is not None:
            vals[fresh] = at_fresh[:, ko]
        kde.values[:, k] = vals
    return kmap >= 0


def _carried_kernels(rr, ko: int, k: int, new_of_old, labels, psi):
    """The kernels of the previous ground of process ``ko`` as this fit's ``(keys, C)`` for
    process ``k`` (:class:`~culpa.model.background.CrossFitKDE`): each event at its own
    bandwidth when it is ``k``'s or latent, else at its actor's; the weights per epoch are the
    previous ground's at this fit's epoch centres."""
    i_old, _ = rr.kernels[ko]
    i_new = new_of_old[np.asarray(i_old, np.int64)]
    ok = i_new >= 0
    i_new = i_new[ok]
    C_old = np.stack([np.asarray(rr.columns[rr._index[ko, e]][1], float)[ok]
                      for e in range(rr._index.shape[1])])
    own = (labels[i_new] == k) | (labels[i_new] < 0)
    keys = 2 * i_new + (~own).astype(np.int64)
    order = np.argsort(keys)
    return keys[order], np.ascontiguousarray((psi @ C_old)[:, order])


def _shift_days(model, previous) -> float:
    """Days to add to a time of ``model`` to get the same time in ``previous``'s frame."""
    return float((model.t0_ - previous.t0_) / np.timedelta64(1, "D"))


def apply(model, previous, em: EM, carried: np.ndarray) -> None:
    """Move the initial state of ``em`` (built by ``model._initial_em``, with the grounds of
    the ``carried`` processes from :func:`carry_grounds`) to ``previous``'s fitted state (see
    the module doc). ``previous`` is a fitted HawkesAttributor."""
    d, s = em.d, em.s
    kmap = _index_of(model.processes_, previous.processes_)
    emap = _index_of(model._ids, previous._ids)
    _set_theta(model, previous, em, kmap)
    _set_labels(previous, d, kmap, emap)
    weights = _background_weights(previous, d, kmap, emap)
    d.kde.set_group_weights(weights @ d.to_actors + d.presence)
    if not carried.any():  # EM's own ground update from the warm background weights
        update_grounds(d.kde, weights)
    for k in range(weights.shape[1]):  # a process whose weights stay put is not re-proposed
        tot = float(weights[:, k].sum())
        if tot > 0:
            d.kde.last_weights[k] = weights[:, k] / tot
    s.ground = d.spatial.with_floor(d.kde.values)
    d.marks.update(d.Q, d.mcode)
    s.logf = d.marks.loglik(d.mcode)
    s.Ghat = compensator_weights(d.t, d.t_end, s.omega, d.window)
    s.B = d.temporal.rate(d.t) * s.ground
    if d.persist:
        s.pers = kr.persistence(d.kinds, d.marks.kind_log_p(), s.persistence)


def _set_theta(model, previous, em: EM, kmap: np.ndarray) -> None:
    d, s = em.d, em.s
    has = kmap >= 0
    k_new, k_old = np.flatnonzero(has), kmap[has]
    alpha = s.alpha.copy()
    alpha[np.ix_(k_new, k_new)] = previous.alpha_[np.ix_(k_old, k_old)]
    s.alpha = alpha if d.cross_excitation else np.diag(np.diag(alpha))
    s.omega = float(previous.omega_)
    rho, sig2 = previous._space
    if len(sig2) == len(s.space[1]):
        s.space = (np.array(rho, float), np.array(sig2, float))
    if d.persist and previous._pers is not None:
        prho = s.persistence.copy()
        prho[k_new] = previous.mark_persistence_[k_old]
        s.persistence = np.clip(prho, 1e-6, 1 - 1e-6)
    temporal = d.temporal
    mid = 0.5 * (temporal.edges[:-1] + temporal.edges[1:])
    mid_old = mid + _shift_days(model, previous)
    covered = mid_old <= previous._temporal.t_end
    if covered.any() and len(k_new):
        rate = previous._temporal.rate(mid_old[covered])  # (bins x previous processes)
        mu = temporal.mu.copy()
        mu[np.ix_(k_new, np.flatnonzero(covered))] = rate[:, k_old].T
        temporal.mu = np.maximum(mu, 1e-12)


def _set_labels(previous, d, kmap: np.ndarray, emap: np.ndarray) -> None:
    """The latent events the previous fit had take its label probabilities; the mass of
    processes the new fit lacks goes to the default start."""
    latent = d.latent
    if not len(latent):
        return
    old = emap[latent]
    seen = old >= 0
    rows, prev_rows = latent[seen], old[seen]
    has = kmap >= 0
    q = np.zeros((len(rows), len(kmap)))
    q[:, has] = previous._Q[np.ix_(prev_rows, kmap[has])]
    kept = np.clip(q.sum(1, keepdims=True), 0.0, 1.0)
    d.Q[rows] = q + (1.0 - kept) * d.Q[rows]
    d.Q[rows] /= d.Q[rows].sum(1, keepdims=True)


def _background_weights(previous, d, kmap: np.ndarray, emap: np.ndarray) -> np.ndarray:
    """``Q[i, k]`` times event i's background probability in the previous fit (new events:
    their process's mean background share there)."""
    n, K = d.Q.shape
    bg_prev = np.asarray(previous._bg, float)
    Qp = previous._Q
    share_old = (Qp * bg_prev[:, None]).sum(0) / np.maximum(Qp.sum(0), 1e-12)
    default = float(bg_prev.mean()) if len(bg_prev) else 1.0
    share = np.full(K, default)
    has = kmap >= 0
    share[has] = share_old[kmap[has]]
    bg = np.empty((n, K))
    seen = emap >= 0
    bg[seen] = bg_prev[emap[seen]][:, None]
    bg[~seen] = share[None, :]
    return np.clip(d.Q * bg, 0.0, None)
