"""Candidate parent pairs, built once with a spatial grid and a time window (never O(N^2)).

For every child ``i`` the candidates are the events ``j`` with ``0 < t_i - t_j <= window`` and
``|x_i - x_j| <= radius`` (and, when a date is imprecise, earlier events of the same time). They are stored per child in CSR form, 12 bytes a pair:

- ``indptr``  int64 (N + 1): pairs of child ``i`` are ``indptr[i]:indptr[i + 1]``
- ``parent``  int32: the parent's index (events are indexed in time order)
- ``dt``      float32: ``t_i - t_j`` in days
- ``d2``      float32: squared distance in km^2

How it is built: events (already sorted by time) are bucketed into square cells of side
``>= radius``; inside a cell they stay in time order, so for each child a binary search finds the
first event of each of the 3x3 neighbouring cells inside the window, and a scan stops at the
child's own time. A counting pass (parallel, numba) sizes the arrays exactly before anything is
allocated, and a filling pass writes them.

Memory: pair counts grow with window x radius^2 x clustering. The counting pass is cheap and
allocates nothing per pair, so the caller can check the exact total first. If it exceeds
``max_pairs`` each child keeps only its ``cap`` best candidates (largest value of a fixed proxy
kernel ``exp(-omega0 dt - d2 / (2 (sigma0^2 + s_i^2 + s_j^2)))`` — the near ones in space and time,
which carry nearly all of the triggering mass), with ``cap`` the largest value that fits, and
:attr:`CandidatePairs.capped` says so. The pairs therefore never take more than ``12 * max_pairs``
bytes. (Streaming the pairs in time blocks instead of storing them would need no memory at all
but would rebuild them in every EM pass; at the scales targeted here the cap loses far less.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from culpa.model import lazynumba as nb

BYTES_PER_PAIR = 12
#: Most cells a grid index may have (the cell grows beyond the radius for huge regions).
MAX_CELLS = 1 << 22


@dataclass
class GridIndex:
    """Events bucketed in square cells; within a cell, in time order (for window searches)."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    reach: int  # how many cells either side a radius search must visit
    start: np.ndarray  # int64 (nx * ny + 1): events of cell c are ev[start[c]:start[c + 1]]
    ev: np.ndarray  # int32: event indices, grouped by cell, ascending (= time order)
    t: np.ndarray  # float64: times of ``ev``

    @classmethod
    def build(cls, t: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> "GridIndex":
        """Index events whose times ``t`` are sorted ascending."""
        n = len(t)
        if n and np.any(np.diff(t) < 0):
            raise ValueError("events must be sorted by time")
        if n == 0:
            return cls(0.0, 0.0, float(radius), 1, 1, 1, np.zeros(2, np.int64),
                       np.zeros(0, np.int32), np.zeros(0))
        x0, y0 = float(x.min()), float(y.min())
        w, h = float(x.max()) - x0, float(y.max()) - y0
        cell = max(float(radius), 1e-6)
        while (int(w / cell) + 1) * (int(h / cell) + 1) > MAX_CELLS:
            cell *= 2.0
        nx, ny = int(w / cell) + 1, int(h / cell) + 1
        reach = int(np.ceil(radius / cell)) if radius > 0 else 1
        cx = np.minimum(((x - x0) / cell).astype(np.int64), nx - 1)
        cy = np.minimum(((y - y0) / cell).astype(np.int64), ny - 1)
        cid = cy * nx + cx
        ev = np.argsort(cid, kind="stable").astype(np.int32)
        counts = np.bincount(cid, minlength=nx * ny)
        start = np.zeros(nx * ny + 1, np.int64)
        np.cumsum(counts, out=start[1:])
        return cls(x0, y0, cell, nx, ny, max(reach, 1), start, ev, np.ascontiguousarray(t[ev]))

    def arrays(self):
        return (self.x0, self.y0, self.cell, self.nx, self.ny, self.reach, self.start, self.ev,
                self.t)


@dataclass
class CandidatePairs:
    indptr: np.ndarray  # int64 (N + 1)
    parent: np.ndarray  # int32
    dt: np.ndarray  # float32
    d2: np.ndarray  # float32
    n_candidates: int  # before any cap
    cap: int | None = None  # per-child cap applied, or None

    @property
    def capped(self) -> bool:
        return self.cap is not None

    @property
    def n_pairs(self) -> int:
        return int(self.indptr[-1])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.indptr, self.parent, self.dt, self.d2))

    def child(self) -> np.ndarray:
        """Child index of every pair (allocates 4 bytes a pair; for tests and reports)."""
        n = len(self.indptr) - 1
        return np.repeat(np.arange(n, dtype=np.int32), np.diff(self.indptr))


