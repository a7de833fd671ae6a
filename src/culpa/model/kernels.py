"""Triggering kernels and the sums of the E- and M-steps over the candidate pairs.

Kernels (time in days, space in km)
-----------------------------------
g(dt): exponential with rate ``omega``, truncated to the window ``W`` and renormalised on it,
  ``g_W(dt) = omega exp(-omega dt) / (1 - exp(-omega W))`` for ``0 <= dt <= W``.
  Date imprecision: event ``i`` is known to within ``+-u_i`` days (``u_i`` = half the width of its
  date range, 0 for an exact day). The observed ``dt`` of a pair is the true one plus the
  difference of two uniform errors, replaced by one uniform error of the same variance,
  half-width ``u = sqrt(u_i^2 + u_j^2)``. The kernel of the pair is then ``g_W`` convolved with
  that uniform: ``g_u(dt) = [G_W(min(W, dt + u)) - G_W(max(0, dt - u))] / (2u)``, two exponentials
  instead of one and only for pairs with an imprecise date. In the M-step the true ``dt*`` is a
  latent variable whose posterior is ``g_W`` truncated to ``[max(0, dt-u), min(W, dt+u)]``, so
  the update of ``omega`` uses its mean ``E[dt*]`` (an exact EM step, hence monotone).
h(d^2): isotropic Gaussian ``exp(-d^2 / 2v) / (2 pi v)`` with the pair's own variance
  ``v = sigma^2 + s_i^2 + s_j^2`` where ``s`` is each event's location precision (km): the true
  offset ``delta ~ N(0, sigma^2 I)`` is observed through both events' location errors. The M-step
  for ``sigma^2`` is the variance-component EM step
  ``sigma^2 <- sum_p w_p E|delta_p|^2 / (2 sum_p w_p)`` with
  ``E|delta|^2 = (sigma^2/v)^2 d^2 + 2 sigma^2 (s_i^2 + s_j^2) / v``.
  Optionally a mixture ``sum_c rho_c N(0, (sigma_c^2 + s_i^2 + s_j^2) I)`` (a heavier tail); the
  component of each pair is then one more latent variable: ``rho_c`` = share of the pair
  weights, and each ``sigma_c^2`` gets the step above weighted by the component's share. The
  ``space`` argument of the functions below is ``sigma^2`` or ``(rho, sigma_c^2)``.

Intensity and E-step
--------------------
For child ``i`` and actor ``k``, with ``Ex[j, k] = sum_l Q[j, l] alpha[l, k]`` (what parent ``j``
excites in actor ``k`` given its label probabilities ``Q[j]``) and ``B[i, k] = mu_k(t_i) b_k(x_i)``:

    lambda[i, k] = B[i, k] + sum_{j in pa(i)} Ex[j, k] g(dt_ij) h(d2_ij)

The E-step sums (computed in one fused pass over each child's pairs) are:

    ll      = sum_i sum_k Q[i, k] log lambda[i, k]
    phi     = Q[i, k] B[i, k] / lambda[i, k]                 (background responsibility)
    w_ij    = sum_k Q[i, k] Ex[j, k] gh_ij / lambda[i, k]    (P(j triggered i))
    N[l, k] = sum_pairs Q[i, k] Q[j, l] alpha[l, k] gh_ij / lambda[i, k]
    Sw = sum w,  Sdt = sum w E[dt*],  Sc = sum w r_c,  Sdd = sum w r_c E_c|delta|^2
    (r_c: share of spatial component c in the pair's kernel; r = 1 with one Gaussian)

For labelled children only their own actor's column is computed (Q is one-hot), which makes the
common case one multiply-add a pair whatever the number of actors.

:func:`estep` is the production path (numba, parallel over children, per-chunk accumulators, no
pair-sized temporaries); ``tests/reference_kernels.py`` holds readable NumPy versions of the
same sums and of the label sweep, and ``tests/test_model_kernels.py`` checks that they agree.

Marks that persist
------------------
A triggered event tends to repeat its trigger's kind (event type and target: a fight between IS
and HTS begets more of them). Its mark density given parent ``j`` is ``rho_k [m = m_j] +
(1 - rho_k) f_k(m)`` instead of ``f_k(m)``; dividing by ``f_k(m_i)`` (which multiplies the whole
intensity), each pair's term gets the factor

    c_ijk = (1 - rho_k) + rho_k [kind_i = kind_j] / f_k(kind_i)     (1 if either kind is unknown)

given to the kernels as ``mk`` (kind codes, -1 unknown), ``Am = 1 - rho`` and
``Bm = rho / f_k(kind_i)`` per event and actor (:func:`persistence`). The E pass splits each
pair's responsibility into the part where the kind was copied (``Bm [match] / c``) and drawn
afresh (``Am / c``): their sums give the M-step of ``rho_k``, and ``Cp[i, k]`` (the copied part of
event ``i``) is taken out of ``i``'s weight in the kind counts of ``f_k``. ``rho = 0`` (or no
kinds) gives back the plain model.

Latent labels (the label sweep)
-------------------------------
:func:`label_sweep` updates the label probabilities of the latent events one at a time
(Gauss–Seidel), each by an exact maximisation of a minorising surrogate of the objective, which
includes the evidence of the event's *offspring*: see ``hawkes.py`` for the objective. For latent
``j`` with own evidence ``a_l = log f_l(m_j) + log lambda[j, l] - Ghat_j sum_k alpha[l, k]``
(the last term: a label-``l`` event is expected to trigger that many events; having fewer is
evidence against ``l``) and offspring evidence
``A_l = sum_{children c} sum_k Q[c, k] Q[j, l] alpha[l, k] gh_cj / lambda[c, k]``
(the expected number of ``c``'s explained by ``j`` acting as ``l``), the update maximises
``sum_l Q_l a_l + A_l log Q_l - Q_l log Q_l`` over the simplex: ``Q_l = A_l / W(A_l e^{nu+1-a_l})``
(W the Lambert function; ``Q_l = e^{a_l - 1 - nu}`` when ``A_l = 0``) with ``nu`` set by a 1-D
Newton search so that the ``Q_l`` sum to one. The children's intensities are updated in place.
"""

