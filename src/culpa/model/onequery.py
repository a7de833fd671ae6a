"""One query without numba: the triggered intensity and the contributions of the fitted events
at one (t, x), bilinear raster lookups, in NumPy and the ``math`` module.

A single attribution (``culpa attribute``, :meth:`HawkesAttributor.explain`) reads a few hundred
fitted events and a few raster cells: loading numba and its compiled kernels costs a fresh
process far more (about 1 s of CPU) than the work itself. These functions compute the same
numbers as the numba kernels (:mod:`culpa.model.kernels`, :mod:`culpa.model.background`),
bit for bit: the same operations in the same order, sums accumulated left to right
(``np.cumsum``) and ``exp``/``expm1`` from ``math`` (the C library's, as the compiled code
calls; NumPy's vectorised ``exp`` may differ in the last bit). ``tests/test_onequery.py``
checks that they agree.
"""

from __future__ import annotations

import math

import numpy as np

TWO_PI = 2.0 * math.pi


def distinct(a) -> np.ndarray:
    """The sorted distinct values of ``a`` (no NaN), as ``np.unique``, which imports numpy.ma
    when first called (about 30 ms of a fresh process)."""
    a = np.sort(np.ravel(a))
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if len(a) else a


def _exp(a: np.ndarray) -> np.ndarray:
    return np.fromiter(map(math.exp, a.tolist()), float, len(a))


def _seq_sum(terms: np.ndarray) -> np.ndarray:
    """Column sums of ``terms`` (m x K) added row after row, as a compiled loop adds them."""
    if len(terms) == 0:
        return np.zeros(terms.shape[1:])
    return np.cumsum(terms, axis=0)[-1]


def history(grid, x, y, s2, u, qt, qx, qy, qs2, qu, omega, window, space, radius):
    """(event index, g*h, squared distance) of every fitted event that can trigger the query
    (strictly before ``qt``, within ``window`` days and ``radius`` km), in the grid's order:
    :func:`culpa.model.kernels.query_contributions`."""
    x0, y0, cell, nx, ny, reach, start, ev, ct = grid.arrays()
    cx, cy = int(math.floor((qx - x0) / cell)), int(math.floor((qy - y0) / cell))
    gx0, gx1 = max(cx - reach, 0), min(cx + reach + 1, nx)
    gy0, gy1 = max(cy - reach, 0), min(cy + reach + 1, ny)
    pos = []
    for gy in range(gy0, gy1):
        for gx in range(gx0, gx1):
            g = gy * nx + gx
            lo, hi = int(start[g]), int(start[g + 1])
            p = lo + int(np.searchsorted(ct[lo:hi], qt - window, side="left"))
            q = lo + int(np.searchsorted(ct[lo:hi], qt, side="left"))
            if q > p:
                pos.append(np.arange(p, q))
    pos = np.concatenate(pos) if pos else np.zeros(0, np.int64)
    j = ev[pos].astype(np.int64)
    dx, dy = x[j] - qx, y[j] - qy
    dd = dx * dx + dy * dy
    keep = dd <= float(radius) ** 2
    pos, j, dd = pos[keep], j[keep], dd[keep]
    val = _gh(qt - ct[pos], dd, qu, u[j], qs2, s2[j], float(omega), float(window), space)
    return j, val, dd


def _gh(dt, d2, qu, uj, qs2, sj2, omega, W, space):
    """g * h of each pair (:func:`culpa.model.kernels._gh`)."""
    rho, sig2 = _space_params(space)
    zw = -math.expm1(-omega * W)
    uij = np.where((qu > 0.0) | (uj > 0.0), np.sqrt(qu * qu + uj * uj), 0.0)
    return _g(dt, uij, omega, W, zw) * _h(d2, qs2 + sj2, rho, sig2)


def _g(dt, uij, omega, W, zw):
    out = np.empty(len(dt))
    exact = uij <= 0.0
    out[exact] = omega * _exp(-omega * dt[exact]) / zw
    if (~exact).any():
        d, v = dt[~exact], uij[~exact]
        a = np.maximum(0.0, d - v)
        b = np.minimum(W, d + v)
        em1 = np.fromiter(map(math.expm1, (-omega * (b - a)).tolist()), float, len(a))
        val = _exp(-omega * a) * (-em1) / (2.0 * v * zw)
        out[~exact] = np.where(b <= a, 0.0, val)
    return out


def _h(d2, sij, rho, sig2):
    h = np.zeros(len(d2))
    for c in range(len(rho)):
        v = sig2[c] + sij
        h = h + rho[c] * _exp(-0.5 * d2 / v) / (TWO_PI * v)
    return h


def _space_params(space):
    if np.isscalar(space):
        return np.ones(1), np.array([float(space)])
    rho, sig2 = space
    return np.asarray(rho, np.float64), np.asarray(sig2, np.float64)


def triggered(grid, x, y, s2, u, Ex, qt, qx, qy, qs2, qu, omega, window, space, radius,
              mk=None, qpers=None) -> np.ndarray:
    """Triggered intensity (1 x K) at one query: :func:`culpa.model.kernels.query_intensity`
    for a single query (``qpers``: its :func:`~culpa.model.kernels.persistence` arrays)."""
    j, val, _ = history(grid, x, y, s2, u, float(qt[0]), float(qx[0]), float(qy[0]),
                        float(qs2[0]), float(qu[0]), omega, window, space, radius)
    terms = Ex[j] * val[:, None]
    if mk is not None and qpers is not None:
        qm, qA, qB = qpers
        known = (int(qm[0]) >= 0) & (mk[j] >= 0)
        same = (mk[j] == qm[0])[:, None]
        terms = terms * np.where(known[:, None], np.where(same, qA[0] + qB[0], qA[0]), 1.0)
    return _seq_sum(terms)[None, :]


def lookup(R, x0, y0, c, xs, ys) -> np.ndarray:
    """R bilinearly interpolated at (xs, ys), 0 outside the grid
    (:func:`culpa.model.background._lookup`)."""
    ny, nx = R.shape
    u = (xs - x0) / c - 0.5
    v = (ys - y0) / c - 0.5
    inside = (u >= -0.5) & (v >= -0.5) & (u <= nx - 0.5) & (v <= ny - 0.5)
    u, v = np.where(inside, u, 0.0), np.where(inside, v, 0.0)
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - iu, v - iv
    xa, xb = np.clip(iu, 0, nx - 1), np.clip(iu + 1, 0, nx - 1)
    ya, yb = np.clip(iv, 0, ny - 1), np.clip(iv + 1, 0, ny - 1)
    R = np.asarray(R)
    val = ((1 - fv) * ((1 - fu) * R[ya, xa] + fu * R[ya, xb])
           + fv * ((1 - fu) * R[yb, xa] + fu * R[yb, xb]))
    return np.where(inside, val, 0.0)
