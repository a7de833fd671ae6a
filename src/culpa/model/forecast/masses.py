"""The triggered part of a forecast: the share of each event's triggering kernel inside a
horizon (time) and inside a disc (space, truncated at the model's ``radius_km``), and the
in-horizon cascade factor."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import chndtr

from culpa.model import timekernel


def _ncx2_cdf2(x, nc):
    """``scipy.stats.ncx2.cdf(x, 2, nc)`` for ``nc > 0`` (its numbers: scipy.special's
    ``chndtr``, 0 at and below 0 and 1 at infinity) without importing scipy.stats (about a
    second of a fresh process)."""
    x, nc = np.broadcast_arrays(np.asarray(x, float), np.asarray(nc, float))
    inner = (x > 0) & np.isfinite(x)
    out = np.where(np.isposinf(x), 1.0, 0.0)
    out = np.where(np.isnan(x), np.nan, out)
    out[inner] = chndtr(x[inner], 2.0, nc[inner])
    return out


#: Spectral radius allowed for the in-horizon cascade (``c alpha``).
CASCADE_CAP = 0.9


#: Gauss-Legendre nodes for the radial integrals of the truncated spatial kernel.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)


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


def cascade_factor(model, H: float) -> np.ndarray:
    """(I - c alpha^T)^-1 with c = Fbar(H) / H and the spectral radius of c alpha capped."""
    K = len(model.processes_)
    c = float(timekernel.cdf_integral(H, model.omega_, float(model.window_days))) / H
    M = c * np.asarray(model.alpha_, float)
    rho = float(np.max(np.abs(np.linalg.eigvals(M)))) if K else 0.0
    if rho > CASCADE_CAP:
        M *= CASCADE_CAP / rho
    return np.linalg.inv(np.eye(K) - M.T)


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
    full = np.where(d > 0, _ncx2_cdf2(R * R / v, np.maximum(d * d / v, 1e-300)),
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