from __future__ import annotations

import math

import numpy as np
from culpa.model import lazynumba as nb

from culpa.model.marks import LOG_ZERO
from culpa.model.pairs import _lower_bound, cell_span

TWO_PI = 2.0 * math.pi


# ---------------------------------------------------------------------------------------------
# scalar kernels (shared by the numba passes)


@nb.njit(cache=True, inline="always")
def _g(dt, uij, omega, W, zw):
    """Truncated exponential (normalised on [0, W]), convolved with U[-u, u] when u > 0."""
    if uij <= 0.0:
        return omega * math.exp(-omega * dt) / zw
    a = max(0.0, dt - uij)
    b = min(W, dt + uij)
    if b <= a:
        return 0.0
    return math.exp(-omega * a) * (-math.expm1(-omega * (b - a))) / (2.0 * uij * zw)


@nb.njit(cache=True, inline="always")
def _edt(dt, uij, omega, W):
    """E[dt*]: mean of the true lag given the observed one (= dt when the dates are exact)."""
    if uij <= 0.0:
        return dt
    a = max(0.0, dt - uij)
    b = min(W, dt + uij)
    w = b - a
    x = omega * w
    if x < 1e-6:
        return a + 0.5 * w - omega * w * w / 12.0
    return a + 1.0 / omega - w / math.expm1(x)


@nb.njit(cache=True, inline="always")
def _h(d2, sij, rho, sig2):
    """Spatial kernel: mixture of Gaussians with variances sig2[c] + s_i^2 + s_j^2."""
    h = 0.0
    for c in range(len(rho)):
        v = sig2[c] + sij
        h += rho[c] * math.exp(-0.5 * d2 / v) / (TWO_PI * v)
    return h


@nb.njit(cache=True, inline="always")
def _gh(dt, d2, ui, uj, si2, sj2, omega, W, zw, rho, sig2):
    uij = math.sqrt(ui * ui + uj * uj) if (ui > 0.0 or uj > 0.0) else 0.0
    return _g(dt, uij, omega, W, zw) * _h(d2, si2 + sj2, rho, sig2)


@nb.njit(cache=True, inline="always")
def _ghc(dt, d2, u2, sij, rho, sig2, omega, W, zw, cache, comp):
    """(g*h, E[dt*]) for a pair with squared date half-width u2 = u_i^2 + u_j^2 and summed
    squared location precision sij; ``comp[c]`` receives the part of g*h from component c.

    ``cache`` (4 floats: u2, u, C, D) keeps the factors that depend on u only, so the common
    case (few distinct precisions, lag away from the window's ends) costs one exp a spatial
    component: for u <= dt <= W - u, g_u(dt) = C(u) exp(-omega dt) and E[dt*] = dt + D(u).
    """
    if u2 != cache[0]:
        cache[0] = u2
        if u2 <= 0.0:
            cache[1] = 0.0
            cache[2] = omega / zw
            cache[3] = 0.0
        else:
            uu = math.sqrt(u2)
            x = 2.0 * omega * uu
            cache[1] = uu
            cache[2] = math.exp(omega * uu) * (-math.expm1(-x)) / (2.0 * uu * zw)
            if x < 1e-6:
                cache[3] = -omega * 4.0 * uu * uu / 12.0
            else:
                cache[3] = -uu + 1.0 / omega - 2.0 * uu / math.expm1(x)
    uu = cache[1]
    tot = 0.0
    if uu == 0.0 or (dt >= uu and dt + uu <= W):
        e = dt + cache[3] if uu > 0.0 else dt
        if len(rho) == 1:
            v = sig2[0] + sij
            tot = cache[2] * rho[0] / (TWO_PI * v) * math.exp(-omega * dt - 0.5 * d2 / v)
            comp[0] = tot
            return tot, e
        for c in range(len(rho)):
            v = sig2[c] + sij
            val = cache[2] * rho[c] / (TWO_PI * v) * math.exp(-omega * dt - 0.5 * d2 / v)
            comp[c] = val
            tot += val
        return tot, e
    g = _g(dt, uu, omega, W, zw)
    for c in range(len(rho)):
        v = sig2[c] + sij
        val = g * rho[c] * math.exp(-0.5 * d2 / v) / (TWO_PI * v)
        comp[c] = val
        tot += val
    return tot, _edt(dt, uu, omega, W)


