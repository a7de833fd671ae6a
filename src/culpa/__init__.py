"""culpa: evidence-based attribution of disputed and unclaimed attacks in armed conflicts.

``from culpa import Workspace`` gives the library API (:mod:`culpa.api`); importing culpa
itself loads nothing heavy.
"""

import os as _os

# Two OpenMP runtimes share the two cores of a fit: numba's (the EM's parallel passes) and
# scikit-learn's (the pool's boosted trees). With libgomp's default wait policy the idle threads
# of each spin between parallel regions and take the cores the other one's threads need: on a
# busy machine the trees' cross-fit after an EM took about 5x the CPU time it takes with idle
# threads that sleep (the answers are the same). Set before either
# runtime is loaded (each reads it once); a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.1.0"
__all__ = ["Workspace", "ModelNotReady", "__version__"]


def __getattr__(name: str):
    if name in ("Workspace", "ModelNotReady"):
        from culpa import api

        return getattr(api, name)
    raise AttributeError(f"module 'culpa' has no attribute {name!r}")
