"""Leave-one-out label probabilities of a fitted Hawkes model, for the pool's out-of-fold step.

For a labelled event ``j`` the question is: had its label been hidden (everything else as
fitted), what would the model have said? A latent event's label probabilities come from the
label sweep (:mod:`culpa.model.kernels`, "Latent labels"): its own evidence
``a_l = log f_l(m_j) + log lambda[j, l] - Ghat_j sum_k alpha[l, k]`` and the evidence of its
offspring ``A_l = sum_c sum_k Q[c, k] q_l alpha[l, k] gh_cj / lambda[c, k]``, solved on the
simplex (``solve_label``). Here the same fixed point is found for each labelled event on its
own (``ITERATIONS`` minorise-maximise steps from its parents-only posterior), with its
children's intensities corrected for the label it would then have: ``lambda[c, k]`` less what
``j`` excites as its true label plus what it excites as ``q``. So a labelled event is scored on
the footing of a masked one (its past and its offspring), never from its own label. Its
background is the fitted one, which is cross-fitted over time blocks (an event is never in its
own ground); latent earlier events excite with their past-only label probabilities, so a label
cannot come back to its own event through a latent neighbour whose posterior it informed.

Own weight. A masked event is latent in the fit, so its own label probabilities ``q`` count in
the fit's tables: ``q_l`` of it in process l's rate in its bin and in l's mark tables. The
labelled event left out here starts with its label out of every table (its own process's
rate and marks without it, :func:`own_label_out`; no other process counted it), which scored it
less confidently than the fit scores a masked event (on the shared Syria split the pool then
trusted the Hawkes model too much on masked events). So its fixed point is taken with it
counted back at its own ``q``: ``SELF_PASSES`` passes, each counting it with the previous
pass's ``q`` (:func:`_own_weight_terms`). Its weight in the self-excitation ``alpha_kk`` stays
out (one event of a process's whole branching mass).
"""

from __future__ import annotations

import math

import numpy as np
from culpa.model import lazynumba as nb

from culpa.model import kernels as kr
from culpa.model.em import compensator_weights

#: Minorise-maximise steps of each event's fixed point (the sweep's surrogate converges fast).
ITERATIONS = 6
#: Passes of the own-weight step (each a pass of every event's fixed point with its rate and
#: mark tables counting it with the previous pass's label probabilities).
SELF_PASSES = 2


