"""The background of each process k (an actor's events of one kind): where it acts, b_k(x),
and how much, mu_k(t).

Spatial background b_k(x)
-------------------------
A variable-bandwidth kernel density estimate weighted by background probabilities
(Zhuang-style stochastic declustering):

    b_k(x) = (1 - eps) sum_i w_ik N(x; x_i, h_ik^2 I) / M_ik  +  eps / |region|

- ``w_ik``: event ``i``'s background responsibility for process ``k`` (``Q[i,k] * P(background)``),
  normalised to sum to one over ``i``;
- ``h_ik``: distance from ``x_i`` to the ``n_neighbors``-th nearest *labelled* event of
  process ``k`` (so a small process's ground is smoothed on its own scale, not on the big
  ones'), floored
  at the event's location precision and at ``min_bandwidth_km``. Computed once per fit;
- ``M_ik``: the mass of that kernel inside the study region (edge correction: each kernel is
  renormalised to put all its mass inside the region);
- ``eps``: a small floor over the study region, so no place is impossible for any actor.

It is held as a raster per process (a fine grid of cell ``c0 >= min_bandwidth_km``) so that
evaluating b_k at N points is a bilinear lookup, O(N), and a single attribution costs a few
microseconds. A KD-tree cut off at 4 bandwidths would have to search out to 4 x the largest
bandwidth (the snapped events'), thousands of kernels per point. Rendering: each
kernel goes to a pyramid level where its bandwidth is 2-4 cells; kernels are grouped in quarter-
octave bands and a band is either splatted exactly (few kernels: each Gaussian is evaluated on
its cells and renormalised to its mass, which is also the edge correction) or splatted bilinearly
and convolved with one separable Gaussian (many kernels; weights pre-divided by their in-region
mass). Levels are then summed from the coarsest up by bilinear upsampling, and the result is
renormalised to integrate to one. The cost is independent of how clustered the events are.

At the fitted events themselves the density is evaluated leaving the event out (its own kernel
is subtracted), so an isolated latent event cannot explain itself and reinforce its own label.

Temporal background mu_k(t)
---------------------------
Piecewise constant per bin of ``bin_days`` (a quarter by default): the MAP rate under a
Gamma(1 + tau, 0) prior, ``mu_kb = (sum_{i in b} phi_ik + tau) / L_b`` with ``tau`` = 0.1 events
a bin, so an actor with no recent events falls to about 0.1 events a quarter — near zero, never
zero. Outside the fitted period the nearest bin's rate is used.
"""

from __future__ import annotations

import functools
import hashlib
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from culpa.model import lazynumba as nb
from culpa.model import onequery

#: Memory for the rasters of all processes during a fit (two time folds and their combination,
#: float32); the cell grows beyond min_bandwidth_km if the region and the number of processes
#: would need more.
MAX_RASTER_BYTES = 512 * 2**20
BANDS_PER_OCTAVE = 2
TRUNCATE = 4.0


# ---------------------------------------------------------------------------------------------
# bandwidths


def knn_bandwidths(x, y, lab, n_processes: int, n_neighbors: int, precision_km, min_bw: float,
                   default_bw: float) -> np.ndarray:
    """h[i, k] for every labelled event of process k and every latent event (NaN elsewhere)."""
    lab = np.asarray(lab)
    members = lab[:, None] == np.arange(n_processes)[None, :]
    return member_bandwidths(x, y, members, lab < 0, n_neighbors, precision_km, min_bw,
                             default_bw)


def member_bandwidths(x, y, members, query, n_neighbors: int, precision_km, min_bw: float,
                      default_bw: float) -> np.ndarray:
    """h[i, g] for every member of group g (``members``, N x G bool; groups may overlap) and
    every ``query`` event: the distance to the ``n_neighbors``-th nearest member of g (no
    less than the event's precision or ``min_bw``; ``default_bw`` for a group of one), NaN
    elsewhere."""
    from scipy.spatial import cKDTree  # imported when fitting, not on the query path

    n, G = members.shape
    h = np.full((n, G), np.nan)
    pts = np.column_stack([x, y])
    floor = np.maximum(np.asarray(precision_km, float), min_bw)
    q = np.flatnonzero(query)
    for g in range(G):
        own = np.flatnonzero(members[:, g])
        if len(own) < 2:
            h[own, g] = default_bw
            h[q, g] = default_bw
            continue
        kk = min(n_neighbors, len(own) - 1)
        tree = cKDTree(pts[own])
        d, _ = tree.query(pts[own], k=kk + 1)
        h[own, g] = d[:, -1]
        rest = q[~members[q, g]]
        if len(rest):
            d, _ = tree.query(pts[rest], k=kk)
            h[rest, g] = d if kk == 1 else d[:, -1]
    h = np.fmax(h, floor[:, None])
    return np.where(np.isnan(h), np.nan, np.maximum(h, min_bw))


# ---------------------------------------------------------------------------------------------
# numba helpers


@nb.njit(cache=True, nogil=True, inline="always")
def _axis_weights(o, c, g0, g1, v, inv, out):
    """exp(-d^2 inv) at the centres of cells g0..g1-1 of one axis (origin o, cell c) about v,
    into out[0:g1-g0]; returns their sum."""
    tot = 0.0
    for g in range(g0, g1):
        d = o + (g + 0.5) * c - v
        e = math.exp(-d * d * inv)
        out[g - g0] = e
        tot += e
    return tot


@nb.njit(cache=True, nogil=True)
def _splat_direct(acc, x0, y0, c, xs, ys, hs, ws):
    """Add each kernel exactly (separable: exp(-dx^2) exp(-dy^2)), renormalised to its mass on
    the grid — which is also the edge correction."""
    ny, nx = acc.shape
    rmax = 0
    for i in range(len(xs)):
        r = int(math.ceil(TRUNCATE * hs[i] / c))
        if r > rmax:
            rmax = r
    ex = np.empty(2 * rmax + 1)
    ey = np.empty(2 * rmax + 1)
    for i in range(len(xs)):
        h = hs[i]
        r = int(math.ceil(TRUNCATE * h / c))
        cx = int(math.floor((xs[i] - x0) / c))
        cy = int(math.floor((ys[i] - y0) / c))
        gx0, gx1 = max(cx - r, 0), min(cx + r + 1, nx)
        gy0, gy1 = max(cy - r, 0), min(cy + r + 1, ny)
        if gx0 >= gx1 or gy0 >= gy1:
            continue
        inv = 0.5 / (h * h)
        sx = _axis_weights(x0, c, gx0, gx1, xs[i], inv, ex)
        sy = _axis_weights(y0, c, gy0, gy1, ys[i], inv, ey)
        if sx <= 0.0 or sy <= 0.0:
            continue
        scale = ws[i] / (sx * sy * c * c)
        for gy in range(gy0, gy1):
            fy = scale * ey[gy - gy0]
            for gx in range(gx0, gx1):
                acc[gy, gx] += fy * ex[gx - gx0]


@nb.njit(cache=True, nogil=True)
def _splat_bilinear(acc, x0, y0, c, xs, ys, ws):
    """Add point masses (as densities) to the 4 nearest cell centres."""
    ny, nx = acc.shape
    inv = 1.0 / (c * c)
    for i in range(len(xs)):
        u = (xs[i] - x0) / c - 0.5
        v = (ys[i] - y0) / c - 0.5
        iu = int(math.floor(u))
        iv = int(math.floor(v))
        fu = u - iu
        fv = v - iv
        for dv in range(2):
            gy = min(max(iv + dv, 0), ny - 1)
            wv = fv if dv else 1.0 - fv
            for du in range(2):
                gx = min(max(iu + du, 0), nx - 1)
                wu = fu if du else 1.0 - fu
                acc[gy, gx] += ws[i] * wu * wv * inv