@nb.njit(cache=True)  # LLVM inlines it; numba's own inlining fails inside inlined callers
def _cf(mi, mj, a, b):
    """Mark persistence factor of a pair (see "Marks that persist" in the module doc)."""
    if mi < 0 or mj < 0:
        return 1.0
    if mi == mj:
        return a + b
    return a


@nb.njit(cache=True)  # LLVM inlines it, as _cf
def _add_space_stats(w, b, bedd, bres, C, sc, sdd):
    """Add a pair's branching weight ``w`` to the spatial M-step sums of each component (the
    pair's row ``b`` of the buffers: E|delta|^2 and responsibility per component)."""
    if C == 1:
        sdd[0] += w * bedd[b, 0]
    else:
        for c in range(C):
            wc = w * bres[b, c]
            sc[c] += wc
            sdd[c] += wc * bedd[b, c]


def n_chunks(n: int) -> int:
    """Chunks of the parallel passes: 16 a thread the process may use (numba's configured
    maximum, not the current thread's setting, so that the sums, added up per chunk, do not
    change when a fit runs its passes on fewer threads: see :mod:`culpa.model.treejob`)."""
    return max(1, min(n, 16 * int(nb.config.NUMBA_NUM_THREADS)))


def chunk_order(nchunk: int) -> np.ndarray:
    """The order the parallel passes take their chunks in: numba gives each thread one
    contiguous block of the loop, so thread t gets chunks t, t + T, t + 2T, ... (T threads)
    rather than the t-th block of consecutive ones. The chunks hold equal numbers of events,
    not of pairs, and a conflict's busy years hold most pairs (on the bundled Iraq events the
    first half of the chunks holds under a third of the work): strided, each thread gets its
    share of every period. Each chunk's sums are its own and are added up in chunk order, so
    the numbers do not depend on this order."""
    T = max(1, int(nb.get_num_threads()))
    return np.argsort(np.arange(nchunk) % T, kind="stable").astype(np.int64)


# ---------------------------------------------------------------------------------------------
# production E-step (numba)


