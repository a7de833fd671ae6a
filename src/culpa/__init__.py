"""culpa: evidence-based attribution of disputed and unclaimed attacks in armed conflicts.

``from culpa import Workspace`` gives the library API (:mod:`culpa.api`); importing culpa
itself loads nothing heavy.
"""

__version__ = "0.1.0"
__all__ = ["Workspace", "ModelNotReady", "__version__"]


def __getattr__(name: str):
    if name in ("Workspace", "ModelNotReady"):
        from culpa import api

        return getattr(api, name)
    raise AttributeError(f"module 'culpa' has no attribute {name!r}")
