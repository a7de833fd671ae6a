"""Readable NumPy references of the model's numba kernels (:mod:`culpa.model.kernels`): the
oracles ``tests/test_model_kernels.py`` checks the production path against. Slow and memory
hungry (pair-sized temporaries) by design: each is the formula written plainly."""

from __future__ import annotations

import numpy as np

from culpa.model.kernels import EStepResult, space_params



def g_reference(dt, uij, omega, W):
    zw = -np.expm1(-omega * W)
    a = np.maximum(0.0, dt - uij)
    b = np.minimum(W, dt + uij)
    with np.errstate(divide="ignore", invalid="ignore"):
        conv = np.exp(-omega * a) * (-np.expm1(-omega * (b - a))) / (2.0 * uij * zw)
    return np.where(uij > 0, np.where(b > a, conv, 0.0), omega * np.exp(-omega * dt) / zw)


def edt_reference(dt, uij, omega, W):
    a = np.maximum(0.0, dt - uij)
    w = np.minimum(W, dt + uij) - a
    x = omega * w
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(x < 1e-6, a + 0.5 * w - omega * w * w / 12.0,
                     a + 1.0 / omega - w / np.expm1(x))
    return np.where(uij > 0, m, dt)


def h_reference(d2, sij, rho, sig2):
    """Per-component spatial kernel values, (pairs x C)."""
    v = sig2[None, :] + sij[:, None]
    return rho[None, :] * np.exp(-0.5 * d2[:, None] / v) / (2 * np.pi * v)


def persistence_reference(child, par, pers, K):
    """Per pair and actor: the mark persistence factor (pairs x K)."""
    if pers is None:
        return np.ones((len(child), K))
    mk, Am, Bm = pers
    known = (mk[child] >= 0) & (mk[par] >= 0)
    match = known & (mk[child] == mk[par])
    return np.where(known[:, None], Am[child] + Bm[child] * match[:, None], 1.0)


def estep_reference(pairs, s2, u, lab, Q, Ex, B, alpha, omega, window, space,
                    pers=None) -> EStepResult:
    """The E pass written plainly in NumPy over all pairs at once (O(pairs x K) memory)."""
    n, K = Q.shape
    rho, sig2 = space_params(space)
    child = pairs.child()
    par = pairs.parent
    dt = pairs.dt.astype(np.float64)
    d2 = pairs.d2.astype(np.float64)
    uij = np.sqrt(u[child] ** 2 + u[par] ** 2)
    sij = s2[child] + s2[par]
    hc = h_reference(d2, sij, rho, sig2)  # (pairs, C)
    gh = g_reference(dt, uij, omega, window) * hc.sum(1)
    cf = persistence_reference(child, par, pers, K)  # (pairs, K)
    # lambda[i, k] = B[i, k] + sum_j Ex[j, k] gh_ij cf_ijk
    contrib = Ex[par] * gh[:, None] * cf  # (pairs, K)
    Lam = B.copy()
    for k in range(K):
        Lam[:, k] += np.bincount(child, weights=contrib[:, k], minlength=n)
    # labelled events: Q is one-hot, latent: Q as given
    Qe = Q.copy()
    labelled = lab >= 0
    Qe[labelled] = 0.0
    Qe[labelled, lab[labelled]] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        logL = np.where(Qe > 0, np.log(Lam), 0.0)
        ll = float(np.sum(Qe * logL))
        Phi = np.where(Qe > 0, Qe * B / Lam, 0.0)
        R = np.where(Qe[child] > 0, Qe[child] / Lam[child], 0.0) * gh[:, None] * cf
    w = np.sum(R * Ex[par], axis=1)
    # triggered events whose mark was copied from the parent's, or drawn afresh
    wk = R * Ex[par]
    if pers is None:
        copied_pk = np.zeros_like(wk)
        fresh = np.zeros(K)
    else:
        mk, Am, Bm = pers
        known = (mk[child] >= 0) & (mk[par] >= 0)
        match = known & (mk[child] == mk[par])
        fresh_pk = np.where(known[:, None], wk * Am[child] / cf, 0.0)
        copied_pk = np.where(match[:, None], wk * Bm[child] / cf, 0.0)
        fresh = fresh_pk.sum(0)
    Cp = np.zeros((n, K))
    for k in range(K):
        Cp[:, k] = np.bincount(child, weights=copied_pk[:, k], minlength=n)
    # N[l, k] = sum_pairs Q[i, k] Q[j, l] alpha[l, k] gh / lambda[i, k]
    Qp = Qe[par]
    N = (Qp.T @ R) * alpha
    edt = edt_reference(dt, uij, omega, window)
    share = hc / np.maximum(hc.sum(1, keepdims=True), 1e-300)  # responsibility of component c
    r = sig2[None, :] / (sig2[None, :] + sij[:, None])
    edd = r * r * d2[:, None] + 2 * r * sij[:, None]  # E|delta|^2 under component c
    wc = w[:, None] * share
    S = np.concatenate([[ll, w.sum(), np.sum(w * edt)], wc.sum(0), (wc * edd).sum(0)])
    # the numba path only fills the own column for labelled events
    Lam_out = np.where(labelled[:, None] & (Qe == 0), 0.0, Lam)
    return EStepResult(Lam_out, Phi, N, S, w, np.stack([copied_pk.sum(0), fresh]), Cp)


def label_sweep_reference(order, pairs, s2, u, lab, Q, Ex, Lam, alpha, omega, window, space,
                          logf, Ghat, pers=None):
    """Plain-Python version of :func:`label_sweep` (slow; for tests)."""
    from scipy.optimize import brentq
    from scipy.special import lambertw

    rho, sig2 = space_params(space)
    child = pairs.child()
    par = pairs.parent
    for j in order:
        sel = np.flatnonzero(par == j)
        cs = child[sel]
        uij = np.sqrt(u[cs] ** 2 + u[j] ** 2)
        gh = g_reference(pairs.dt[sel].astype(float), uij, omega, window) * h_reference(
            pairs.d2[sel].astype(float), s2[cs] + s2[j], rho, sig2).sum(1)
        cf = persistence_reference(cs, np.full(len(cs), j), pers, Q.shape[1])  # (children, K)
        a = logf[j] + np.log(Lam[j]) - Ghat[j] * alpha.sum(1)
        Qc = Q[cs].copy()
        lc = lab[cs]
        Qc[lc >= 0] = 0.0
        Qc[lc >= 0, lc[lc >= 0]] = 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(Qc > 0, Qc * gh[:, None] * cf / Lam[cs], 0.0)  # (children, K)
        A = Q[j] * (alpha @ ratio.sum(0))

        def q_of(nu):
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                q0 = np.exp(a - 1 - nu)
                qa = np.where(A > 0, A / np.real(lambertw(A * np.exp(nu + 1 - a))), q0)
            return np.where(A > 0, qa, q0)

        nu = brentq(lambda nu: q_of(nu).sum() - 1, -800, 800, xtol=1e-14)
        qn = q_of(nu)
        qn /= qn.sum()
        dq = qn - Q[j]
        delta = (dq @ alpha)[None, :] * gh[:, None] * cf
        upd = np.where(Qc > 0, 1.0, 0.0)
        upd[lc < 0] = 1.0
        Lam[cs] += delta * upd
        Ex[j] = qn @ alpha
        Q[j] = qn
