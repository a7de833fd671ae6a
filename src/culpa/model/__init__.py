"""The attribution model: a multi-actor spatio-temporal Hawkes process fitted by EM.

One module per job: ``hawkes`` (the estimator: parameters, ``fit`` as a loop over named steps,
predictions), ``frames`` (event and query frames to arrays), ``processes`` (actors and their
processes), ``em`` (the EM state, E pass, M-step, SQUAREM), ``explain`` (explanations, branching
probabilities, chains), ``io`` (save and load), ``fitted`` (the fitted check, the fitted events),
``timekernel`` (the truncated exponential G_W), ``kernels`` (numba E-step, label sweep and query
kernels), ``pairs`` (candidate parents), ``background`` (b_k(x), mu_k(t)), ``marks`` (f_k(m)),
``pooled`` (the default: the Hawkes model pooled with boosted trees, ``trees``), ``geo``
(projection), ``forecast`` (expected events at sites and cells), ``simulate``
(branching-process simulator for tests and benchmarks).
"""

from culpa.model.hawkes import HawkesAttributor, NotFittedError
from culpa.model.pooled import PooledAttributor

#: culpa's default attribution model: the Hawkes model pooled with cross-fitted boosted trees
#: (:mod:`culpa.model.pooled`). Every face fits, saves and loads this one.
DefaultAttributor = PooledAttributor


def default_attributor(**params) -> PooledAttributor:
    """A new (unfitted) default attribution model with these parameters."""
    return DefaultAttributor(**params)


__all__ = ["HawkesAttributor", "PooledAttributor", "DefaultAttributor", "default_attributor",
           "NotFittedError"]