@nb.njit(cache=True, nogil=True)
def _upsample_add(fine, coarse):
    """fine += coarse bilinearly interpolated at the fine cell centres (factor 2). The
    columns' cells and fractions are worked out once, not once a row."""
    nyf, nxf = fine.shape
    nyc, nxc = coarse.shape
    xa = np.empty(nxf, np.int64)
    xb = np.empty(nxf, np.int64)
    fus = np.empty(nxf)
    for gx in range(nxf):
        u = (gx + 0.5) / 2.0 - 0.5
        iu = int(math.floor(u))
        fus[gx] = u - iu
        xa[gx] = min(max(iu, 0), nxc - 1)
        xb[gx] = min(max(iu + 1, 0), nxc - 1)
    for gy in range(nyf):
        v = (gy + 0.5) / 2.0 - 0.5
        iv = int(math.floor(v))
        fv = v - iv
        y0 = min(max(iv, 0), nyc - 1)
        y1 = min(max(iv + 1, 0), nyc - 1)
        for gx in range(nxf):
            fu = fus[gx]
            x0 = xa[gx]
            x1 = xb[gx]
            fine[gy, gx] += ((1 - fv) * ((1 - fu) * coarse[y0, x0] + fu * coarse[y0, x1])
                             + fv * ((1 - fu) * coarse[y1, x0] + fu * coarse[y1, x1]))