@nb.njit(cache=True, parallel=True)
def _loo(rows, rptr, rchild, rdt, rd2, s2, u, lab, Q, ExF, Lam, LamJ, alpha, omega, W, rho, sig2,
         mk, Am, Bm, logf, Ghat, own_alpha, iters, out, diag):
    K = Q.shape[1]
    zw = -math.expm1(-omega * W)
    arow = np.zeros(K)
    for l in range(K):
        for k in range(K):
            arow[l] += alpha[l, k]
    for ii in nb.prange(len(rows)):
        j = rows[ii]
        kj = lab[j]
        # the fitted triggering, its own diagonal without j (own_alpha): with no
        # cross-excitation (diag) only the diagonal ``dg`` is read, else the matrix ``al``
        dg = np.empty(K)
        for k in range(K):
            dg[k] = alpha[k, k]
        al = alpha
        if not diag:
            al = alpha.copy()
        ar = arow.copy()
        if kj >= 0:
            dg[kj] = own_alpha[j]
            if not diag:
                al[kj, kj] = own_alpha[j]
            ar[kj] += own_alpha[j] - alpha[kj, kj]
        a = np.empty(K)
        A = np.empty(K)
        q = np.empty(K)
        qn = np.empty(K)
        ex = np.empty(K)
        comp = np.empty(len(rho))
        cache = np.full(4, -1.0)
        m = -np.inf
        for l in range(K):
            a[l] = logf[j, l] + math.log(max(LamJ[j, l], 1e-300)) - Ghat[j] * ar[l]
            if a[l] > m:
                m = a[l]
        s = 0.0
        for l in range(K):
            q[l] = math.exp(a[l] - m)
            s += q[l]
        for l in range(K):
            q[l] /= s
        r0 = rptr[j]
        r1 = rptr[j + 1]
        if r1 > r0:
            # each child's kernel value (and a labelled child's mark factor) once: q moves
            # only what j excites there
            gh_of = np.empty(r1 - r0)
            cf_of = np.ones(r1 - r0)
            kc_of = np.empty(r1 - r0, np.int64)
            lam_of = np.zeros(r1 - r0)
            for r in range(r0, r1):
                c = rchild[r]
                gh_of[r - r0], _ = kr._ghc(rdt[r], rd2[r], u[c] * u[c] + u[j] * u[j],
                                           s2[c] + s2[j], rho, sig2, omega, W, zw, cache, comp)
                kc = lab[c]
                kc_of[r - r0] = kc
                if kc >= 0:
                    cf_of[r - r0] = kr._cf(mk[c], mk[j], Am[c, kc], Bm[c, kc])
                    lam_of[r - r0] = Lam[c, kc]
            for _ in range(iters):
                for k in range(K):
                    if diag:  # only l = k excites k: the other terms are exact zeros
                        e = q[k] * dg[k]
                    else:
                        e = 0.0
                        for l in range(K):
                            e += q[l] * al[l, k]
                    ex[k] = e - ExF[j, k]  # what j excites as q, less what it did
                for l in range(K):
                    A[l] = 0.0
                for r in range(r0, r1):
                    gh = gh_of[r - r0]
                    kc = kc_of[r - r0]
                    if kc >= 0:
                        cf = cf_of[r - r0]
                        lam = max(lam_of[r - r0] + ex[kc] * gh * cf, 1e-300)
                        base = gh * cf / lam
                        if diag:
                            A[kc] += q[kc] * dg[kc] * base
                        else:
                            for l in range(K):
                                A[l] += q[l] * al[l, kc] * base
                    else:
                        c = rchild[r]
                        for k in range(K):
                            if Q[c, k] > 0.0:
                                cf = kr._cf(mk[c], mk[j], Am[c, k], Bm[c, k])
                                lam = max(Lam[c, k] + ex[k] * gh * cf, 1e-300)
                                base = Q[c, k] * gh * cf / lam
                                if diag:
                                    A[k] += q[k] * dg[k] * base
                                else:
                                    for l in range(K):
                                        A[l] += q[l] * al[l, k] * base
                kr.solve_label(a, A, qn)
                for l in range(K):
                    q[l] = qn[l]
        for l in range(K):
            out[ii, l] = q[l]


def _past_intensity(model):
    """(background B as fitted, mark log-likelihoods logf, excitation Ex with latent events
    at their past-only label probabilities, every process's intensity LamJ at every fitted
    event from the events before it, the background B_own of LamJ): the parts the
    leave-one-out pass and the past-only probabilities share. While the fit's last E pass is
    at hand (``_final_pass``), a labelled event's own column of logf, LamJ and B_own has its
    own label taken out (:func:`own_label_out`)."""
    pairs = model._pairs
    n, K = model._Q.shape
    B = model._temporal.rate(model._t) * model._spatial.with_floor(model._kde_loo)
    logf = model._marks.loglik(model._mcode)
    lab = np.ascontiguousarray(model._lab, np.int32)
    hidden = np.full(n, -1, np.int32)
    latent = lab < 0
    Ex = model._Ex
    args = (model._s2, model._u)
    if latent.any():  # latent parents: label probabilities from their past only
        L1 = kr.intensity(pairs, *args, hidden, Ex, B, model.alpha_, model.omega_,
                          model.window_days, model._space, model._pers)
        z = np.log(np.maximum(L1, 1e-300)) + logf
        z -= z.max(1, keepdims=True)
        Q1 = np.exp(z)
        Q1 /= Q1.sum(1, keepdims=True)
        Ex = Ex.copy()
        Ex[latent] = Q1[latent] @ model.alpha_
    LamJ = kr.intensity(pairs, *args, hidden, Ex, B, model.alpha_, model.omega_,
                        model.window_days, model._space, model._pers)
    final = getattr(model, "_final_pass", None)
    B_own, own_alpha = B, _fitted_own_alpha(model)
    if final is not None:
        B_own, logf, own_alpha = own_label_out(model, B, logf, final)
        rows = np.flatnonzero(lab >= 0)
        k = lab[rows]
        diag = np.diag(model.alpha_)[k]
        scale = np.where(diag > 0, own_alpha[rows] / np.where(diag > 0, diag, 1.0), 1.0)
        excited = LamJ[rows, k] - B[rows, k]  # from the parents of its own process
        LamJ = LamJ - B + B_own  # the background enters the intensity as one term
        LamJ[rows, k] = B_own[rows, k] + excited * scale
    return B, logf, Ex, LamJ, B_own, own_alpha


