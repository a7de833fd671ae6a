"""The triggering kernel in time: an exponential of rate ``omega`` truncated to the window ``W``.

    g_W(s) = omega exp(-omega s) / (1 - exp(-omega W))          for 0 <= s <= W
    G_W(s) = (1 - exp(-omega s)) / (1 - exp(-omega W))          its CDF (s clipped to [0, W])
    Fbar_W(s) = int_0^s G_W(r) dr                               (0 for s < 0, grows as s past W)

``G_W(T - t_j)`` is the share of event ``j``'s offspring that falls before ``T`` (the
compensator of the fit, the forecasts' time masses). The numba kernels of
:mod:`culpa.model.kernels` evaluate ``g_W`` convolved with each pair's date uncertainty in closed
form; :func:`sample` draws lags for the simulator.
"""

from __future__ import annotations

import math

import numpy as np


def cdf(s, omega: float, W: float) -> np.ndarray:
    """``G_W(s)``: the share of the kernel's mass within ``s`` days (``s`` clipped to [0, W])."""
    s = np.clip(np.asarray(s, float), 0.0, W)
    return -np.expm1(-omega * s) / -np.expm1(-omega * W)


def cdf_integral(s, omega: float, W: float) -> np.ndarray:
    """``Fbar_W(s) = int_0^s G_W(r) dr`` (0 for s < 0; past ``W`` it grows by one a day)."""
    s = np.asarray(s, float)
    zw = -math.expm1(-omega * W)
    sc = np.clip(s, 0.0, W)
    return (sc + np.expm1(-omega * sc) / omega) / zw + np.maximum(s - W, 0.0)


def sample(rng: np.random.Generator, omega: float, W: float, n: int) -> np.ndarray:
    """``n`` lags drawn from ``g_W`` (inverting ``G_W``)."""
    u = rng.uniform(size=n)
    return -np.log1p(-u * (-np.expm1(-omega * W))) / omega