@nb.njit(cache=True, nogil=True)
def _block_mean(R, f):
    """Mean over f x f blocks (the last row/column of blocks may be partial: edge-padded).
    Each block is summed row by row, left to right (the rows of a band of blocks are read in
    turn, each block's sum taking its part of the row: the same order of additions)."""
    ny, nx = R.shape
    my, mx = -(-ny // f), -(-nx // f)
    out = np.zeros((my, mx))
    cols = np.empty(mx * f, np.int64)
    for gx in range(mx * f):
        cols[gx] = min(gx, nx - 1)
    for by in range(my):
        for dy in range(f):
            sy = min(by * f + dy, ny - 1)
            for bx in range(mx):
                s = out[by, bx]
                for dx in range(f):
                    s += R[sy, cols[bx * f + dx]]
                out[by, bx] = s
    for by in range(my):
        for bx in range(mx):
            out[by, bx] = out[by, bx] / (f * f)
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _bilinear_cell(x0, y0, c, nx, ny, x, y):
    """The four cells (columns xa, xb; rows ya, yb, clamped to the grid) and the fractions
    fu, fv that interpolate bilinearly at (x, y) on a grid of cell c from (x0, y0); inside is
    False outside the grid."""
    u = (x - x0) / c - 0.5
    v = (y - y0) / c - 0.5
    if u < -0.5 or v < -0.5 or u > nx - 0.5 or v > ny - 0.5:
        return False, 0, 0, 0, 0, 0.0, 0.0
    iu = int(math.floor(u))
    iv = int(math.floor(v))
    return (True, min(max(iu, 0), nx - 1), min(max(iu + 1, 0), nx - 1),
            min(max(iv, 0), ny - 1), min(max(iv + 1, 0), ny - 1), u - iu, v - iv)


@nb.njit(cache=True, nogil=True)
def _lookup(R, x0, y0, c, xs, ys, out, col):
    """out[:, col] = R bilinearly interpolated at (xs, ys); 0 outside the grid."""
    ny, nx = R.shape
    for i in range(len(xs)):
        inside, xa, xb, ya, yb, fu, fv = _bilinear_cell(x0, y0, c, nx, ny, xs[i], ys[i])
        if not inside:
            out[i, col] = 0.0
            continue
        out[i, col] = ((1 - fv) * ((1 - fu) * R[ya, xa] + fu * R[ya, xb])
                       + fv * ((1 - fu) * R[yb, xa] + fu * R[yb, xb]))


@nb.njit(cache=True, nogil=True, inline="always")
def _reflect(k, n):
    """scipy.ndimage's "reflect" extension (d c b a | a b c d | d c b a) of index k."""
    k = k % (2 * n)
    return 2 * n - 1 - k if k >= n else k


@nb.njit(cache=True, nogil=True)
def _blurred_lookup(Rc, x0, y0, c, w, xs, ys, out):
    """out[i] = the raster Rc (cell c) filtered by the symmetric kernel w along each axis
    (rows first, "reflect" at the edges, summed in scipy.ndimage.correlate1d's order: the
    same numbers as ``gaussian_filter``), bilinearly interpolated at (xs[i], ys[i]) as
    :func:`_lookup` does; 0 outside the grid. Only the 4 filtered cells a point reads are
    computed, so a few points cost far less than filtering the raster."""
    ny, nx = Rc.shape
    r = (len(w) - 1) // 2
    ta = np.empty(2 * r + 2)  # row-filtered values at rows ya, yb for columns xa-r .. xa+1+r
    tb = np.empty(2 * r + 2)
    rows = np.empty(2 * r + 1, np.int64)
    rowsb = np.empty(2 * r + 1, np.int64)
    for i in range(len(xs)):
        inside, xa, xb, ya, yb, fu, fv = _bilinear_cell(x0, y0, c, nx, ny, xs[i], ys[i])
        if not inside:
            out[i] = 0.0
            continue
        for m in range(2 * r + 1):
            rows[m] = _reflect(ya + m - r, ny)
            rowsb[m] = _reflect(yb + m - r, ny)
        # columns read: xa - r .. xa + r for xa's filter, xb - r .. xb + r for xb's (xb is xa
        # or xa + 1); slot q holds column xa - r + q
        nq = 2 * r + 1 + (xb - xa)
        for q in range(nq):
            col = _reflect(xa - r + q, nx)
            t = Rc[rows[r], col] * w[r]
            t2 = Rc[rowsb[r], col] * w[r]
            for d in range(r, 0, -1):
                t += (Rc[rows[r - d], col] + Rc[rows[r + d], col]) * w[r - d]
                t2 += (Rc[rowsb[r - d], col] + Rc[rowsb[r + d], col]) * w[r - d]
            ta[q] = t
            tb[q] = t2
        o = xb - xa  # offset of xb's window
        faa = ta[r] * w[r]
        fab = ta[r + o] * w[r]
        fba = tb[r] * w[r]
        fbb = tb[r + o] * w[r]
        for d in range(r, 0, -1):
            faa += (ta[r - d] + ta[r + d]) * w[r - d]
            fab += (ta[r + o - d] + ta[r + o + d]) * w[r - d]
            fba += (tb[r - d] + tb[r + d]) * w[r - d]
            fbb += (tb[r + o - d] + tb[r + o + d]) * w[r - d]
        out[i] = ((1 - fv) * ((1 - fu) * faa + fu * fab)
                  + fv * ((1 - fu) * fba + fu * fbb))


def gauss_weights(sigma: float) -> np.ndarray:
    """The weights of ``scipy.ndimage.gaussian_filter(..., sigma, truncate=TRUNCATE)`` along one
    axis (its radius and its arithmetic: the same numbers)."""
    radius = int(TRUNCATE * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return phi / phi.sum()


@nb.njit(cache=True, nogil=True)
def _filter_line(line, n, r, w, out, stride, first):
    """out[first + stride * i] = sum_d line[r + i + d] w[r + d] for i < n, in
    scipy.ndimage.correlate1d's order for a symmetric kernel (the centre, then the pairs from
    the outside in)."""
    for i in range(n):
        c = r + i
        t = line[c] * w[r]
        for d in range(r, 0, -1):
            t += (line[c - d] + line[c + d]) * w[r - d]
        out[first + stride * i] = t


@nb.njit(cache=True, nogil=True)
def _gaussian_add(acc, a, w):
    """acc += ``a`` filtered by the symmetric kernel ``w`` along rows then columns, zero
    outside (``scipy.ndimage.gaussian_filter(a, sigma, mode="constant")`` with ``w`` from
    :func:`gauss_weights`: the same numbers, without its per-call overhead)."""
    ny, nx = a.shape
    r = (len(w) - 1) // 2
    line = np.zeros(max(ny, nx) + 2 * r)
    b = np.empty(ny * nx)  # after the first axis, row-major
    for gx in range(nx):  # axis 0: each column
        for gy in range(ny):
            line[r + gy] = a[gy, gx]
        for q in range(r + ny, 2 * r + ny):
            line[q] = 0.0
        _filter_line(line, ny, r, w, b, nx, gx)
    res = np.empty(nx)
    for gy in range(ny):  # axis 1: each row
        for gx in range(nx):
            line[r + gx] = b[gy * nx + gx]
        for q in range(r + nx, 2 * r + nx):
            line[q] = 0.0
        for q in range(r):
            line[q] = 0.0
        _filter_line(line, nx, r, w, res, 1, 0)
        for gx in range(nx):
            acc[gy, gx] += res[gx]


@nb.njit(cache=True, nogil=True)
def _gaussian_reflect(a, w):
    """``a`` filtered by the symmetric kernel ``w`` along rows then columns, "reflect" at the
    edges: ``scipy.ndimage.gaussian_filter(a, sigma, mode="reflect")`` with ``w`` from
    :func:`gauss_weights` (the same numbers)."""
    ny, nx = a.shape
    r = (len(w) - 1) // 2
    line = np.empty(max(ny, nx) + 2 * r)
    b = np.empty(ny * nx)
    for gx in range(nx):
        for q in range(ny + 2 * r):
            line[q] = a[_reflect(q - r, ny), gx]
        _filter_line(line, ny, r, w, b, nx, gx)
    out = np.empty((ny, nx))
    res = np.empty(nx)
    for gy in range(ny):
        for q in range(nx + 2 * r):
            line[q] = b[gy * nx + _reflect(q - r, nx)]
        _filter_line(line, nx, r, w, res, 1, 0)
        for gx in range(nx):
            out[gy, gx] = res[gx]
    return out


@nb.njit(cache=True, nogil=True)
def _mix(a, b, lam):
    """``lam * a + (1 - lam) * b`` (as NumPy computes it) in one pass, into ``a``."""
    fa = a.ravel()
    fb = b.ravel()
    mb = 1 - lam
    for i in range(fa.size):
        fa[i] = lam * fa[i] + mb * fb[i]
    return a


def _in_box_mass(x, y, h, X0, X1, Y0, Y1):
    from scipy.special import ndtr

    return ((ndtr((X1 - x) / h) - ndtr((X0 - x) / h))
            * (ndtr((Y1 - y) / h) - ndtr((Y0 - y) / h)))


# ---------------------------------------------------------------------------------------------
# the spatial background


def hat_weights(t, centres) -> np.ndarray:
    """Partition of unity over epochs: linear interpolation between epoch centres, (n x E)."""
    t = np.asarray(t, float)
    E = len(centres)
    out = np.zeros((len(t), E))
    if E == 1:
        out[:] = 1.0
        return out
    tc = np.clip(t, centres[0], centres[-1])
    j = np.clip(np.searchsorted(centres, tc, side="right") - 1, 0, E - 2)
    f = (tc - centres[j]) / (centres[j + 1] - centres[j])
    rows = np.arange(len(t))
    out[rows, j] = 1.0 - f
    out[rows, j + 1] += f
    return out


#: Up to this many points, a raster lookup runs in NumPy (:func:`culpa.model.onequery.lookup`,
#: the same numbers as :func:`_lookup`), so that a single query needs no numba.
FEW_POINTS = 64


class SpatialBackground:
    """Per-process (and per-epoch) raster densities over one study region (see module doc).

    ``epochs`` are the centres (days) of the epochs of a slowly changing ground: the density at
    time t is ``sum_e psi_e(t) b_ke(x)`` with ``psi`` the hat functions of :func:`hat_weights`
    (one epoch: a static ground).
    """

    def __init__(self, x0: float, y0: float, cell: float, nx: int, ny: int, n_processes: int,
                 eps: float = 1e-3, epochs=(0.0,), rasters=None):
        self.x0, self.y0, self.cell, self.nx, self.ny = float(x0), float(y0), float(cell), nx, ny
        self.n_processes = n_processes
        self.eps = float(eps)
        self.epochs = np.asarray(epochs, float)
        E = len(self.epochs)
        if rasters is None:  # uniform grounds (no kernels), rendered only if read
            empty = (np.zeros(0, np.int32), np.zeros(0))
            rasters = RenderedRasters(self, [], [], [empty] * n_processes,
                                      [(k, np.zeros(0, np.float32)) for k in range(n_processes)],
                                      np.repeat(np.arange(n_processes)[:, None], E, 1))
        self.rasters = rasters
        self.set_levels([])

    @classmethod
    def for_points(cls, x, y, n_processes: int, min_cell: float, margin: float,
                   eps: float = 1e-3, epochs=(0.0,)) -> "SpatialBackground":
        X0, X1 = float(np.min(x)) - margin, float(np.max(x)) + margin
        Y0, Y1 = float(np.min(y)) - margin, float(np.max(y)) + margin
        area = (X1 - X0) * (Y1 - Y0)
        E = len(epochs)
        # fit-time rasters: two folds and their combination per process and epoch
        cell = max(min_cell, math.sqrt(area * n_processes * E * 12 / MAX_RASTER_BYTES))
        nx = max(int(math.ceil((X1 - X0) / cell)), 1)
        ny = max(int(math.ceil((Y1 - Y0) / cell)), 1)
        return cls(X0, Y0, cell, nx, ny, n_processes, eps, epochs)

    @property
    def area(self) -> float:
        return self.nx * self.ny * self.cell ** 2

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (self.x0, self.x0 + self.nx * self.cell, self.y0, self.y0 + self.ny * self.cell)

    def psi(self, t) -> np.ndarray:
        return hat_weights(t, self.epochs)

    # -- rendering ---------------------------------------------------------------------------

    def render(self, x, y, h, w):
        """KDE raster (float64, integrates to 1) of kernels (x, y, h) with weights w (sum 1);
        also each kernel's own value at its centre as rendered per unit weight (``kappa``) and
        its variance there (``selfvar``), for leave-one-out: blurred by a further variance v,
        the own value is ``kappa * selfvar / (selfvar + v)``.

        Only the bounding box of the kernels (4.5 bandwidths around them) is worked on."""
        return self.render_set(self.kernel_set(x, y, h), w)

    def _max_level(self) -> int:
        max_lvl = 0
        while (self.nx >> (max_lvl + 1)) >= 2 and (self.ny >> (max_lvl + 1)) >= 2:
            max_lvl += 1
        return max_lvl

    def kernel_set(self, x, y, h) -> dict:
        """What :meth:`render_set` needs of kernels (x, y, h) whatever their weights: each
        kernel's bandwidth, pyramid level and band, mass in the region, own value and variance,
        and their order by (level, band). A caller rendering the same kernels with several
        weightings (a ground's epochs) works them out once."""
        c0 = self.cell
        X0, X1, Y0, Y1 = self.extent
        x, y = np.asarray(x, float), np.asarray(y, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            hs = np.sqrt(np.asarray(h, float) ** 2 + float(self.levels[0]) ** 2)  # with s0
            # pyramid level: bandwidth 2-4 cells (level 0 takes everything narrower)
            lvl = np.maximum(np.floor(np.log2(hs / (2.0 * c0))), 0).astype(int)
            lvl = np.minimum(lvl, self._max_level())
            cL = c0 * 2.0 ** lvl
            band = np.floor(BANDS_PER_OCTAVE * np.log2(hs / (2.0 * cL))).astype(int)
            mass = np.maximum(_in_box_mass(x, y, hs, X0, X1, Y0, Y1), 1e-12)
            selfvar = hs ** 2 + cL ** 2 / 6.0
            kappa = 1.0 / (2 * math.pi * selfvar) / mass
            logh = np.log(hs)
        key = lvl * 1000 + (band + 500)
        return {"x": x, "y": y, "hs": hs, "lvl": lvl, "mass": mass, "selfvar": selfvar,
                "kappa": kappa, "logh": logh, "reach": TRUNCATE * hs, "key": key,
                "order": np.argsort(key, kind="stable")}

    def render_set(self, ks: dict, w):
        """:meth:`render` of the kernels of :meth:`kernel_set` with weights ``w`` (the same
        numbers: every per-kernel quantity is its own, and the kernels of a weighting keep
        their order by (level, band))."""
        c0 = self.cell
        x, y, hs, lvl, mass = ks["x"], ks["y"], ks["hs"], ks["lvl"], ks["mass"]
        w = np.asarray(w, float)
        keep = w > 0
        idx = np.flatnonzero(keep)
        kappa = np.zeros(len(x))
        selfvar = np.ones(len(x))
        R = np.zeros((self.ny, self.nx))
        if len(idx) == 0:
            R[:] = 1.0 / self.area
            return R, kappa, selfvar
        xs, ys = x[idx], y[idx]
        top = int(lvl[idx].max())
        # crop, aligned to the coarsest level used
        a = 2 ** top
        reach = ks["reach"][idx] + c0 * a
        ix0 = max(int(math.floor((np.min(xs - reach) - self.x0) / c0)) // a * a, 0)
        iy0 = max(int(math.floor((np.min(ys - reach) - self.y0) / c0)) // a * a, 0)
        ix1 = min(int(math.ceil((np.max(xs + reach) - self.x0) / c0)), self.nx)
        iy1 = min(int(math.ceil((np.max(ys + reach) - self.y0) / c0)), self.ny)
        nxc, nyc = max(ix1 - ix0, 1), max(iy1 - iy0, 1)
        cx0, cy0 = self.x0 + ix0 * c0, self.y0 + iy0 * c0
        selfvar[idx] = ks["selfvar"][idx]
        kappa[idx] = ks["kappa"][idx]
        shapes = [(-(-nyc // 2 ** L), -(-nxc // 2 ** L)) for L in range(top + 1)]
        acc = [None] * (top + 1)
        order = ks["order"]
        order = order[keep[order]]  # the weighted kernels by (level, band), stable
        bounds = np.flatnonzero(np.diff(ks["key"][order])) + 1
        logh = ks["logh"]
        for grp in np.split(order, bounds):
            L = int(lvl[grp[0]])
            c = c0 * 2.0 ** L
            shp = shapes[L]
            if acc[L] is None:
                acc[L] = np.zeros(shp)
            hb = float(np.exp(np.mean(logh[grp])))
            sig = math.sqrt(max(hb ** 2 - c ** 2 / 6.0, 1e-12)) / c
            r_direct = 2 * math.ceil(TRUNCATE * hb / c) + 1
            cost_direct = len(grp) * r_direct ** 2
            cost_filter = 2 * shp[0] * shp[1] * (2 * math.ceil(TRUNCATE * sig) + 1) + len(grp) * 4
            if cost_direct <= cost_filter:
                _splat_direct(acc[L], cx0, cy0, c, x[grp], y[grp], hs[grp], w[grp])
            else:
                tmp = np.zeros(shp)
                _splat_bilinear(tmp, cx0, cy0, c, x[grp], y[grp], w[grp] / mass[grp])
                _gaussian_add(acc[L], tmp, gauss_weights(sig))  # gaussian_filter, constant
        for L in range(top, 0, -1):
            if acc[L] is not None:
                if acc[L - 1] is None:
                    acc[L - 1] = np.zeros(shapes[L - 1])
                _upsample_add(acc[L - 1], acc[L])
        Rc = acc[0]
        np.maximum(Rc, 0.0, out=Rc)
        tot = Rc.sum() * c0 * c0
        if not tot > 0:
            R[:] = 1.0 / self.area
            return R, kappa, selfvar
        R[iy0:iy0 + nyc, ix0:ix0 + nxc] = Rc[:iy1 - iy0, :ix1 - ix0] / tot
        kappa /= tot
        return R, kappa, selfvar

    # -- location precision ------------------------------------------------------------------
    #
    # An event known only to within s km is evaluated against the density it would have if its
    # reported place were drawn from N(true place, s^2): b_k convolved with that Gaussian. The
    # blurred rasters are kept per precision level (the distinct precisions of the fitted
    # events, quantised to quarter octaves if there are many), each at a cell of about s/3 so
    # they cost little memory; the blur reflects at the region's edge (mass stays inside).

    def set_levels(self, precisions) -> None:
        """Precision levels (km) from the fitted events' precisions.

        Level 0 is the smallest precision ``s0`` (or 0): it is rendered into the kernels
        themselves (bandwidth ``sqrt(h^2 + s0^2)``, see :meth:`render`), so the common case
        needs no blur; level l > 0 blurs the level-0 raster by ``sqrt(s_l^2 - s0^2)``.
        """
        p = np.asarray(precisions, float)
        p = onequery.distinct(p[p > 0.25 * self.cell])
        if len(p) > 24:
            p = np.unique(self.cell * 2.0 ** (np.round(4 * np.log2(p / self.cell)) / 4))
        base = float(p[0]) if len(p) else 0.0
        self.levels = np.concatenate([[base], p[1:]])
        self._blur_cache = {}
        self._blur_cells = [self.cell] + [self._blur_cell(math.sqrt(v * v - base * base))
                                          for v in p[1:]]

    def _blur_cell(self, s: float) -> float:
        f = 2 ** max(int(math.floor(math.log2(s / (3.0 * self.cell)))), 0)
        return self.cell * f

    def level_of(self, precision_km) -> np.ndarray:
        """Index of the precision level nearest (in log scale) to each precision."""
        p = np.asarray(precision_km, float)
        lv = self.levels
        if len(lv) == 1:
            return np.zeros(p.shape, int)
        logs = np.log(np.maximum(lv, 0.25 * self.cell))
        with np.errstate(divide="ignore"):
            lp = np.log(np.maximum(p, 0.25 * self.cell))
        return np.abs(lp[..., None] - logs).argmin(-1)

    def _blur_params(self, level: int):
        """(block factor f, cell, Gaussian weights) of a level's blur (see :meth:`blur`)."""
        key = ("params", level)
        got = self._blur_cache.get(key)
        if got is not None:
            return got
        s = math.sqrt(float(self.levels[level]) ** 2 - float(self.levels[0]) ** 2)
        c = self._blur_cells[level]
        f = int(round(c / self.cell))
        # block averaging and the lookup's bilinear interpolation each add about c^2/12 and
        # c^2/6 of variance per axis; the filter supplies the rest
        extra = (c * c / 12.0 if f > 1 else 0.0)
        sig = math.sqrt(max(s * s - extra, 1e-12)) / c
        r = int(TRUNCATE * sig + 0.5)  # as scipy.ndimage.gaussian_filter1d
        x = np.arange(-r, r + 1)
        w = np.exp(-0.5 / (sig * sig) * x ** 2)
        got = self._blur_cache[key] = (f, c, sig, w / w.sum())
        return got

    def _coarse(self, R: np.ndarray, f: int) -> np.ndarray:
        if f > 1:
            return _block_mean(np.ascontiguousarray(R, dtype=np.float64), f)
        return np.ascontiguousarray(R, dtype=np.float64)

    def blur(self, R: np.ndarray, level: int) -> np.ndarray:
        """R (level-0 raster) convolved with N(0, s^2) on the level's coarser grid."""
        if level == 0:
            return R
        from scipy import ndimage

        f, c, sig, _ = self._blur_params(level)
        return ndimage.gaussian_filter(self._coarse(R, f), sig, mode="reflect",
                                       truncate=TRUNCATE)

    def lookup_raster(self, R: np.ndarray, x, y, level, memo: dict | None = None) -> np.ndarray:
        """Values at points of given precision levels of the level-0 raster R blurred to each
        point's level: ``lookup(bundle(R), x, y, level)`` without blurring the whole raster
        (only what the points read is filtered). ``memo`` keeps block means of rasters the
        caller passes again while they are alive."""
        return self.lookup_groups(R, self.point_groups(x, y, level), len(x), memo)

    @staticmethod
    def point_groups(x, y, level) -> list:
        """Points by precision level, for :meth:`lookup_groups`: ``(level, rows, x, y)``."""
        out = []
        for l in np.unique(level):
            sel = np.flatnonzero(level == l)
            out.append((int(l), sel, np.ascontiguousarray(x[sel]), np.ascontiguousarray(y[sel])))
        return out

    def lookup_groups(self, R: np.ndarray, groups: list, n: int,
                      memo: dict | None = None) -> np.ndarray:
        """:meth:`lookup_raster` at ``n`` points grouped by :meth:`point_groups` (a caller that
        looks up the same points in many rasters groups them once)."""
        out = np.zeros(n)
        for l, sel, xs, ys in groups:
            if l == 0:
                t2 = np.zeros((len(sel), 1))
                _lookup(R, self.x0, self.y0, self.cell, xs, ys, t2, 0)
                out[sel] = t2[:, 0]
                continue
            f, c, _, w = self._blur_params(l)
            if memo is None:
                Rc = self._coarse(R, f)
            else:
                key = (id(R), f)
                Rc = memo.get(key)
                if Rc is None:
                    Rc = memo[key] = self._coarse(R, f)
            if len(sel) * (len(w) + 1) < Rc.size:  # few points: filter only what they read
                tmp = np.zeros(len(sel))
                _blurred_lookup(Rc, self.x0, self.y0, c, w, xs, ys, tmp)
                out[sel] = tmp
            else:  # many: filter the raster (the same numbers), then interpolate
                F = _gaussian_reflect(Rc, w)  # ndimage.gaussian_filter, "reflect"
                t2 = np.zeros((len(sel), 1))
                _lookup(F, self.x0, self.y0, c, xs, ys, t2, 0)
                out[sel] = t2[:, 0]
        return out

    def bundle(self, R: np.ndarray, needed=None, memo: dict | None = None) -> list:
        """The base raster and its blurred versions, one per precision level (None for levels
        not in ``needed``, when given). ``memo`` (a dict the caller keeps while the rasters it
        passes are alive) blurs a raster passed again (the same object: a process's quiet
        epochs all use its all-time raster) only once per level."""
        out = [R]
        for l in range(1, len(self.levels)):
            if needed is not None and l not in needed:
                out.append(None)
                continue
            if memo is None:
                out.append(self.blur(R, l))
                continue
            key = (id(R), l)
            B = memo.get(key)
            if B is None:
                B = memo[key] = self.blur(R, l)
            out.append(B)
        return out

    def lookup(self, arrays: list, x, y, level) -> np.ndarray:
        """Values of a bundle at points of given precision levels."""
        out = np.zeros(len(x))
        for l in np.unique(level):
            sel = np.flatnonzero(level == l)
            tmp = np.zeros((len(sel), 1))
            _lookup(arrays[l], self.x0, self.y0, self._blur_cells[l],
                    np.ascontiguousarray(x[sel]), np.ascontiguousarray(y[sel]), tmp, 0)
            out[sel] = tmp[:, 0]
        return out

    def stored(self, k: int, e: int, needed=None) -> list:
        """The stored bundle of process k in epoch e: its raster and its blurred versions, each
        blurred once, when first needed (only the levels in ``needed``, when given: None for
        the others). A query blurs what it looks up, never every process and epoch at once."""
        return [self.stored_level(k, e, l) if l == 0 or needed is None or l in needed else None
                for l in range(len(self.levels))]

    def stored_level(self, k: int, e: int, l: int) -> np.ndarray:
        """Process k's raster in epoch e at precision level l (blurred once, when first asked)."""
        if l == 0:
            return self.rasters[k, e]
        key = (k, e, l)
        R = self._blur_cache.get(key)
        if R is None:
            R = self._blurred(k, e, l)
            self._blur_cache[key] = R
        return R

    def _blurred(self, k: int, e: int, l: int) -> np.ndarray:
        """Process k's raster in epoch e blurred to level l, from the raster cache when its
        base raster is kept there (:mod:`culpa.model.rastercache`)."""
        from culpa.model import rastercache

        base = None
        if getattr(self.rasters, "persist", False):
            base = self.rasters.cache_name(int(self.rasters._index[k, e]))
        name = (rastercache.key(base, np.array([l, *self.levels, self._blur_cells[l]]))
                if base else None)
        R = rastercache.read(name) if name else None
        if R is None or R.dtype != np.float32:
            R = self.blur(self.rasters[k, e].astype(np.float64), l).astype(np.float32)
            if name:
                rastercache.write(name, R)
        return R

    def set_raster(self, k: int, R: np.ndarray, e: int = 0) -> None:
        self.rasters[k, e] = np.asarray(R, np.float32)
        self._blur_cache = {}

    # -- evaluation --------------------------------------------------------------------------

    def kde(self, x, y, precision_km=None, t=None) -> np.ndarray:
        """The KDE part (no floor), (n x K), blurred by each point's precision if given, at
        times ``t`` (needed when there are several epochs)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        lvl = (np.zeros(len(x), int) if precision_km is None
               else self.level_of(np.broadcast_to(precision_km, x.shape)))
        E = len(self.epochs)
        psi = np.ones((len(x), 1)) if E == 1 else self.psi(np.broadcast_to(t, x.shape))
        K = self.n_processes
        out = np.zeros((len(x), K))
        for e in np.flatnonzero((psi > 0).any(0)).tolist():  # the epochs any point is in
            sel = np.flatnonzero(psi[:, e] > 0)
            # the points of each precision level are gathered once and every process's raster
            # is read at them (one kernel call per process and level, whatever the points)
            for l in onequery.distinct(lvl[sel]).tolist():
                at = sel[lvl[sel] == l]
                xs, ys = np.ascontiguousarray(x[at]), np.ascontiguousarray(y[at])
                vals = np.zeros((len(at), K))
                for k in range(K):
                    R, c = self.stored_level(k, e, l), self._blur_cells[l]
                    if len(at) <= FEW_POINTS:
                        vals[:, k] = onequery.lookup(R, self.x0, self.y0, c, xs, ys)
                    else:
                        _lookup(R, self.x0, self.y0, c, xs, ys, vals, k)
                out[at] += psi[at, e][:, None] * vals
        return out

    def density(self, x, y, precision_km=None, t=None) -> np.ndarray:
        """b_k(x) (at time t) with the floor, (n x K)."""
        return (1.0 - self.eps) * self.kde(x, y, precision_km, t) + self.eps / self.area

    def render_all(self) -> int:
        """Render (or decompress) now every stored raster a query would otherwise render when
        it first reads it: what a server does once after loading a model, so that no request
        pays for it. Returns how many were made now (0 when all are at hand already)."""
        cache = getattr(self.rasters, "_cache", None)
        if cache is None:  # plain arrays: nothing is made on first use
            return 0
        before = len(cache)
        K, E = self.rasters.shape[:2]
        for k in range(K):
            for e in range(E):
                self.rasters[k, e]
        return len(cache) - before

    def with_floor(self, kde_values: np.ndarray) -> np.ndarray:
        return (1.0 - self.eps) * kde_values + self.eps / self.area

    # -- persistence -------------------------------------------------------------------------

    def meta(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "cell": self.cell, "nx": self.nx, "ny": self.ny,
                "eps": self.eps, "levels": [float(v) for v in self.levels],
                "epochs": [float(v) for v in self.epochs]}

    def to_arrays(self) -> dict:
        """The grounds for saving: the kernels and weights that render them (a fitted model,
        :class:`RenderedRasters`), else the rasters, each distinct one once (a process's quiet
        epochs are all its all-time ground, so most (process, epoch) rasters repeat)."""
        if isinstance(self.rasters, RenderedRasters) and not self.rasters.assigned:
            return self.rasters.to_arrays()
        K, E = self.rasters.shape[:2]
        seen: dict[bytes, int] = {}
        unique: list[np.ndarray] = []
        index = np.empty((K, E), np.int32)
        for k in range(K):
            for e in range(E):
                r = self.rasters[k, e]
                key = hashlib.sha256(r.tobytes()).digest()
                if key not in seen or not np.array_equal(unique[seen[key]], r):
                    seen[key] = len(unique)
                    unique.append(r)
                index[k, e] = seen[key]
        # one array each, so that a loaded model decompresses only the rasters a query reads
        return {"raster_index": index, **{f"raster_{i}": r for i, r in enumerate(unique)}}

    @staticmethod
    def rasters_from_arrays(arrays) -> "np.ndarray | LazyRasters":
        """Inverse of :meth:`to_arrays`: (K, E, ny, nx), read lazily from an open ``.npz``
        (format 4: one array per distinct raster) or at once (format 3: one stacked array)."""
        index = np.asarray(arrays["raster_index"])
        if "rasters" in arrays:
            return np.asarray(arrays["rasters"])[index]
        return LazyRasters(arrays, index)

    @classmethod
    def from_arrays(cls, meta: dict, arrays, x, y) -> "SpatialBackground":
        """Inverse of :meth:`to_arrays` (``x``, ``y``: the fitted events' places): grounds
        rendered from kernels when first read (format 5), or rasters read lazily from an open
        ``.npz`` (format 4, and format 5 with assigned rasters) or at once (format 3)."""
        if "ground_index" not in arrays:
            return cls.from_saved(meta, cls.rasters_from_arrays(arrays))
        K = int(np.asarray(arrays["ground_n_processes"])[0])
        E = len(meta.get("epochs", [0.0]))
        sb = cls.from_saved(meta, np.zeros((K, E, 1, 1), np.float32))
        sb.rasters = RenderedRasters.from_arrays(sb, x, y, arrays)
        return sb

    @classmethod
    def from_saved(cls, meta: dict, rasters) -> "SpatialBackground":
        if not isinstance(rasters, LazyRasters):
            rasters = np.asarray(rasters)
            if rasters.ndim == 3:
                rasters = rasters[:, None]
            rasters = np.ascontiguousarray(rasters, dtype=np.float32)
        sb = cls(meta["x0"], meta["y0"], meta["cell"], int(meta["nx"]), int(meta["ny"]),
                 rasters.shape[0], meta["eps"], meta.get("epochs", [0.0]), rasters=rasters)
        sb.set_levels(meta.get("levels", []))
        return sb


class RasterTable:
    """(K, E, ny, nx) float32 rasters read one at a time: ``rasters[k, e]`` is the distinct raster
    ``_index[k, e]``, made by ``_make`` when first read and kept; a raster assigned
    (``rasters[k, e] = R``) is kept as given; ``np.asarray`` gives them all."""

    dtype = np.dtype(np.float32)
    ndim = 4

    def _make(self, u: int) -> np.ndarray:
        raise NotImplementedError

    def _get(self, u: int) -> np.ndarray:
        r = self._cache.get(u)
        if r is None:
            r = self._cache[u] = self._make(u)
        return r

    def __getitem__(self, key):
        k, e = key
        return self._get(int(self._index[k, e]))

    def __setitem__(self, key, value) -> None:
        k, e = key
        self._cache[self._next] = np.array(value, np.float32)
        self._index[k, e] = self._next
        self._next += 1

    def __array__(self, dtype=None, copy=None):
        K, E = self._index.shape
        out = np.empty(self.shape, np.float32)
        for k in range(K):
            for e in range(E):
                out[k, e] = self[k, e]
        return out if dtype is None else out.astype(dtype)


class LazyRasters(RasterTable):
    """The rasters of a loaded model (format 3-4), each distinct one decompressed from the model
    file on first use. ``source`` maps ``raster_<i>`` to arrays (an open ``np.load`` of an
    in-memory copy of the file)."""

    def __init__(self, source, index: np.ndarray):
        self._source = source
        self._index = np.array(index, np.int64)
        self._cache: dict[int, np.ndarray] = {}
        self._next = int(self._index.max()) + 1 if self._index.size else 0
        first = source[f"raster_{int(self._index.flat[0])}"]
        self.shape = (*self._index.shape, *first.shape)

    def _make(self, u: int) -> np.ndarray:
        return np.ascontiguousarray(self._source[f"raster_{u}"], dtype=np.float32)

    def __reduce__(self):  # copies and pickles hold plain arrays, not the open archive
        return (np.array, (self.__array__(),))


@functools.lru_cache(maxsize=1)
def _fold_pool() -> ThreadPoolExecutor:
    """Two threads for the two folds' renders, started once."""
    return ThreadPoolExecutor(2, thread_name_prefix="culpa-kde")


class CrossFitKDE:
    """Fit-time background of every process, cross-fitted over alternating time blocks.

    Events fall in two folds by alternating time blocks (``crossfit_block_days`` of the model,
    15 days: a few triggering decay times, 1/omega being about 9 days on the UCDP data).
    The background density at an event of fold f comes from the KDE of the *other* fold's
    events: a cluster of triggered events (siblings close in space and time) cannot raise the
    background at its own members, which a KDE with bandwidths narrower than the triggering
    spread otherwise does (it then absorbs the clustering and biases the branching ratios
    down). Leaving one event out is not enough for that. Background events at the same place
    in other periods still count. The density kept for predictions is the weighted sum of the
    two folds' KDEs (all the data). A process with under 2 % of its weight in one fold falls back
    to a leave-one-out KDE of all its events.

    Epochs: the KDE of process k in epoch e weights its events by ``psi_e(t_i)`` and is shrunk
    towards the process's all-time KDE with ``shrink`` pseudo-events,
    ``b_ke = (W_ke KDE_ke + shrink KDE_k) / (W_ke + shrink)``, so a process quiet in an epoch keeps
    its usual ground there, and one with many events follows where it acts now.

    Groups: when actors are split into processes (``group[k]`` = the actor of process k), a
    process's KDE also counts its actor's background events as ``group_shrink`` pseudo-events
    in all (each kernel at the actor-level bandwidth ``H_group``): ``b_k = (W_k KDE_k +
    s KDE_actor) / (W_k + s)``. A process with few events (the SDF killing civilians) keeps
    the shape of where its actor is, instead of a bandwidth as wide as its scattered events.
    The group weights are the caller's (the model adds where each actor was fought).

    Each update proposes new KDEs (weights = background responsibilities) and mixes them in
    with the step ``eta`` chosen by the caller; everything mixes linearly.
    """

    MIN_SHARE = 0.02

    def __init__(self, spatial: SpatialBackground, x, y, t, H, lvl, fold, shrink: float = 10.0,
                 group=None, H_group=None, group_shrink: float = 0.0):
        self.sb, self.x, self.y, self.H, self.lvl = spatial, x, y, H, lvl
        self.group, self.H_group, self.group_shrink = group, H_group, float(group_shrink)
        self.group_weights = None
        self.fold = fold.astype(bool)
        self.psi = spatial.psi(t)  # (N, E)
        self.shrink = float(shrink)
        K = spatial.n_processes
        self.values = np.zeros((len(x), K))  # cross-fitted KDE at the events (no floor)
        self.last_weights: list = [None] * K  # weights of each process's last proposal
        # per process: the kernels (keys 2 i + t: event i at its own bandwidth, t = 0, or its
        # actor's, t = 1) and their weights per epoch in the all-data ground (E x kernels)
        self.coef: list = [None] * K

    def _epoch_rasters(self, h, p, loo: bool):
        """Per epoch: raster (shrunk to the all-time one) and the own-term per unit weight.

        Works on the events with weight only (a process's own and the latent ones)."""
        sb = self.sb
        idx = np.flatnonzero(p > 0)
        xs, ys, hs, ps, psi = self.x[idx], self.y[idx], h[idx], p[idx], self.psi[idx]
        W = float(ps.sum())
        ks = sb.kernel_set(xs, ys, hs)  # the same kernels in every epoch
        A, kA, vA = sb.render_set(ks, ps / W)
        n = len(p)

        def full(v, fill):
            out = np.full(n, fill)
            out[idx] = v
            return out

        out = []
        for e in range(psi.shape[1]):
            pe = ps * psi[:, e]
            We = float(pe.sum())
            lam = We / (We + self.shrink)
            if We > 0:
                Re, kE, vE = sb.render_set(ks, pe / We)
                R = _mix(Re, A, lam)  # lam Re + (1 - lam) A
            else:
                R, kE, vE = A, kA, vA
            own = None
            if loo:  # each event's own share of R, per unit of its weight p_i (before blur)
                own = (full(lam * psi[:, e] / We * kE if We > 0 else 0.0 * kE, 0.0),
                       full((1 - lam) / W * kA, 0.0), full(vE, 1.0), full(vA, 1.0))
            out.append((R, We, own))
        return out

    def set_group_weights(self, P) -> None:
        """The background weights of each group (N x groups), for the groups' grounds that
        the members' grounds are shrunk towards (see the class doc)."""
        self.group_weights = P

    def propose(self, k: int, p: np.ndarray):
        """A new ground for process k from background weights ``p``: ``(None, coef,
        values)``, the kernels and weights of the all-data ground per epoch (see
        :meth:`_coefficients`) and the cross-fitted density at the events."""
        sb, x, y, lvl, f1 = self.sb, self.x, self.y, self.lvl, self.fold
        h = np.nan_to_num(self.H[:, k], nan=1.0)
        kind = np.zeros(len(p), np.int8)  # 0: own bandwidth, 1: the actor's
        if self.group_shrink > 0 and self.group_weights is not None:
            g = int(self.group[k])
            pg = self.group_weights[:, g]
            Wg = float(pg.sum())
            if Wg > 0:  # the group's events, as group_shrink pseudo-events in all
                kind = (p <= 0).astype(np.int8)
                h = np.where(p > 0, h, np.nan_to_num(self.H_group[:, g], nan=1.0))
                p = p + (self.group_shrink / Wg) * pg
        E = self.psi.shape[1]
        W = float(p.sum())
        W1 = float(p[f1].sum())
        W0 = W - W1
        values = np.zeros(len(x))
        if min(W0, W1) >= self.MIN_SHARE * W:
            # the two folds render side by side (the splats release the GIL; 2 cores); the
            # events of each fold look up the other fold's KDE
            def fold(on: bool):
                r = self._epoch_rasters(h, np.where(f1 == on, p, 0.0), False)
                memo: dict = {}
                vals = np.zeros(len(x))
                for e, (ie, psi_e, groups) in enumerate(self._fold_rows(on)):
                    if len(ie):
                        vals[ie] += psi_e * sb.lookup_groups(r[e][0], groups, len(ie), memo)
                return vals

            job0 = _fold_pool().submit(fold, False)
            job1 = _fold_pool().submit(fold, True)
            values = job0.result() + job1.result()  # each event gets one of the two
            return None, self._coefficients(p, kind, (~f1, f1)), values
        # too little weight in one fold: leave-one-out KDE of all the events
        rs = self._epoch_rasters(h, p, True)
        memo: dict = {}
        extra = sb.levels[lvl] ** 2 - sb.levels[0] ** 2  # blur beyond the rendered precision
        for e, (R, We, (oe, oa, vE, vA)) in enumerate(rs):
            ie = np.flatnonzero(self.psi[:, e] > 0)
            if not len(ie):
                continue
            own = p[ie] * (oe[ie] * vE[ie] / (vE[ie] + extra[ie])
                           + oa[ie] * vA[ie] / (vA[ie] + extra[ie]))
            v = sb.lookup_raster(R, x[ie], y[ie], lvl[ie], memo)
            values[ie] += self.psi[ie, e] * np.maximum(v - own, 0.0)
        return None, self._coefficients(p, kind, (np.ones(len(p), bool),)), values

    def _fold_rows(self, on: bool) -> list:
        """Per epoch, the events of the other fold than ``on`` that it weighs (``psi > 0``):
        ``(rows, psi, point groups)``, made once (they depend on the events only)."""
        cache = self.__dict__.setdefault("_rows_cache", {})
        got = cache.get(on)
        if got is None:
            idx = np.flatnonzero(self.fold != on)
            got = []
            for e in range(self.psi.shape[1]):
                ie = idx[self.psi[idx, e] > 0]
                got.append((ie, self.psi[ie, e],
                            self.sb.point_groups(self.x[ie], self.y[ie], self.lvl[ie])))
            cache[on] = got
        return got

    def _coefficients(self, p, kind, parts):
        """The all-data ground of a proposal as weights of kernels: ``(keys, C)``, C (E x
        kernels). Per epoch it is what the fit mixes, the folds' rasters (``parts``: their
        events) weighted by their weight in the epoch (by their weight overall where neither
        has any), each ``lam R_e + (1 - lam) A`` (see :meth:`_epoch_rasters`); a raster
        rendered from these weights (:class:`RenderedRasters`) is that mixture up to the
        rendering's approximation."""
        sup = np.flatnonzero(p > 0)
        ps_all, psi = p[sup], self.psi[sup]
        E = psi.shape[1]
        terms, w_epoch, w_all = [], [], []
        for sel in parts:
            ps = np.where(sel[sup], ps_all, 0.0)
            W = float(ps.sum())
            pe = ps[:, None] * psi
            We = pe.sum(0)
            lam = We / (We + self.shrink)
            with np.errstate(divide="ignore", invalid="ignore"):
                a = np.where(We > 0, lam / We, 0.0)
            b = np.where(We > 0, 1.0 - lam, 1.0) / W if W > 0 else np.zeros(E)
            terms.append(pe * a[None, :] + ps[:, None] * b[None, :])
            w_epoch.append(We)
            w_all.append(np.full(E, W))
        w_epoch, w_all = np.array(w_epoch), np.array(w_all)
        wts = np.where(w_epoch.sum(0) > 0, w_epoch, w_all)  # (parts x E)
        wts = wts / wts.sum(0)
        C = sum(t * w[None, :] for t, w in zip(terms, wts))
        keys = 2 * sup.astype(np.int64) + kind[sup]
        return keys, np.ascontiguousarray(C.T)

    def accept(self, k: int, proposal, eta: float) -> None:
        """Mix a proposal in with step ``eta``: the densities at the events and the kernel
        weights of the all-data ground (the rasters a proposal's folds looked up are not kept:
        nothing reads them again)."""
        _, coef, values = proposal
        if self.coef[k] is None or eta >= 1.0:
            self.coef[k] = coef
            self.values[:, k] = values
            return
        self.coef[k] = _mix_coefficients(self.coef[k], coef, eta)
        self.values[:, k] = (1 - eta) * self.values[:, k] + eta * values

    def finalize(self) -> None:
        """Give the SpatialBackground its all-data grounds (for predictions) as kernels and
        weights, rendered into rasters when a query first reads them (:class:`RenderedRasters`)."""
        K, E = self.sb.n_processes, self.psi.shape[1]
        kernels, columns, index = [], [], np.zeros((K, E), np.int32)
        for k, cf in enumerate(self.coef):
            if cf is None:
                keys, C = np.zeros(0, np.int64), np.zeros((E, 0))
            else:
                keys, C = cf
            i = keys // 2
            h = np.where(keys % 2 == 0, np.nan_to_num(self.H[i, k], nan=1.0), 1.0)
            if self.H_group is not None and (keys % 2).any():
                g = int(self.group[k])
                grp = keys % 2 == 1
                h[grp] = np.nan_to_num(self.H_group[i[grp], g], nan=1.0)
            kernels.append((i.astype(np.int32), h))
            seen: dict[bytes, int] = {}
            C32 = np.asarray(C, np.float32)
            for e in range(E):
                key = C32[e].tobytes()
                if key not in seen:
                    seen[key] = len(columns)
                    columns.append((k, C32[e]))
                index[k, e] = seen[key]
        self.sb.rasters = RenderedRasters(self.sb, self.x, self.y, kernels, columns, index)
        self.sb._blur_cache = {}


def _mix_coefficients(old, new, eta: float):
    """``(1 - eta) old + eta new`` of two ``(keys, C)`` (kernels may differ)."""
    (ko, Co), (kn, Cn) = old, new
    if len(ko) == len(kn) and np.array_equal(ko, kn):
        return ko, (1 - eta) * Co + eta * Cn
    keys = np.union1d(ko, kn)
    C = np.zeros((Co.shape[0], len(keys)))
    C[:, np.searchsorted(keys, ko)] += (1 - eta) * Co
    C[:, np.searchsorted(keys, kn)] += eta * Cn
    return keys, C


class RenderedRasters(RasterTable):
    """The (K, E, ny, nx) float32 grounds of a fitted model held as what makes them: for each
    process the kernels of its KDE (event, bandwidth) and, per distinct epoch ground, their
    weights; ``rasters[k, e]`` renders one when first read (:meth:`SpatialBackground.render`,
    deterministic, so a saved and loaded model renders the same rasters); ``np.asarray`` gives
    them all. A raster assigned (``rasters[k, e] = R``) is kept as given.

    ``kernels[k] = (event index, bandwidth km)``; ``columns[u] = (k, weights)``;
    ``index[k, e] = u``. The events' places are ``x``, ``y``."""

    def __init__(self, sb: "SpatialBackground", x, y, kernels, columns, index):
        self._sb, self._x, self._y = sb, np.asarray(x, float), np.asarray(y, float)
        self.kernels, self.columns = kernels, columns
        self._index = np.array(index, np.int64)
        self._cache: dict[int, np.ndarray] = {}
        self._next = len(columns)
        self.shape = (*self._index.shape, sb.ny, sb.nx)
        self.persist = False  # keep rendered rasters in the raster cache (a loaded model's)

    def _make(self, u: int) -> np.ndarray:
        from culpa.model import rastercache

        name = self.cache_name(u) if self.persist else None
        R = rastercache.read(name) if name else None
        if R is None or R.shape != self.shape[2:] or R.dtype != np.float32:
            k, w = self.columns[u]
            i, h = self.kernels[k]
            R = self._sb.render(self._x[i], self._y[i], h, w.astype(np.float64))[0].astype(
                np.float32)
            if name:
                rastercache.write(name, R)
        return R

    def cache_name(self, u: int) -> str | None:
        """The name of distinct raster ``u`` in the raster cache (:mod:`culpa.model.rastercache`):
        a digest of its grid and kernels (None for an assigned raster)."""
        if u >= len(self.columns):
            return None
        from culpa.model import rastercache

        sb = self._sb
        k, w = self.columns[u]
        i, h = self.kernels[k]
        grid = np.array([sb.x0, sb.y0, sb.cell, sb.nx, sb.ny, float(sb.levels[0])])
        return rastercache.key(grid, self._x[i], self._y[i], h, w)

    @property
    def assigned(self) -> bool:
        """Whether some raster was assigned rather than rendered from kernels."""
        return self._next > len(self.columns)

    def __getstate__(self):  # copies and pickles carry the kernels, not the rendered rasters
        st = dict(self.__dict__)
        if not self.assigned:
            st["_cache"] = {}
        return st

    def to_arrays(self) -> dict:
        """The kernels and weights, for saving (see :meth:`from_arrays`)."""
        K = len(self.kernels)
        return {"ground_index": self._index.astype(np.int32),
                "ground_kernel_ptr": np.cumsum([0] + [len(i) for i, _ in self.kernels]),
                "ground_kernel_event": np.concatenate([i for i, _ in self.kernels]
                                                   or [np.zeros(0, np.int32)]).astype(np.int32),
                "ground_kernel_bw": np.concatenate([h for _, h in self.kernels]
                                                or [np.zeros(0)]).astype(np.float64),
                "ground_column_process": np.array([k for k, _ in self.columns], np.int32),
                "ground_weights": np.concatenate([w for _, w in self.columns]
                                              or [np.zeros(0, np.float32)]).astype(np.float32),
                "ground_n_processes": np.array([K], np.int32)}

    @classmethod
    def from_arrays(cls, sb: "SpatialBackground", x, y, arrays) -> "RenderedRasters":
        ptr = np.asarray(arrays["ground_kernel_ptr"], np.int64)
        ev, bw = np.asarray(arrays["ground_kernel_event"]), np.asarray(arrays["ground_kernel_bw"])
        kernels = [(ev[ptr[k]:ptr[k + 1]], bw[ptr[k]:ptr[k + 1]]) for k in range(len(ptr) - 1)]
        proc = np.asarray(arrays["ground_column_process"])
        w = np.asarray(arrays["ground_weights"], np.float32)
        sizes = np.array([len(kernels[k][0]) for k in proc], np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        columns = [(int(k), w[starts[u]:starts[u + 1]]) for u, k in enumerate(proc)]
        table = cls(sb, x, y, kernels, columns, arrays["ground_index"])
        table.persist = True
        return table


# ---------------------------------------------------------------------------------------------
# the temporal background


class TemporalBackground:
    """mu_k(t): piecewise-constant rates per bin, MAP under Gamma priors: a pseudo-count
    ``tau`` per bin, plus any fixed per-process, per-bin pseudo-counts from :meth:`add_prior`
    (the model's shrinkage of a process's rate towards its actor's activity)."""

    def __init__(self, t_start: float, t_end: float, bin_days: float, n_processes: int,
                 tau: float = 0.1):
        self.t_start, self.t_end = float(t_start), float(t_end)
        nb_ = max(int(math.ceil((self.t_end - self.t_start) / bin_days)), 1)
        self.edges = self.t_start + bin_days * np.arange(nb_ + 1, dtype=float)
        self.edges[-1] = self.t_end
        if nb_ > 1 and self.edges[-1] - self.edges[-2] < 0.25 * bin_days:
            self.edges = np.delete(self.edges, -2)  # fold a sliver into the previous bin
        self.tau = float(tau)
        self.mu = np.ones((n_processes, len(self.edges) - 1))
        self.extra = 0.0  # further pseudo-counts per process and bin (add_prior)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.edges)

    def bin_of(self, t) -> np.ndarray:
        return np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.edges) - 2)

    def rate(self, t) -> np.ndarray:
        """mu_k(t), (n x K), C-ordered (whole rows of ``mu.T`` gathered)."""
        return self.mu.T[self.bin_of(t)]

    def bin_matrix(self, bins: np.ndarray):
        """The (bins x N) 0/1 sparse matrix of events in ``bins``, for :meth:`update`."""
        from scipy import sparse  # fitting only

        n = len(bins)
        return sparse.csr_matrix((np.ones(n), (np.asarray(bins), np.arange(n))),
                                 shape=(self.mu.shape[1], n))

    def update(self, phi: np.ndarray, bins: np.ndarray, matrix=None) -> None:
        """MAP update from background responsibilities phi (N x K) of events in ``bins``
        (``matrix``: their :meth:`bin_matrix`, made here when not given).

        The sums per bin are one sparse product, each added up in event order as
        ``np.bincount`` does: the same numbers."""
        if matrix is None:
            matrix = self.bin_matrix(bins)
        s = matrix @ np.asarray(phi, dtype=np.float64)  # (bins x K)
        self.mu[:] = (s.T + self.pseudo) / self.lengths

    def integral(self) -> np.ndarray:
        """int mu_k dt over the fitted period, per process."""
        return self.mu @ self.lengths

    def log_prior(self) -> float:
        return float(np.sum(self.pseudo * np.log(self.mu)))

    @property
    def pseudo(self) -> np.ndarray:
        """Gamma pseudo-counts per process and bin (``tau``, plus any set by :meth:`add_prior`)."""
        return np.broadcast_to(self.tau + self.extra, self.mu.shape)

    def add_prior(self, extra: np.ndarray) -> None:
        """Further pseudo-counts (K x bins), fixed for the fit."""
        self.extra = np.asarray(extra, float)

    def meta(self) -> dict:
        return {"tau": self.tau, "t_start": self.t_start, "t_end": self.t_end}

    @classmethod
    def from_saved(cls, meta: dict, edges: np.ndarray, mu: np.ndarray) -> "TemporalBackground":
        tb = cls.__new__(cls)
        tb.t_start, tb.t_end, tb.tau = meta["t_start"], meta["t_end"], meta["tau"]
        tb.edges = np.asarray(edges, float)
        tb.mu = np.asarray(mu, float)
        tb.extra = 0.0  # a fit-time prior: not needed to predict
        return tb
