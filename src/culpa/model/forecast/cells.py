"""Forecasts for square cells (the forecast backtest): first-order expected counts of each
actor in every cell of a fixed grid."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import ndtr

from culpa.model.forecast.background import background_weights
from culpa.model.forecast.history import History, _excitation_window
from culpa.model.forecast.masses import spatial_kernel, time_mass
from culpa.model.geo import LocalProjection


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