@nb.njit(cache=True, parallel=True)
def _estep(indptr, par, dt, d2, s2, u, lab, Q, Ex, B, alpha, omega, W, rho, sig2, mk, Am, Bm,
           Lam, Phi, Cp, wout, nchunk, maxrow, order):
    n = len(indptr) - 1
    K = Q.shape[1]
    C = len(rho)
    zw = -math.expm1(-omega * W)
    acc_N = np.zeros((nchunk, K, K))
    acc_M = np.zeros((nchunk, 2, K))  # copied / fresh marks of triggered events
    acc_S = np.zeros((nchunk, 3 + 2 * C))  # ll, Sw, Sdt, then per component: S_c, Sdd_c
    store_w = len(wout) > 0
    for q in nb.prange(nchunk):
        ch = order[q]
        lo = ch * n // nchunk
        hi = (ch + 1) * n // nchunk
        bgh = np.empty(maxrow)
        bedt = np.empty(maxrow)
        bres = np.empty((maxrow, C))  # share of g*h from each spatial component
        bedd = np.empty((maxrow, C))  # E|delta|^2 under each component
        bex = np.empty(maxrow)
        bcf = np.empty(maxrow)
        comp = np.empty(C)
        lam = np.empty(K)
        cache = np.full(4, -1.0)
        ll = 0.0
        sw = 0.0
        sdt = 0.0
        sc = np.zeros(C)
        sdd = np.zeros(C)
        for i in range(lo, hi):
            p0 = indptr[i]
            p1 = indptr[i + 1]
            ui2 = u[i] * u[i]
            si2 = s2[i]
            k0 = lab[i]
            mi = mk[i]
            for p in range(p0, p1):
                j = par[p]
                if k0 >= 0:
                    # labelled child: only its own actor's excitation matters; a labelled
                    # parent of an actor that does not excite it (diagonal alpha) costs nothing
                    lj = lab[j]
                    ex = alpha[lj, k0] if lj >= 0 else Ex[j, k0]
                    cf = _cf(mi, mk[j], Am[i, k0], Bm[i, k0])
                    bcf[p - p0] = cf
                    ex *= cf
                    bex[p - p0] = ex
                    if ex == 0.0:
                        bgh[p - p0] = 0.0
                        continue
                sij = si2 + s2[j]
                gh, e = _ghc(dt[p], d2[p], ui2 + u[j] * u[j], sij, rho, sig2, omega, W, zw,
                             cache, comp)
                bgh[p - p0] = gh
                bedt[p - p0] = e
                if C == 1:
                    r = sig2[0] / (sig2[0] + sij)
                    bedd[p - p0, 0] = r * r * d2[p] + 2.0 * r * sij
                else:
                    for c in range(C):
                        r = sig2[c] / (sig2[c] + sij)
                        bres[p - p0, c] = comp[c] / gh if gh > 0.0 else 0.0
                        bedd[p - p0, c] = r * r * d2[p] + 2.0 * r * sij
            if k0 >= 0:
                lm = B[i, k0]
                for p in range(p0, p1):
                    lm += bex[p - p0] * bgh[p - p0]
                Lam[i, k0] = lm
                Phi[i, k0] = B[i, k0] / lm
                ll += math.log(lm)
                inv_l = 1.0 / lm
                cp = 0.0
                for p in range(p0, p1):
                    j = par[p]
                    gh = bgh[p - p0] * inv_l
                    w = bex[p - p0] * gh
                    if store_w:
                        wout[p] = w
                    if w == 0.0:
                        continue
                    lj = lab[j]
                    cf = bcf[p - p0]
                    if lj >= 0:
                        acc_N[ch, lj, k0] += w
                    else:
                        for l in range(K):
                            acc_N[ch, l, k0] += Q[j, l] * alpha[l, k0] * gh * cf
                    if mi >= 0 and mk[j] >= 0:
                        fresh = w * Am[i, k0] / cf
                        acc_M[ch, 1, k0] += fresh
                        if mk[j] == mi:
                            acc_M[ch, 0, k0] += w - fresh
                            cp += w - fresh
                    sw += w
                    sdt += w * bedt[p - p0]
                    _add_space_stats(w, p - p0, bedd, bres, C, sc, sdd)
                Cp[i, k0] = cp
            else:
                for k in range(K):
                    lam[k] = B[i, k]
                for p in range(p0, p1):
                    j = par[p]
                    gh = bgh[p - p0]
                    mj = mk[j]
                    for k in range(K):
                        lam[k] += Ex[j, k] * gh * _cf(mi, mj, Am[i, k], Bm[i, k])
                for k in range(K):
                    Cp[i, k] = 0.0
                    Lam[i, k] = lam[k]
                    if Q[i, k] > 0.0:
                        Phi[i, k] = Q[i, k] * B[i, k] / lam[k]
                        ll += Q[i, k] * math.log(lam[k])
                        lam[k] = Q[i, k] / lam[k]  # from here on: Q / lambda
                    else:
                        Phi[i, k] = 0.0
                        lam[k] = 0.0
                for p in range(p0, p1):
                    j = par[p]
                    gh = bgh[p - p0]
                    w = 0.0
                    lj = lab[j]
                    mj = mk[j]
                    for k in range(K):
                        cf = _cf(mi, mj, Am[i, k], Bm[i, k])
                        c = lam[k] * gh * cf
                        if c > 0.0:
                            wk = c * Ex[j, k]
                            w += wk
                            if lj >= 0:
                                acc_N[ch, lj, k] += c * alpha[lj, k]
                            else:
                                for l in range(K):
                                    acc_N[ch, l, k] += c * Q[j, l] * alpha[l, k]
                            if mi >= 0 and mj >= 0:
                                fresh = wk * Am[i, k] / cf
                                acc_M[ch, 1, k] += fresh
                                if mj == mi:
                                    acc_M[ch, 0, k] += wk - fresh
                                    Cp[i, k] += wk - fresh
                    if store_w:
                        wout[p] = w
                    if w == 0.0:
                        continue
                    sw += w
                    sdt += w * bedt[p - p0]
                    _add_space_stats(w, p - p0, bedd, bres, C, sc, sdd)
        if C == 1:
            sc[0] = sw
        acc_S[ch, 0] = ll
        acc_S[ch, 1] = sw
        acc_S[ch, 2] = sdt
        for c in range(C):
            acc_S[ch, 3 + c] = sc[c]
            acc_S[ch, 3 + C + c] = sdd[c]
    Nm = np.zeros((K, K))
    S = np.zeros(3 + 2 * C)
    M = np.zeros((2, K))
    for ch in range(nchunk):
        for a in range(K):
            for b in range(K):
                Nm[a, b] += acc_N[ch, a, b]
            M[0, a] += acc_M[ch, 0, a]
            M[1, a] += acc_M[ch, 1, a]
        for a in range(3 + 2 * C):
            S[a] += acc_S[ch, a]
    return Nm, S, M


