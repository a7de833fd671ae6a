"""numba, imported when a compiled function is first called rather than when culpa is imported.

Importing numba and readying its compiler costs a fresh process about 1 s of CPU, even when
every kernel is in numba's cache; a question that calls no kernel (``culpa attribute`` with a
saved model: :mod:`culpa.model.onequery`) should not pay it. The modules with numba kernels
import this module as ``nb`` and decorate with ``@nb.njit(...)`` as with numba itself. Each
function stays a stand-in until one of them is called: then numba is imported, every stand-in
made so far is compiled-on-call by numba (``numba.njit`` with the same options, so numba's
cache is used as before), and each culpa module's references to the stand-ins and to this
module are replaced by the numba dispatchers and by numba itself, so that compiled code sees
only numba objects. Any other attribute (``nb.prange``, ``nb.get_num_threads``) is numba's.
"""

from __future__ import annotations

import sys
import threading

_pending: list["LazyDispatcher"] = []
_lock = threading.RLock()  # one thread makes the dispatchers; the others wait for them


class LazyDispatcher:
    """A function to be compiled by ``numba.njit(**options)`` once numba is loaded."""

    def __init__(self, py_func, options: dict):
        self.py_func = py_func
        self.options = options
        self.real = None
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__module__ = py_func.__module__
        self.__doc__ = py_func.__doc__
        with _lock:
            _pending.append(self)

    def dispatcher(self):
        if self.real is None:
            load()  # waits for a thread already making them
        return self.real

    def __call__(self, *args, **kwargs):
        return self.dispatcher()(*args, **kwargs)

    def __getattr__(self, name):  # the dispatcher's attributes (signatures, ...)
        if name in ("real", "py_func", "options"):
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)


def njit(*args, **options):
    """``numba.njit`` for later: ``@njit`` or ``@njit(cache=True, ...)``."""
    if args and callable(args[0]) and not options:
        return LazyDispatcher(args[0], {})
    if args:
        raise TypeError("lazynumba.njit takes keyword options only")
    return lambda fn: LazyDispatcher(fn, options)


def load():
    """Import numba, make a dispatcher of every stand-in and put numba's objects in their place
    in every culpa module."""
    import numba

    with _lock:
        me = sys.modules[__name__]
        for lazy in _pending:
            lazy.real = numba.njit(**lazy.options)(lazy.py_func)
        _pending.clear()
        for name, mod in list(sys.modules.items()):
            if mod is None or mod is me or not name.startswith("culpa"):
                continue
            space = vars(mod)
            for key, value in list(space.items()):
                if value is me:
                    space[key] = numba
                elif isinstance(value, LazyDispatcher) and value.real is not None:
                    space[key] = value.real
    return numba


def __getattr__(name: str):
    return getattr(load(), name)
