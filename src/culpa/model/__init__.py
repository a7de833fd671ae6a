"""The attribution model: a multi-actor spatio-temporal Hawkes process fitted by EM.

One module per thing: ``geo`` (projection), ``pairs`` (candidate parents), ``kernels`` (triggering
kernels, E-step sums), ``background`` (b_k(x), mu_k(t)), ``marks`` (f_k(m)), ``hawkes`` (the
estimator), ``simulate`` (branching-process simulator for tests and benchmarks).
"""

from culpa.model.hawkes import HawkesAttributor, NotFittedError

__all__ = ["HawkesAttributor", "NotFittedError"]