@nb.njit(cache=True, parallel=True)
def _intensity(indptr, par, dt, d2, s2, u, lab, Ex, B, alpha, omega, W, rho, sig2, mk, Am, Bm,
               Lam, nchunk, order):
    n = len(indptr) - 1
    K = Ex.shape[1]
    zw = -math.expm1(-omega * W)
    for q in nb.prange(nchunk):
        ch = order[q]
        lo = ch * n // nchunk
        hi = (ch + 1) * n // nchunk
        lam = np.empty(K)
        comp = np.empty(len(rho))
        cache = np.full(4, -1.0)
        for i in range(lo, hi):
            k0 = lab[i]
            ui2 = u[i] * u[i]
            mi = mk[i]
            if k0 >= 0:
                lm = B[i, k0]
                for p in range(indptr[i], indptr[i + 1]):
                    j = par[p]
                    lj = lab[j]
                    ex = alpha[lj, k0] if lj >= 0 else Ex[j, k0]
                    if ex == 0.0:
                        continue
                    gh, _ = _ghc(dt[p], d2[p], ui2 + u[j] * u[j], s2[i] + s2[j], rho, sig2, omega,
                                 W, zw, cache, comp)
                    lm += ex * gh * _cf(mi, mk[j], Am[i, k0], Bm[i, k0])
                Lam[i, k0] = lm
            else:
                for k in range(K):
                    lam[k] = B[i, k]
                for p in range(indptr[i], indptr[i + 1]):
                    j = par[p]
                    gh, _ = _ghc(dt[p], d2[p], ui2 + u[j] * u[j], s2[i] + s2[j], rho, sig2, omega,
                                 W, zw, cache, comp)
                    mj = mk[j]
                    for k in range(K):
                        lam[k] += Ex[j, k] * gh * _cf(mi, mj, Am[i, k], Bm[i, k])
                for k in range(K):
                    Lam[i, k] = lam[k]


def _row_max(indptr) -> int:
    return int(np.diff(indptr).max()) if len(indptr) > 1 else 0


def space_params(space):
    """(rho, sig2) arrays from ``space``: a variance sigma^2 (one Gaussian) or (rho, sig2)."""
    if np.isscalar(space):
        return np.ones(1), np.array([float(space)])
    rho, sig2 = space
    return (np.ascontiguousarray(rho, dtype=np.float64),
            np.ascontiguousarray(sig2, dtype=np.float64))


class EStepResult:
    """What one E pass returns: intensities, background responsibilities and the M-step sums.

    ``Sc[c]`` = sum over pairs of w times the share of spatial component c, ``Sdd[c]`` the same
    weighted by E|delta|^2 under c.
    """

    __slots__ = ("Lam", "Phi", "N", "ll", "Sw", "Sdt", "Sc", "Sdd", "w", "copied", "fresh",
                 "Cp")

    def __init__(self, Lam, Phi, N, S, w, M=None, Cp=None):
        self.Lam, self.Phi, self.N, self.w, self.Cp = Lam, Phi, N, w, Cp
        K = N.shape[0]
        M = np.zeros((2, K)) if M is None else M
        self.copied, self.fresh = np.asarray(M[0], float), np.asarray(M[1], float)
        C = (len(S) - 3) // 2
        self.ll, self.Sw, self.Sdt = (float(v) for v in S[:3])
        self.Sc = np.asarray(S[3:3 + C], dtype=float)
        self.Sdd = np.asarray(S[3 + C:], dtype=float)


def no_persistence(n: int, K: int):
    """Mark persistence switched off: every pair's factor is 1."""
    return np.full(n, -1, np.int32), np.ones((n, K)), np.zeros((n, K))


def persistence(kind, log_f, rho):
    """``(mk, A, Bm)`` for the kernels: kind code per event (-1 unknown), and per event and actor
    ``A = 1 - rho_k``, ``Bm = rho_k / f_k(kind_i)`` (1 and 0 where the kind is unknown)."""
    kind = np.ascontiguousarray(kind, dtype=np.int32)
    n, K = len(kind), len(rho)
    ok = kind >= 0
    # per kind first (kinds x K), then gathered per event; a kind an actor cannot have
    # (marks.LOG_ZERO) is never copied into it either
    lf = log_f.T
    table = np.where(lf > 0.5 * LOG_ZERO, rho[None, :] / np.exp(np.maximum(lf, 0.5 * LOG_ZERO)),
                     0.0)
    if ok.all():  # every kind known (the common case): whole arrays, the same numbers
        A = np.empty((n, K))
        A[:] = 1.0 - rho[None, :]
        return kind, A, table[kind]
    A = np.ones((n, K))
    Bm = np.zeros((n, K))
    A[ok] = 1.0 - rho[None, :]
    Bm[ok] = table[kind[ok]]
    return kind, A, Bm