@nb.njit(cache=True, inline="always")
def _lower_bound(a, lo, hi, v):
    """First position p in a[lo:hi] (sorted) with a[p] >= v."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, inline="always")
def cell_span(px, py, x0, y0, cell, nx, ny, reach):
    """The grid cells within ``reach`` cells of a point: columns [gx0, gx1), rows [gy0, gy1)."""
    cx = int(math.floor((px - x0) / cell))
    cy = int(math.floor((py - y0) / cell))
    return (max(cx - reach, 0), min(cx + reach + 1, nx), max(cy - reach, 0),
            min(cy + reach + 1, ny))


@nb.njit(cache=True, inline="always")
def _scan_parents(i, t, x, y, u, window, r2, x0, y0, cell, nx, ny, reach, start, ev, ct,
                  bj, bdt, bd2):
    """The candidate parents of event ``i``: how many, and (when the buffers are not empty)
    each one's index, lag and squared distance in ``bj``, ``bdt``, ``bd2``."""
    store = len(bj) > 0
    ti, xi, yi = t[i], x[i], y[i]
    gx0, gx1, gy0, gy1 = cell_span(xi, yi, x0, y0, cell, nx, ny, reach)
    m = 0
    for gy in range(gy0, gy1):
        for gx in range(gx0, gx1):
            g = gy * nx + gx
            p = _lower_bound(ct, start[g], start[g + 1], ti - window)
            for q in range(p, start[g + 1]):
                j = ev[q]
                if j >= i:
                    break
                if ct[q] >= ti and u[i] <= 0.0 and u[j] <= 0.0:
                    continue
                dx, dy = x[j] - xi, y[j] - yi
                dd = dx * dx + dy * dy
                if dd <= r2:
                    if store:
                        bj[m] = j
                        bdt[m] = ti - ct[q]
                        bd2[m] = dd
                    m += 1
    return m


@nb.njit(cache=True, parallel=True)
def _count(t, x, y, u, window, r2, x0, y0, cell, nx, ny, reach, start, ev, ct):
    n = len(t)
    counts = np.zeros(n, np.int64)
    nj, nf = np.empty(0, np.int32), np.empty(0, np.float64)
    for i in nb.prange(n):
        counts[i] = _scan_parents(i, t, x, y, u, window, r2, x0, y0, cell, nx, ny, reach, start,
                                  ev, ct, nj, nf, nf)
    return counts


@nb.njit(cache=True, parallel=True)
def _fill(t, x, y, u, s2, window, r2, x0, y0, cell, nx, ny, reach, start, ev, ct, counts, indptr,
          cap, omega0, sigma0_2, parent, dt_out, d2_out, maxc, nchunk):
    n = len(t)
    for ch in nb.prange(nchunk):
        lo = ch * n // nchunk
        hi = (ch + 1) * n // nchunk
        bj = np.empty(max(maxc, 1), np.int32)
        bdt = np.empty(max(maxc, 1), np.float64)
        bd2 = np.empty(max(maxc, 1), np.float64)
        bsc = np.empty(maxc, np.float64)
        for i in range(lo, hi):
            m = _scan_parents(i, t, x, y, u, window, r2, x0, y0, cell, nx, ny, reach, start, ev,
                              ct, bj, bdt, bd2)
            o = indptr[i]
            if cap < 0 or m <= cap:
                for a in range(m):
                    parent[o + a] = bj[a]
                    dt_out[o + a] = bdt[a]
                    d2_out[o + a] = bd2[a]
            else:
                for a in range(m):
                    v = sigma0_2 + s2[i] + s2[bj[a]]
                    bsc[a] = omega0 * bdt[a] + bd2[a] / (2.0 * v) + 0.5 * np.log(v)
                sel = np.argsort(bsc[:m])[:cap]
                sel.sort()
                for a in range(cap):
                    b = sel[a]
                    parent[o + a] = bj[b]
                    dt_out[o + a] = bdt[b]
                    d2_out[o + a] = bd2[b]


