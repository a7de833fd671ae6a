"""scikit-learn's OpenMP runtime with idle threads that sleep.

Two OpenMP runtimes share the cores of a fit: numba's (the EM's and the queries' parallel
passes) and scikit-learn's own libgomp (the pool's and the baselines' boosted trees). Each reads
``OMP_WAIT_POLICY`` once, when it is loaded. The trees run many short parallel regions with
Python work between them: with libgomp's default policy the idle threads spin through those
gaps, and on a busy 2-core machine the cross-fit took about 5x the CPU time it takes with idle
threads that sleep (the answers are the same). numba's passes are few and long-running, and
sleeping threads make each wake-up wait for the scheduler there (the 100k fit ran 1.5x slower):
so only scikit-learn's runtime is loaded with the passive policy. A policy the user set is kept.
"""

from __future__ import annotations

import os
import sys


def import_sklearn() -> None:
    """Import scikit-learn (which loads its OpenMP runtime) with ``OMP_WAIT_POLICY=passive``
    unless it is loaded already or the user chose a policy; the environment is restored."""
    if "sklearn" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        import sklearn  # noqa: F401
    finally:
        del os.environ["OMP_WAIT_POLICY"]
