"""Thread limits for culpa's compute: one OpenMP thread for scikit-learn's small boosted-tree
fits, one BLAS thread beside numba's parallel passes.

scikit-learn's histogram gradient boosting parallelises each boosting round over features with
OpenMP. On the few thousand events of a conflict a round is so short that a second thread does
not pay for its wake-ups: on this 2-core machine the pool's cross-fit of the bundled Iraq events
took the same wall time on two threads as on one with libgomp's spinning idle threads (twice
the CPU), and seven times as long with sleeping ones (``OMP_WAIT_POLICY=passive``). The pool's
trees, the attribution baseline and the forecast baseline (whose refits run two at a time in
worker processes) therefore fit on one thread (:func:`one_thread`, BLAS included).

NumPy's BLAS (OpenBLAS) keeps its threads spinning for a while after each product, and the
EM calls a product (``Q @ alpha``, n x K by K x K) between its compiled passes: the spinning
threads took the cores from numba's threads, so the Syria E pass ran as long on two threads
as on one. Its products are small: a fit runs them on one BLAS thread
(:func:`one_blas_thread`), and its numba passes get the cores. Figures:
benchmarks/results/speed.json.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager


@contextmanager
def one_thread():
    """Within the block, every loaded OpenMP runtime and BLAS library runs one thread
    (restored after)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@contextmanager
def one_blas_thread():
    """Within the block, every loaded BLAS library runs one thread (restored after)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def blas_single_threaded(method):
    """Decorator: ``method`` runs within :func:`one_blas_thread`."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return method(*args, **kwargs)
    return wrapper