def build_pairs(t: np.ndarray, x: np.ndarray, y: np.ndarray, window_days: float,
                radius_km: float, *, u: np.ndarray | None = None,
                s2: np.ndarray | None = None, max_pairs: int | None = None,
                omega0: float | None = None, sigma0_km: float | None = None,
                grid: GridIndex | None = None) -> CandidatePairs:
    """Candidate parents of every event; ``t`` sorted ascending (days), ``x``/``y`` in km.

    Events with the same time are ordered by index: ``j`` before ``i`` may be a parent of ``i``
    when either date is imprecise (``u`` > 0, half-width in days) — two events on the same day
    may have triggered one another; with exact times a tie is never a pair.
    ``s2`` (squared location precision, km^2) only matters for ranking when a cap applies.
    """
    t = np.ascontiguousarray(t, dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = len(t)
    if n >= 2**31 - 1:
        raise ValueError("too many events for int32 parent indices")
    s2 = np.zeros(n) if s2 is None else np.ascontiguousarray(s2, dtype=np.float64)
    u = np.zeros(n) if u is None else np.ascontiguousarray(u, dtype=np.float64)
    grid = grid or GridIndex.build(t, x, y, radius_km)
    counts = _count(t, x, y, u, float(window_days), float(radius_km) ** 2, *grid.arrays())
    total = int(counts.sum())
    maxc = int(counts.max()) if n else 0
    cap = -1
    if max_pairs is not None and total > max_pairs:
        cap = cap_for_budget(counts, max_pairs)
        counts = np.minimum(counts, cap)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    m = int(indptr[-1])
    parent = np.empty(m, np.int32)
    dt = np.empty(m, np.float32)
    d2 = np.empty(m, np.float32)
    omega0 = 3.0 / window_days if omega0 is None else omega0
    sigma0 = radius_km / 5.0 if sigma0_km is None else sigma0_km
    if n:
        _fill(t, x, y, u, s2, float(window_days), float(radius_km) ** 2, *grid.arrays(), counts,
              indptr, cap, float(omega0), float(sigma0) ** 2, parent, dt, d2, maxc,
              min(n, 64 * nb.get_num_threads()))
    return CandidatePairs(indptr, parent, dt, d2, total, None if cap < 0 else cap)


def cap_for_budget(counts: np.ndarray, max_pairs: int) -> int:
    """Largest per-child cap ``c`` with ``sum(min(counts, c)) <= max_pairs`` (at least 1)."""
    s = np.sort(counts)
    n = len(s)
    csum = np.concatenate([[0], np.cumsum(s)])
    lo, hi = 1, int(s[-1]) if n else 1
    while lo < hi:  # largest c with f(c) <= budget, f increasing
        mid = (lo + hi + 1) // 2
        k = np.searchsorted(s, mid)  # s[:k] < mid
        f = csum[k] + (n - k) * mid
        if f <= max_pairs:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 1)


@nb.njit(cache=True)
def _reverse(indptr, parent, mask, with_pos):
    """Counting sort of the pairs by parent (only parents with mask true)."""
    n = len(indptr) - 1
    cnt = np.zeros(n + 1, np.int64)
    for p in range(len(parent)):
        j = parent[p]
        if mask[j]:
            cnt[j + 1] += 1
    for j in range(n):
        cnt[j + 1] += cnt[j]
    m = cnt[n]
    rchild = np.empty(m, np.int32)
    rpos = np.empty(m if with_pos else 0, np.int64)
    fill = cnt[:n].copy()
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = parent[p]
            if mask[j]:
                q = fill[j]
                rchild[q] = i
                if with_pos:
                    rpos[q] = p
                fill[j] = q + 1
    return cnt, rpos, rchild


@nb.njit(cache=True)
def _reverse_lags(indptr, parent, dt, d2, mask, rptr):
    n = len(indptr) - 1
    m = rptr[n]
    rdt = np.empty(m, np.float32)
    rd2 = np.empty(m, np.float32)
    fill = rptr[:n].copy()
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = parent[p]
            if mask[j]:
                q = fill[j]
                rdt[q] = dt[p]
                rd2[q] = d2[p]
                fill[j] = q + 1
    return rdt, rd2


def reverse_index(pairs: CandidatePairs, n: int, mask: np.ndarray | None = None):
    """Pairs grouped by parent: ``(rptr, rpair, rchild)`` for parents with ``mask`` true.

    ``rpair[rptr[j]:rptr[j + 1]]`` are the pair positions whose parent is ``j`` and ``rchild`` the
    matching children (in child order). Only the masked parents (e.g. the latent ones) cost
    memory: 12 bytes a pair.
    """
    mask = np.ones(n, np.bool_) if mask is None else np.ascontiguousarray(mask, dtype=np.bool_)
    return _reverse(pairs.indptr, pairs.parent, mask, True)


def reverse_lags(pairs: CandidatePairs, n: int, mask: np.ndarray):
    """Like :func:`reverse_index` but with each pair's lag and squared distance copied instead
    of its position: ``(rptr, rchild, rdt, rd2)``, also 12 bytes a pair."""
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    rptr, _, rchild = _reverse(pairs.indptr, pairs.parent, mask, False)
    rdt, rd2 = _reverse_lags(pairs.indptr, pairs.parent, pairs.dt, pairs.d2, mask, rptr)
    return rptr, rchild, rdt, rd2
