"""A module imported when one of its attributes is first read, for the heavy libraries
(pandas) that most of culpa needs and a single query does not: ``pd = lazyimport.module(
"pandas")`` at the top of a module keeps ``pd.DataFrame`` and friends working in its functions
while ``culpa attribute`` with a saved model, which never reads them, does not pay the import
(about 0.5 s of CPU)."""

from __future__ import annotations

import importlib
import types


class LazyModule(types.ModuleType):
    """Stands for module ``name``; the first attribute read imports it."""

    def __getattr__(self, attr: str):
        real = importlib.import_module(self.__name__)
        return getattr(real, attr)

    def __repr__(self) -> str:
        return f"<lazily imported module {self.__name__!r}>"


def module(name: str) -> types.ModuleType:
    """The module ``name`` if it is imported already, else a stand-in that imports it when
    first read."""
    import sys

    return sys.modules.get(name) or LazyModule(name)