def estep(pairs, s2, u, lab, Q, Ex, B, alpha, omega, window, space, pers=None, *, Lam=None,
          Phi=None, want_w=False) -> EStepResult:
    """Fused E pass (numba). ``Lam``/``Phi`` (N x K) may be passed to be reused.
    ``space``: sigma^2, or (rho, sig2) for a mixture of Gaussians; ``pers``: the mark
    persistence arrays of :func:`persistence` (None: off)."""
    n, K = Q.shape
    Lam = np.zeros((n, K)) if Lam is None else Lam
    Phi = np.zeros((n, K)) if Phi is None else Phi
    Cp = np.zeros((n, K))
    w = np.empty(pairs.n_pairs if want_w else 0, np.float32)
    maxrow = max(_row_max(pairs.indptr), 1)
    rho, sig2 = space_params(space)
    mk, Am, Bm = no_persistence(n, K) if pers is None else pers
    N, S, M = _estep(pairs.indptr, pairs.parent, pairs.dt, pairs.d2, s2, u, lab, Q, Ex, B,
                     np.ascontiguousarray(alpha, dtype=np.float64), float(omega), float(window),
                     rho, sig2, mk, Am, Bm, Lam, Phi, Cp, w, n_chunks(n), maxrow,
                     chunk_order(n_chunks(n)))
    return EStepResult(Lam, Phi, N, S, w if want_w else None, M, Cp)


def intensity(pairs, s2, u, lab, Ex, B, alpha, omega, window, space, pers=None,
              Lam=None) -> np.ndarray:
    """lambda[i, k] for every event (only the own column for labelled events)."""
    n, K = Ex.shape
    Lam = np.zeros((n, K)) if Lam is None else Lam
    rho, sig2 = space_params(space)
    mk, Am, Bm = no_persistence(n, K) if pers is None else pers
    _intensity(pairs.indptr, pairs.parent, pairs.dt, pairs.d2, s2, u, lab, Ex, B,
               np.ascontiguousarray(alpha, dtype=np.float64), float(omega),
               float(window), rho, sig2, mk, Am, Bm, Lam, n_chunks(n),
               chunk_order(n_chunks(n)))
    return Lam


# ---------------------------------------------------------------------------------------------
# latent labels: Gauss–Seidel sweep with offspring evidence


@nb.njit(cache=True, inline="always")
def _lambert_w_log(lz):
    """W(z) for z = exp(lz) >= 0 (principal branch), from the left so Newton cannot overshoot."""
    if lz < -700.0:
        return 0.0
    if lz > 1.0:
        w = lz - math.log(lz)
    else:
        z = math.exp(lz)
        w = z / (1.0 + z)
    for _ in range(60):
        step = (w + math.log(w) - lz) / (1.0 + 1.0 / w)
        w -= step
        if abs(step) <= 1e-15 * w:
            break
    return w


@nb.njit(cache=True)
def solve_label(a, A, out):
    """argmax over the simplex of sum_l Q_l a_l + A_l log Q_l - Q_l log Q_l (A_l >= 0).

    Q_l(nu) = A_l / W(A_l e^(nu - a_l)) (Q_l = e^(a_l - nu) where A_l = 0), with nu, the
    multiplier of sum Q = 1, found by safeguarded Newton steps. The terms without offspring
    evidence (most of them: an event's children are of one or two processes) enter each step
    as one sum, ``e^(-nu) sum e^(a_l)``, so a step costs one exponential and a Lambert W per
    process with evidence."""
    K = len(a)
    m = -np.inf
    for l in range(K):
        if a[l] > m:
            m = a[l]
    y = np.empty(K)
    s = 0.0
    free = 0.0  # sum of e^(a_l - m) over the processes without evidence (A_l = 0)
    n_ev = 0
    for l in range(K):
        y[l] = a[l] - m  # shift: <= 0
        e = math.exp(y[l])
        s += e
        if A[l] > 1e-300:
            n_ev += 1
        else:
            free += e
    ev = np.empty(n_ev, np.int64)
    n_ev = 0
    for l in range(K):
        if A[l] > 1e-300:
            ev[n_ev] = l
            n_ev += 1
    nu = math.log(s)  # the A = 0 solution; sum(Q(nu)) >= 1 here
    at = nu  # where the Q_l in ``out`` were evaluated
    lo = nu
    hi = np.inf
    for it in range(200):
        e = math.exp(-nu)
        f = free * e - 1.0
        df = free * e  # q * q / (q + 0) = q for the terms without evidence
        for i in range(n_ev):
            l = ev[i]
            w = _lambert_w_log(math.log(A[l]) + nu - y[l])
            q = A[l] / w if w > 0 else math.exp(y[l] - nu)
            out[l] = q
            f += q
            df += q * q / (q + A[l])
        at = nu
        if abs(f) < 1e-13:
            break
        if f > 0:
            lo = nu
        else:
            hi = nu
        nxt = nu + f / df if df > 0 else np.inf
        if not (nxt > lo and nxt < hi):
            nxt = 0.5 * (lo + hi) if hi < np.inf else lo + 1.0
        if nxt == nu:
            break
        nu = nxt
    for l in range(K):
        if not A[l] > 1e-300:
            out[l] = math.exp(y[l] - at)
    s = 0.0
    for l in range(K):
        s += out[l]
    for l in range(K):
        out[l] /= s


