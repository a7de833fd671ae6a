"""One OpenMP thread for scikit-learn's small boosted-tree fits.

scikit-learn's histogram gradient boosting parallelises each boosting round over features with
OpenMP. On the few thousand events of a conflict a round is so short that a second thread does
not pay for its wake-ups: on this 2-core machine the pool's cross-fit of the bundled Iraq events
took the same wall time on two threads as on one with libgomp's spinning idle threads (twice
the CPU), and seven times as long with sleeping ones (``OMP_WAIT_POLICY=passive``). The pool's
trees, the attribution baseline and the forecast baseline (whose refits run two at a time in
worker processes) therefore fit on one thread; numba's runtime (the EM's
long parallel passes) keeps both cores. Figures: benchmarks/results/speed.json.
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def one_thread():
    """Within the block, every loaded OpenMP runtime runs one thread (restored after)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield
