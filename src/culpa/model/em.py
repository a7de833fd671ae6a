"""The EM of :class:`~culpa.model.hawkes.HawkesAttributor`: its state, one E pass, one M-step,
SQUAREM acceleration, the line search of the grounds and the objective.

EM maximises (and records, once per iteration)

    J(theta, Q) = sum_i sum_k Q[i,k] (log lambda_k(t_i, x_i) + log f_k(m_i)) + sum_{latent} H(Q[i])
                  - sum_k int mu_k dt - sum_j sum_k (Q alpha)[j, k] Ghat_j + log priors

where ``Ghat_j = G_W(T - t_j)`` (:mod:`culpa.model.timekernel`) is the share of ``j``'s
triggering kernel inside the observed period (the spatial mass of h is taken as one) and the
priors are the Dirichlet pseudo-counts of the marks, the Gamma pseudo-count of ``mu`` and the
Beta(2, 2) of the mark persistence. When every label is known ``J`` is the log-likelihood of the
marked multi-type process. For a latent event with its parents' labels held fixed, maximising
``J`` over ``Q[i]`` alone gives ``Q[i,k] ∝ lambda_k f_k`` and ``J`` becomes the log-likelihood
with ``i``'s label marginalised; ``J`` is the variational free energy of that model, where
parents excite in proportion to their label probabilities.

Every step either maximises ``J`` exactly in a block of variables or maximises a minorising
surrogate of it, so ``J`` never decreases (tested):

E pass (one fused pass over the candidate pairs, :func:`culpa.model.kernels.estep`): the
  branching responsibilities — for child ``i`` in its process ``k`` — of the background,
  ``Q[i,k] mu_k b_k / lambda_k``, and of each candidate parent ``j`` acting as ``l``,
  ``Q[i,k] Q[j,l] alpha[l,k] g h / lambda_k``, summed into the M-step statistics.
M-step (:meth:`EM.m_step`, conditional maximisations of the surrogate, in this order):
  - mark persistence: a triggered event repeats its trigger's kind (type and target) with
    probability ``rho_k``, else draws it from ``f_k`` (see "Marks that persist" in
    :mod:`culpa.model.kernels`); ``rho_k = (copied_k + 1) / (copied_k + fresh_k + 2)``, the
    MAP under the Beta(2, 2) prior;
  - marks: ``P(c|k) ∝ sum_i Q[i,k] [m_i = c] + a`` (for the kind channel, ``Q[i,k]`` less the
    share of ``i`` whose kind was copied from its trigger);
  - ``mu_kb = (sum_{i in bin b} phi_ik + tau + s_kb) / L_b`` with ``phi_ik`` the background
    responsibilities and ``s_kb`` the fixed pseudo-counts that shrink a process's rate towards
    its actor's activity (``ground_shrink``; 0 with one process per actor);
  - ``b_k``: a new weighted KDE of the background responsibilities (Zhuang-style declustering)
    is *proposed* and mixed in as ``(1 - eta) b_old + eta b_new`` with ``eta`` in [0, 1]
    maximising the background part of the surrogate, ``sum_i phi_ik log b_k(x_i)`` (concave in
    eta, :func:`line_search`). A KDE step alone is not an M-step and can lower the likelihood;
    the line search keeps EM monotone while letting the KDE do the work. The background at the
    fitted events is cross-fitted over alternating time blocks
    (:class:`culpa.model.background.CrossFitKDE`) so that a cluster cannot explain itself;
  - ``alpha[l,k] = N[l,k] / sum_j Q[j,l] Ghat_j`` (diagonal unless ``cross_excitation``);
  - ``omega``: 1-D maximisation of ``Sw log omega - omega Sdt - Sw log(1 - e^{-omega W})
    - sum_j (Q alpha 1)_j G_W(T - t_j)``, with ``Sdt`` built from ``E[dt*]`` (date imprecision);
  - ``sigma^2 = Sdd / (2 Sw)`` (variance-component EM step for the imprecise locations; per
    component, with weights ``rho_c = Sc / Sw``, when the spatial kernel is a mixture);
  - labels (latent events only): a Gauss–Seidel sweep, each latent event updated by the exact
    maximiser of a surrogate of ``J`` in ``Q[j]`` that contains its own evidence, the
    expected-offspring penalty and the evidence of its offspring
    (:func:`culpa.model.kernels.label_sweep`).
Acceleration (:func:`squarem`): SQUAREM (Varadhan & Roland 2008) extrapolates :class:`Theta`
  from two EM steps; the extrapolated state is kept only if ``J`` does not drop, else the plain
  EM state is used, so the recorded ``J`` stays monotone. EM alone crawls along the ridge where
  background and triggering trade off; the extrapolation shortens that walk.
Convergence: a plain EM step that gains under ``tol`` (relative) after a background update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from culpa.model import kernels as kr
from culpa.model import timekernel


@dataclass
class Theta:
    """The global parameters: what SQUAREM extrapolates. ``space`` is (weights, variances km^2)
    of the spatial kernel's Gaussians, ``persistence`` the mark persistence ``rho_k``."""

    mu: np.ndarray  # (processes x bins) background rates
    alpha: np.ndarray  # (processes x processes) offspring per event
    omega: float  # decay of the time kernel (per day)
    space: tuple[np.ndarray, np.ndarray]
    persistence: np.ndarray

    def copy(self) -> "Theta":
        return Theta(self.mu.copy(), self.alpha.copy(), self.omega,
                     (self.space[0].copy(), self.space[1].copy()), self.persistence.copy())