@nb.njit(cache=True)
def _sweep(order, rptr, rdt, rd2, rchild, s2, u, lab, Q, Ex, Lam, alpha, omega, W, rho, sig2,
           mk, Am, Bm, logf, Ghat, maxchild):
    K = Q.shape[1]
    zw = -math.expm1(-omega * W)
    arow = np.zeros(K)
    for l in range(K):
        for k in range(K):
            arow[l] += alpha[l, k]
    a = np.empty(K)
    A = np.empty(K)
    qn = np.empty(K)
    dq = np.empty(K)
    buf = np.empty(maxchild)
    comp = np.empty(len(rho))
    cache = np.full(4, -1.0)
    for jj in range(len(order)):
        j = order[jj]
        for l in range(K):
            a[l] = logf[j, l] + math.log(Lam[j, l]) - Ghat[j] * arow[l]
            A[l] = 0.0
        r0 = rptr[j]
        r1 = rptr[j + 1]
        for r in range(r0, r1):
            c = rchild[r]
            gh, _ = _ghc(rdt[r], rd2[r], u[c] * u[c] + u[j] * u[j], s2[c] + s2[j], rho, sig2,
                         omega, W, zw, cache, comp)
            buf[r - r0] = gh
            kc = lab[c]
            if kc >= 0:
                base = gh * _cf(mk[c], mk[j], Am[c, kc], Bm[c, kc]) / Lam[c, kc]
                for l in range(K):
                    A[l] += Q[j, l] * alpha[l, kc] * base
            else:
                for k in range(K):
                    if Q[c, k] > 0.0:
                        base = Q[c, k] * gh * _cf(mk[c], mk[j], Am[c, k], Bm[c, k]) / Lam[c, k]
                        for l in range(K):
                            A[l] += Q[j, l] * alpha[l, k] * base
        solve_label(a, A, qn)
        for l in range(K):
            dq[l] = qn[l] - Q[j, l]
        for r in range(r0, r1):
            c = rchild[r]
            gh = buf[r - r0]
            kc = lab[c]
            if kc >= 0:
                d = 0.0
                for l in range(K):
                    d += dq[l] * alpha[l, kc]
                Lam[c, kc] += d * gh * _cf(mk[c], mk[j], Am[c, kc], Bm[c, kc])
            else:
                for k in range(K):
                    d = 0.0
                    for l in range(K):
                        d += dq[l] * alpha[l, k]
                    Lam[c, k] += d * gh * _cf(mk[c], mk[j], Am[c, k], Bm[c, k])
        for k in range(K):
            e = 0.0
            for l in range(K):
                e += qn[l] * alpha[l, k]
            Ex[j, k] = e
        for l in range(K):
            Q[j, l] = qn[l]


def children_of(pairs, n, mask):
    """Pairs regrouped by parent for the parents in ``mask``: (rptr, rchild, rdt, rd2)."""
    from culpa.model.pairs import reverse_lags

    return reverse_lags(pairs, n, mask)


def label_sweep(order, rev, pairs, s2, u, lab, Q, Ex, Lam, alpha, omega, window, space, logf,
                Ghat, pers=None):
    """Update Q, Ex and Lam in place for the latent events in ``order`` (see module doc).

    ``rev`` is :func:`children_of` of the latent events (the pairs regrouped by parent, with
    their lags and distances copied so the sweep reads them contiguously).
    """
    rptr, rchild, rdt, rd2 = rev
    maxchild = max(int(np.diff(rptr).max()) if len(rptr) > 1 else 0, 1)
    rho, sig2 = space_params(space)
    mk, Am, Bm = no_persistence(*Q.shape) if pers is None else pers
    _sweep(order, rptr, rdt, rd2, rchild, s2, u, lab, Q, Ex, Lam,
           np.ascontiguousarray(alpha, dtype=np.float64), float(omega), float(window),
           rho, sig2, mk, Am, Bm, logf, Ghat, maxchild)


# ---------------------------------------------------------------------------------------------
# queries: the triggered intensity at new (t, x) from the fitted events before t


@nb.njit(cache=True, inline="always")
def _scan_history(qt, qx, qy, qs2, qu, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u,
                  omega, W, rho, sig2, r2, zw, idx, val, d2o):
    """The fitted events that can trigger a query at ``(qt, qx, qy)`` (strictly before it,
    within the window and ``sqrt(r2)``): how many, and (when the buffers are not empty) each
    one's index, g*h and squared distance in ``idx``, ``val``, ``d2o``, in grid order."""
    store = len(idx) > 0
    gx0, gx1, gy0, gy1 = cell_span(qx, qy, x0, y0, cell, nx, ny, reach)
    m = 0
    for gy in range(gy0, gy1):
        for gx in range(gx0, gx1):
            g = gy * nx + gx
            p = _lower_bound(ct, start[g], start[g + 1], qt - W)
            for q in range(p, start[g + 1]):
                if ct[q] >= qt:
                    break
                j = ev[q]
                dx, dy = x[j] - qx, y[j] - qy
                dd = dx * dx + dy * dy
                if dd <= r2:
                    if store:
                        idx[m] = j
                        val[m] = _gh(qt - ct[q], dd, qu, u[j], qs2, s2[j], omega, W, zw, rho,
                                     sig2)
                        d2o[m] = dd
                    m += 1
    return m


