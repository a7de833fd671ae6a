"""The attribution model: a multi-actor spatio-temporal Hawkes process fitted by EM.

One module per job: ``hawkes`` (the estimator: parameters, ``fit`` as a loop over named steps,
predictions), ``frames`` (event and query frames to arrays), ``processes`` (actors and their
processes), ``em`` (the EM state, E pass, M-step, SQUAREM), ``explain`` (explanations, branching
probabilities, chains), ``io`` (save and load), ``fitted`` (the fitted check, the fitted events),
``timekernel`` (the truncated exponential G_W), ``kernels`` (numba E-step, label sweep and query
kernels), ``pairs`` (candidate parents), ``background`` (b_k(x), mu_k(t)), ``marks`` (f_k(m)),
``geo`` (projection), ``forecast`` (expected events at sites and cells), ``simulate``
(branching-process simulator for tests and benchmarks).
"""

from culpa.model.hawkes import HawkesAttributor, NotFittedError

__all__ = ["HawkesAttributor", "NotFittedError"]