@dataclass
class EMState:
    """What EM iterates besides the labels ``Q``: the global parameters and what is derived
    from them at the fitted events (``logf`` marks, ``ground`` the floored spatial
    background, ``Ghat`` the compensator weights, ``B`` = mu_k(t_i) b_k(x_i), ``pers`` the mark
    persistence arrays of the kernels, None when persistence is off)."""

    alpha: np.ndarray
    omega: float
    space: tuple[np.ndarray, np.ndarray]
    persistence: np.ndarray
    logf: np.ndarray
    ground: np.ndarray
    Ghat: np.ndarray
    B: np.ndarray
    pers: tuple | None


def compensator_weights(t, t_end: float, omega: float, W: float) -> np.ndarray:
    """``Ghat_j = G_W(t_end - t_j)``: the share of each event's offspring inside the data."""
    return timekernel.cdf(t_end - t, omega, W)


def excitation(Q: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``Q @ alpha``: what each event excites in each process. With a diagonal ``alpha`` (no
    cross-excitation) it is ``Q`` times the diagonal, the same numbers (every other term of the
    product is an exact zero) at a K-th of the cost."""
    d = np.diag(alpha)
    if np.count_nonzero(alpha) == np.count_nonzero(d):
        return Q * d[None, :]
    return Q @ alpha


def objective(ll, Q, logf, latent, temporal, Ex, Ghat, marks) -> float:
    """``J`` (module doc) less the persistence prior, from an E pass's log-likelihood term."""
    J = ll + float(np.sum(Q * logf))
    if len(latent):
        q = Q[latent]
        with np.errstate(divide="ignore", invalid="ignore"):
            J -= float(np.sum(np.where(q > 0, q * np.log(q), 0.0)))
    J -= float(temporal.integral().sum())
    J -= float(Ex.sum(1) @ Ghat)
    J += marks.log_prior() + temporal.log_prior()
    return J


def update_omega(omega, Sw, Sdt, c, t, t_end: float, W: float) -> float:
    """Maximise the omega part of the surrogate (exact 1-D maximisation)."""
    if Sw <= 0:
        return omega
    tau = t_end - t
    edge = tau < W
    tau_e, c_e = tau[edge], c[edge]

    def neg(logw):
        w = math.exp(logw)
        zw = -math.expm1(-w * W)
        G = timekernel.cdf(tau_e, w, W)
        return -(Sw * logw - w * Sdt - Sw * math.log(zw) - float(c_e @ G))

    from scipy import optimize  # not on the query path (culpa attribute imports this module)

    res = optimize.minimize_scalar(neg, bounds=(math.log(1e-4), math.log(1e3)),
                                   method="bounded", options={"xatol": 1e-10})
    if res.fun <= neg(math.log(omega)):
        return float(math.exp(res.x))
    return omega


def line_search(p, a, b) -> float:
    """argmax over [0, 1] of sum p log((1 - eta) a + eta b)  (concave; a, b > 0)."""
    d = b - a

    def grad(eta):
        return float(np.sum(p * d / (a + eta * d)))

    if grad(1.0) >= 0:
        return 1.0
    if grad(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    eta = 0.5
    for _ in range(60):
        den = a + eta * d
        g = float(np.sum(p * d / den))
        h = -float(np.sum(p * (d / den) ** 2))
        if g > 0:
            lo = eta
        else:
            hi = eta
        nxt = eta - g / h if h < 0 else 0.5 * (lo + hi)
        if not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - eta) < 1e-12:
            break
        eta = nxt
    return eta


def update_grounds(kde, Phi) -> None:
    """Propose the Zhuang KDE of background responsibilities; mix it in by line search.

    A process whose background weights moved by under 1 % (L1) since its last proposal is
    skipped (skipping an update never lowers the objective)."""
    eps, area = kde.sb.eps, kde.sb.area
    for k in range(kde.sb.n_processes):
        p = Phi[:, k]
        tot = p.sum()
        if tot <= 0:
            continue
        last = kde.last_weights[k]
        if last is not None and np.abs(p / tot - last).sum() < 0.01:
            continue
        kde.last_weights[k] = p / tot
        prop = kde.propose(k, p)
        sel = p > 0
        a = (1 - eps) * kde.values[sel, k] + eps / area
        b = (1 - eps) * prop[2][sel] + eps / area
        eta = line_search(p[sel], a, b)
        if eta > 0:
            kde.accept(k, prop, eta)


def squarem(th0: Theta, th1: Theta, th2: Theta, amax: float) -> Theta | None:
    """SQUAREM-3 extrapolation of (mu, alpha, omega, spatial variances) in log space and of the
    mark persistence in logit space, or None; the spatial mixture weights are taken from the
    last EM step. (Persistence near 0 is a mixture weight at the boundary, which plain EM
    approaches very slowly.)"""
    live = (th0.alpha > 0) & (th1.alpha > 0) & (th2.alpha > 0)
    P = (len(th0.persistence)
         if (th0.persistence > 0).all() and (th2.persistence > 0).all() else 0)

    def vec(th: Theta):
        r = np.clip(th.persistence, 1e-12, 1 - 1e-12)
        return np.concatenate([np.log(r / (1 - r))[:P],
                               np.log(th.mu).ravel(), np.log(th.alpha[live]), [math.log(th.omega)],
                               np.log(th.space[1])])

    v0, v1, v2 = vec(th0), vec(th1), vec(th2)
    r = v1 - v0
    v = v2 - v1 - r
    nv = float(np.sqrt(v @ v))
    if not np.isfinite(nv) or nv == 0.0:
        return None
    a = -float(np.sqrt(r @ r)) / nv
    a = max(min(a, -1.0), -amax)
    if a == -1.0:
        return None
    x = v0 - 2.0 * a * r + a * a * v
    prho = th2.persistence.copy()
    if P:
        prho = 1.0 / (1.0 + np.exp(-np.clip(x[:P], -30, 30)))
        x = x[P:]
    m = th0.mu.size
    mu = np.exp(np.clip(x[:m], -700, 700)).reshape(th0.mu.shape)
    alpha = th2.alpha.copy()
    alpha[live] = np.exp(np.clip(x[m:m + int(live.sum())], -50, 5))
    C = len(th0.space[1])
    omega = float(np.clip(math.exp(min(x[-C - 1], 50.0)), 1e-4, 1e3))
    sig2 = np.clip(np.exp(np.minimum(x[-C:], 50.0)), 1e-8, 1e8)
    return Theta(mu, alpha, omega, (th2.space[0].copy(), sig2), prho)


@dataclass
class EMData:
    """What stays fixed while EM runs: the fitted events (time order), their candidate pairs,
    marks and bins, and the objects EM updates in place (``Q``, ``marks``, ``temporal``,
    ``spatial``, ``kde``). ``latent``: positions of the latent events; ``children``: their
    pairs regrouped by parent (for the label sweep); ``presence[i, a]``: 1 where actor ``a``
    was event ``i``'s target (``ground_presence``); ``to_actors``: (processes x actors) 0/1."""

    pairs: object
    t: np.ndarray
    u: np.ndarray
    s2: np.ndarray
    labels: np.ndarray
    latent: np.ndarray
    children: tuple | None
    mcode: np.ndarray
    kinds: np.ndarray
    bins: np.ndarray
    presence: np.ndarray
    to_actors: np.ndarray
    Q: np.ndarray
    marks: object
    temporal: object
    spatial: object
    kde: object
    t_end: float
    window: float
    cross_excitation: bool
    persist: bool


class EM:
    """The EM iterations of one fit, from an initial state (see module doc)."""

    def __init__(self, data: EMData, state: EMState, verbose: bool = False):
        self.d, self.s = data, state
        n, K = data.Q.shape
        self.Lam = np.zeros((n, K))
        self.Phi = np.zeros((n, K))
        self.history: list[float] = []
        self.n_iter = 0
        self.converged = False
        self.verbose = verbose
        self._refresh_due = False
        self._bin_matrix = data.temporal.bin_matrix(data.bins)
        self._code_matrices = data.marks.code_matrices(data.mcode)

    # ---- one pass each --------------------------------------------------------------------

    def e_pass(self):
        """The E pass at the current state: ``(J, EStepResult)``."""
        d, s = self.d, self.s
        Ex = excitation(d.Q, s.alpha)
        r = kr.estep(d.pairs, d.s2, d.u, d.labels, d.Q, Ex, s.B, s.alpha, s.omega, d.window,
                     s.space, s.pers, Lam=self.Lam, Phi=self.Phi)
        J = objective(r.ll, d.Q, s.logf, d.latent, d.temporal, Ex, s.Ghat, d.marks)
        if d.persist:
            J += float(np.sum(np.log(s.persistence) + np.log1p(-s.persistence)))
        return J, r

    def m_step(self, r, refresh: bool) -> None:
        """Every M-step update, in order, from the E pass ``r``; the grounds only when
        ``refresh``."""
        d, s = self.d, self.s
        Q = d.Q
        if d.persist:  # Beta(2, 2) MAP of the persistence; fresh kinds alone inform f_k
            s.persistence = (r.copied + 1.0) / (r.copied + r.fresh + 2.0)
            d.marks.update(Q, d.mcode, kind_weights=np.maximum(Q - r.Cp, 0.0),
                           matrices=self._code_matrices)
            s.pers = kr.persistence(d.kinds, d.marks.kind_log_p(), s.persistence)
        else:
            d.marks.update(Q, d.mcode, matrices=self._code_matrices)
        s.logf = d.marks.loglik(d.mcode)
        d.temporal.update(r.Phi, d.bins, self._bin_matrix)
        if refresh:
            d.kde.set_group_weights(np.asarray(r.Phi, float) @ d.to_actors + d.presence)
            update_grounds(d.kde, r.Phi)
            s.ground = d.spatial.with_floor(d.kde.values)
        D = Q.T @ s.Ghat
        with np.errstate(divide="ignore", invalid="ignore"):
            new_alpha = np.where(D[:, None] > 0, r.N / D[:, None], 0.0)
        alpha = new_alpha if d.cross_excitation else np.diag(np.diag(new_alpha))
        s.alpha = alpha
        s.omega = update_omega(s.omega, r.Sw, r.Sdt, Q @ alpha.sum(1), d.t, d.t_end, d.window)
        if r.Sw > 0:  # spatial mixture: weights and variance-component EM step
            rho, sig2 = s.space
            live = r.Sc > 0
            sig2 = np.where(live, r.Sdd / (2.0 * np.where(live, r.Sc, 1.0)), sig2)
            s.space = (r.Sc / r.Sc.sum(), np.maximum(sig2, 1e-8))
        s.Ghat = compensator_weights(d.t, d.t_end, s.omega, d.window)
        s.B = d.temporal.rate(d.t) * s.ground
        if len(d.latent):  # labels, with the new parameters
            Ex = excitation(Q, s.alpha)
            kr.intensity(d.pairs, d.s2, d.u, d.labels, Ex, s.B, s.alpha, s.omega, d.window,
                         s.space, s.pers, Lam=self.Lam)
            kr.label_sweep(d.latent, d.children, d.pairs, d.s2, d.u, d.labels, Q, Ex, self.Lam,
                           s.alpha, s.omega, d.window, s.space, s.logf, s.Ghat, s.pers)

    def theta(self) -> Theta:
        s = self.s
        return Theta(self.d.temporal.mu, s.alpha, s.omega, s.space, s.persistence).copy()

    def set_theta(self, th: Theta) -> None:
        d, s = self.d, self.s
        d.temporal.mu, s.alpha, s.omega, s.space, s.persistence = (
            th.mu.copy(), th.alpha.copy(), th.omega, th.space, th.persistence.copy())
        s.Ghat = compensator_weights(d.t, d.t_end, s.omega, d.window)
        s.B = d.temporal.rate(d.t) * s.ground
        if d.persist:
            s.pers = kr.persistence(d.kinds, d.marks.kind_log_p(), s.persistence)

    # ---- the loop -------------------------------------------------------------------------

    #: After the first four M-steps the grounds are refreshed every this many. A refresh
    #: costs several plain steps, and SQUAREM extrapolates the map with the grounds fixed: a
    #: longer run between refreshes gives it a steadier map: on the UCDP extracts this reaches
    #: the objective of a refresh every 4th step within a few nats with about half the
    #: refreshes and 20-30 % less CPU.
    REFRESH_EVERY = 16

    def step(self, r) -> bool:
        """One M-step; the grounds are refreshed in the first four, every ``REFRESH_EVERY``-th
        and when a convergence test asks for it. Returns whether they were."""
        self.n_iter += 1
        refresh = (self.n_iter <= 4 or self.n_iter % self.REFRESH_EVERY == 0
                   or self._refresh_due)
        self._refresh_due = False
        self.m_step(r, refresh)
        return refresh

    def done(self, J_new, J_old, refreshed, tol: float) -> bool:
        """A plain EM step that gained under tol (relative) after a background update."""
        if J_new - J_old > tol * abs(J_old):
            return False
        if refreshed:
            return True
        self._refresh_due = True
        return False

    def log(self, J) -> None:
        self.history.append(J)
        if self.verbose:
            s = self.s
            print(f"iter {self.n_iter:4d}  J = {J:.10g}  alpha_diag = {np.diag(s.alpha).round(4)}"
                  f"  omega = {s.omega:.4g}  sigma = {np.sqrt(s.space[1]).round(3)}", flush=True)

    def run(self, max_iter: int, tol: float, accelerate: bool) -> "EM":
        """Iterate until converged or ``max_iter`` M-steps; SQUAREM between pairs of steps."""
        amax = 4.0
        J, r = self.e_pass()
        self.log(J)
        while self.n_iter < max_iter:
            th0 = self.theta()
            ref = self.step(r)
            th1 = self.theta()
            J1, r = self.e_pass()
            self.log(J1)
            if self.done(J1, self.history[-2], ref, tol):
                self.converged = True
                break
            if self.n_iter >= max_iter or not accelerate:
                continue
            # a second EM step, then an extrapolated state kept only if J does not drop
            ref = self.step(r)
            th2 = self.theta()
            ext = squarem(th0, th1, th2, amax)
            if ext is not None:
                self.set_theta(ext)
                Jp, r = self.e_pass()
                if np.isfinite(Jp) and Jp >= J1:
                    self.log(Jp)
                    amax = min(2.0 * amax, 1024.0)
                    continue
                amax = max(0.5 * amax, 1.0)
                self.set_theta(th2)
            J2, r = self.e_pass()
            self.log(J2)
            if self.done(J2, J1, ref, tol):
                self.converged = True
                break
        return self

    def final(self) -> tuple[EMState, "kr.EStepResult"]:
        """The final state, its spatial components ordered from narrow to wide, and its E pass
        with the branching weights of every pair."""
        d, s = self.d, self.s
        order = np.argsort(s.space[1])
        final = replace(s, space=(s.space[0][order], s.space[1][order]))
        Ex = d.Q @ final.alpha
        r = kr.estep(d.pairs, d.s2, d.u, d.labels, d.Q, Ex, final.B, final.alpha, final.omega,
                     d.window, final.space, final.pers, want_w=True)
        return final, r