def _fitted_own_alpha(model) -> np.ndarray:
    """Per fitted event, the fitted self-excitation of its own process (of process 0 for a
    latent one, which the leave-one-out pass never reads)."""
    return np.diag(model.alpha_)[np.maximum(model._lab, 0)].astype(np.float64)


def own_label_out(model, B: np.ndarray, logf: np.ndarray, final):
    """``(B, logf, own_alpha)``: ``B`` and ``logf`` with each labelled event's own label
    taken out of the estimates that counted it, its process's rate in its own bin
    (``mu = (sum phi + pseudo) / length`` less its background responsibility ``phi``) and its
    process's mark tables (the counts less its own weight); and per event its own process's
    self-excitation ``alpha_kk = N_kk / D_k`` without it (less its branching mass as a child,
    ``1 - phi``, and as a parent, its children's branching weights; less its exposure
    ``Ghat`` in ``D_k``; the fitted value for a latent event, or with cross-excitation, where
    it is not one ratio). Only a labelled event's own column changes (no other process
    counted it). ``final``: the fit's last E pass (``Phi``, ``Cp``, ``N``, ``w``). The grounds
    need no such step: they are cross-fitted over time blocks already."""
    lab = np.asarray(model._lab)
    rows = np.flatnonzero(lab >= 0)
    k = lab[rows]
    B, logf = B.copy(), logf.copy()
    # the rate: mu_k in the event's own bin without its own background responsibility
    mu, _ = _rates_out(model, final, rows, k)
    i = np.arange(len(rows))
    B[rows, k] *= mu[i, k] / model._temporal.mu[k, model._temporal.bin_of(model._t[rows])]
    # the marks: each channel's category probability from counts without the event's weight
    tables = list(_mark_counts_out(model, final, rows, k))
    model._mark_tables_out = (rows, tables)  # the own-weight step reads them again
    for ok, num, den, w, _ in tables:
        r, kk = rows[ok], k[ok]
        i = np.arange(len(r))
        num_k, den_k = num[i, kk], den[i, kk]
        logf[r, kk] += (np.log(np.maximum(num_k, 1e-300) / den_k)
                        - np.log((num_k + w) / (den_k + w)))
    own_alpha = _fitted_own_alpha(model)
    if not model.cross_excitation and final.w is not None:
        n, Q = len(lab), model._Q
        Ghat = compensator_weights(model._t, model.t_end_, model.omega_,
                                   float(model.window_days))
        D = Q.T @ Ghat
        N = np.diag(final.N)
        as_parent = np.bincount(model._pairs.parent, weights=final.w, minlength=n)
        mass = (1.0 - final.Phi[rows, k]) + as_parent[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            full_ratio = N[k] / D[k]
            out_ratio = np.maximum(N[k] - mass, 0.0) / (D[k] - Ghat[rows])
            scale = np.where((full_ratio > 0) & (D[k] - Ghat[rows] > 0),
                             out_ratio / np.where(full_ratio > 0, full_ratio, 1.0), 1.0)
        own_alpha[rows] *= scale
    return B, logf, own_alpha


def _mark_counts_out(model, final, rows: np.ndarray, k: np.ndarray):
    """Per mark channel, the counts behind the labelled events ``rows`` (of processes ``k``)
    with each one's own weight taken out: ``(ok, num, den, w, fixed)``, ``ok`` the rows with a
    category in the channel; for those, per process, ``num`` the pseudo-count plus the count
    of the row's category and ``den`` the table's total (the categories the process may have),
    both without the row's weight ``w`` (it counted in its own process only); ``fixed`` where a
    process cannot have the row's category (its probability is not a ratio of counts)."""
    marks, codes = model._marks, model._mcode
    Q = model._Q
    onehots = marks.code_matrices(codes)  # per channel, what the fit's counts are made of
    for c, (ch, lp) in enumerate(zip(marks.channels, marks.log_p)):
        code = codes[rows, c]
        ok = code >= 0
        r, kk, m = rows[ok], k[ok], code[ok]
        W = Q
        if ch == "kind" and model._pers is not None and final.Cp is not None:
            W = np.maximum(Q - final.Cp, 0.0)  # the kind weights the fit counted
        counts = np.asarray((onehots[c] @ W).T)  # (processes x categories), as the fit counts
        w = W[r, kk]
        forbidden = ch == "kind" and marks.forbidden is not None
        if forbidden:
            total = np.where(marks.forbidden, 0.0, counts + marks.a).sum(1)
            fixed = marks.forbidden[:, m].T
        else:
            total = counts.sum(1) + lp.shape[1] * marks.a
            fixed = np.zeros((len(r), counts.shape[0]), bool)
        own = np.zeros((len(r), counts.shape[0]))
        own[np.arange(len(r)), kk] = w
        yield ok, counts[:, m].T + marks.a - own, total[None, :] - own, w, fixed


def _own_weight_terms(model, rows: np.ndarray, B_own: np.ndarray, LamJ: np.ndarray, final):
    """What counting each left-out labelled event ``rows`` in process l with weight ``q_l``
    adds where it is (see "Own weight" in the module doc): ``(dlam, marks)``; ``dlam`` (rows x
    processes) its intensity's gain per unit ``q_l``, through process l's rate in its own bin
    (``mu_l`` gains ``q_l phi_l / length``, ``phi_l`` its background responsibility under l);
    ``marks``: :func:`_mark_counts_out`'s tables (their counts gain ``q_l w``)."""
    k = np.asarray(model._lab)[rows]
    mu, length = _rates_out(model, final, rows, k)
    phi = B_own[rows] / np.maximum(LamJ[rows], 1e-300)
    dlam = B_own[rows] * phi / (length[:, None] * np.maximum(mu, 1e-300))
    kept = model.__dict__.pop("_mark_tables_out", None)  # own_label_out's, of the same fit
    if kept is not None and np.array_equal(kept[0], rows):
        return dlam, kept[1]
    return dlam, list(_mark_counts_out(model, final, rows, k))


def _rates_out(model, final, rows: np.ndarray, k: np.ndarray):
    """Every process's rate ``mu`` in the bin of each labelled event ``rows`` (rows x
    processes), its own process's (``k``) without its background responsibility ``phi``
    (``mu = (sum phi + pseudo) / length``; no other process counted it), and each bin's
    length."""
    tb = model._temporal
    b = tb.bin_of(model._t[rows])
    length = tb.lengths[b]
    i = np.arange(len(rows))
    mu = tb.mu[:, b].T.copy()
    floor = np.asarray(tb.pseudo)[k, b] / length  # the rate of a bin with no event in it
    mu[i, k] = np.maximum(mu[i, k] - final.Phi[rows, k] / length, floor)
    return mu, length


def _counted_with(q: np.ndarray, logf: np.ndarray, lam: np.ndarray, terms):
    """``(logf, lam)`` of the left-out rows with each counted in process l with weight
    ``q[:, l]`` (:func:`_own_weight_terms`)."""
    dlam, marks = terms
    lam = lam + q * dlam
    logf = logf.copy()
    for ok, num, den, w, fixed in marks:
        qw = q[ok] * w[:, None]
        gain = np.log1p(qw / np.maximum(num, 1e-300)) - np.log1p(qw / np.maximum(den, 1e-300))
        logf[ok] += np.where(fixed, 0.0, gain)
    return logf, lam


def past_process_proba(model, rows: np.ndarray, parts=None,
                       hold_rates_before: float | None = None) -> np.ndarray:
    """P(process) (len(rows) x processes) of the fitted events ``rows`` (time order) from
    their past only, at the fitted parameters: each one's intensity from the events before it
    (labelled ones as labelled, latent ones at their past-only probabilities) on its
    cross-fitted ground, times its marks' likelihood -- as a query after the fit is answered,
    where nothing after it is known (no offspring). ``hold_rates_before`` (days since
    ``t0_``): the rows' background rates are those of the last rate bin that ends by then,
    held (as a query after a fit gets the last rate held), so no label after it reaches them
    through the rates. Reads the candidate pairs: call right after ``fit``. ``parts``:
    :func:`_past_intensity`'s, when at hand."""
    _, logf, _, LamJ, B, _ = _past_intensity(model) if parts is None else parts
    rows = np.asarray(rows, np.int64)
    lam = LamJ[rows]
    if hold_rates_before is not None:
        edges = np.asarray(model._temporal.edges, float)
        done = edges[1:][edges[1:] <= hold_rates_before]
        t_hold = float(done.max()) - 1e-6 if len(done) else float(edges[0])
        t = np.minimum(model._t[rows], t_hold)
        held = model._temporal.rate(t) * model._spatial.with_floor(model._kde_loo[rows])
        lam = lam - B[rows] + held  # the background enters the intensity as one term
    z = np.log(np.maximum(lam, 1e-300)) + logf[rows]
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def loo_process_proba(model, rows: np.ndarray, parts=None) -> np.ndarray:
    """P(process) (len(rows) x processes) of the fitted events ``rows`` (time order) with each
    one's own label hidden (see the module doc). Reads the candidate pairs: call right after
    ``fit``. ``parts``: :func:`_past_intensity`'s, when at hand."""
    pairs = model._pairs
    n, K = model._Q.shape
    lab = np.ascontiguousarray(model._lab, np.int32)
    B, logf, Ex, LamJ, B_own, own_alpha = _past_intensity(model) if parts is None else parts
    args = (model._s2, model._u)
    # the fitted intensities at the children (own column of labelled ones), fitted excitation
    Lam = kr.intensity(pairs, *args, lab, model._Ex, B, model.alpha_, model.omega_,
                       model.window_days, model._space, model._pers)
    mask = np.zeros(n, bool)
    mask[rows] = True
    rptr, rchild, rdt, rd2 = kr.children_of(pairs, n, mask)
    rho, sig2 = kr.space_params(model._space)
    mk, Am, Bm = kr.no_persistence(n, K) if model._pers is None else model._pers
    Ghat = compensator_weights(model._t, model.t_end_, model.omega_, float(model.window_days))
    rows = np.ascontiguousarray(rows, np.int64)
    alpha = np.ascontiguousarray(model.alpha_, np.float64)
    diag = not np.any(alpha[~np.eye(K, dtype=bool)])  # no cross-excitation: skip its zeros
    fixed = (rptr, rchild, rdt, rd2, model._s2, model._u, lab, np.ascontiguousarray(model._Q),
             np.ascontiguousarray(model._Ex), Lam)
    params = (alpha, float(model.omega_), float(model.window_days), rho, sig2, mk, Am, Bm)
    Ghat = np.ascontiguousarray(Ghat, np.float64)
    own_alpha = np.ascontiguousarray(own_alpha, np.float64)

    def fixed_point(logf, LamJ):
        out = np.zeros((len(rows), K))
        _loo(rows, *fixed, np.ascontiguousarray(LamJ), *params, np.ascontiguousarray(logf),
             Ghat, own_alpha, ITERATIONS, out, diag)
        return out

    q = fixed_point(logf, LamJ)
    final = getattr(model, "_final_pass", None)
    own = np.flatnonzero(lab[rows] >= 0)
    if final is None or not len(own) or SELF_PASSES == 0:
        return q
    # a masked event counts in the fit's tables with its label probabilities: so does each
    # left-out event here, at the fixed point of its own q (see "Own weight" in the module doc)
    terms = _own_weight_terms(model, rows[own], B_own, LamJ, final)
    for _ in range(SELF_PASSES):
        lf, lam = logf.copy(), LamJ.copy()
        lf[rows[own]], lam[rows[own]] = _counted_with(q[own], logf[rows[own]],
                                                      LamJ[rows[own]], terms)
        q = fixed_point(lf, lam)
    return q