@nb.njit(cache=True)
def _history_of(qt, qx, qy, qs2, qu, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u,
                omega, W, rho, sig2, r2, zw):
    """(index, g*h, squared distance) of every fitted event that can trigger the query."""
    ni, nf = np.empty(0, np.int64), np.empty(0)
    m = _scan_history(qt, qx, qy, qs2, qu, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2,
                      u, omega, W, rho, sig2, r2, zw, ni, nf, nf)
    idx, val, d2o = np.empty(max(m, 1), np.int64), np.empty(max(m, 1)), np.empty(max(m, 1))
    _scan_history(qt, qx, qy, qs2, qu, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u,
                  omega, W, rho, sig2, r2, zw, idx, val, d2o)
    return idx[:m], val[:m], d2o[:m]


@nb.njit(cache=True)
def _query_row(i, out, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u, Ex, qt, qx, qy,
               qs2, qu, omega, W, rho, sig2, r2, zw, mk, qm, qA, qB):
    K = Ex.shape[1]
    idx, val, _ = _history_of(qt[i], qx[i], qy[i], qs2[i], qu[i], x0, y0, cell, nx, ny, reach,
                              start, ev, ct, x, y, s2, u, omega, W, rho, sig2, r2, zw)
    for a in range(len(idx)):
        j = idx[a]
        for k in range(K):
            out[i, k] += Ex[j, k] * val[a] * _cf(qm[i], mk[j], qA[i, k], qB[i, k])


@nb.njit(cache=True, parallel=True)
def _query(x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u, Ex, qt, qx, qy, qs2, qu,
           omega, W, rho, sig2, r2, mk, qm, qA, qB):
    out = np.zeros((len(qt), Ex.shape[1]))
    zw = -math.expm1(-omega * W)
    for i in nb.prange(len(qt)):
        _query_row(i, out, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u, Ex, qt, qx,
                   qy, qs2, qu, omega, W, rho, sig2, r2, zw, mk, qm, qA, qB)
    return out


@nb.njit(cache=True)
def _query_serial(x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u, Ex, qt, qx, qy, qs2,
                  qu, omega, W, rho, sig2, r2, mk, qm, qA, qB):
    """Same as _query without threads: a single attribution must not wait for a thread pool."""
    out = np.zeros((len(qt), Ex.shape[1]))
    zw = -math.expm1(-omega * W)
    for i in range(len(qt)):
        _query_row(i, out, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u, Ex, qt, qx,
                   qy, qs2, qu, omega, W, rho, sig2, r2, zw, mk, qm, qA, qB)
    return out


@nb.njit(cache=True)
def _query_one(x0, y0, cell, nx, ny, reach, start, ev, ct, x, y, s2, u, qt, qx, qy, qs2, qu,
               omega, W, rho, sig2, r2):
    zw = -math.expm1(-omega * W)
    return _history_of(qt, qx, qy, qs2, qu, x0, y0, cell, nx, ny, reach, start, ev, ct, x, y,
                       s2, u, omega, W, rho, sig2, r2, zw)


def query_intensity(grid, x, y, s2, u, Ex, qt, qx, qy, qs2, qu, omega, window, space, radius,
                    mk=None, qpers=None):
    """Triggered intensity (nq x K) at queries from fitted events strictly before each query.
    ``mk``: the fitted events' kind codes and ``qpers`` the queries' :func:`persistence` arrays
    (None: persistence off)."""
    f = np.ascontiguousarray
    fn = _query if len(qt) >= 256 else _query_serial
    rho, sig2 = space_params(space)
    if mk is None or qpers is None:
        mk = np.full(len(x), -1, np.int32)
        qpers = no_persistence(len(qt), Ex.shape[1])
    qm, qA, qB = qpers
    return fn(*grid.arrays(), x, y, s2, u, Ex, f(qt, dtype=np.float64),
              f(qx, dtype=np.float64), f(qy, dtype=np.float64), f(qs2, dtype=np.float64),
              f(qu, dtype=np.float64), float(omega), float(window), rho, sig2,
              float(radius) ** 2, f(mk, dtype=np.int32), f(qm, dtype=np.int32), f(qA), f(qB))


def query_contributions(grid, x, y, s2, u, qt, qx, qy, qs2, qu, omega, window, space, radius):
    """(event index, g*h, squared distance) of every fitted event that can trigger the query."""
    rho, sig2 = space_params(space)
    return _query_one(*grid.arrays(), x, y, s2, u, float(qt), float(qx), float(qy), float(qs2),
                      float(qu), float(omega), float(window), rho, sig2, float(radius) ** 2)
