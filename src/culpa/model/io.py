"""Saving and loading a fitted model: one compressed ``.npz`` of plain arrays plus a JSON
metadata blob (stored as bytes), read back with ``allow_pickle=False``. The fitted events needed
for predictions are included; background rasters that repeat (a process's quiet epochs) are
stored once. A mixin of :class:`~culpa.model.hawkes.HawkesAttributor`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from culpa.errors import InputError
from culpa.model import kernels as kr
from culpa.model.background import SpatialBackground, TemporalBackground
from culpa.model.fitted import check_fitted
from culpa.model.geo import LocalProjection
from culpa.model.marks import MARK_CHANNELS, MarkModel
from culpa.model.processes import ProcessMap

FORMAT_VERSION = 6
#: formats this culpa still reads (6: format 5 and, for the default model, its pool (the
#: estimator named in the metadata, culpa.model.pooled); 5: the grounds as the kernels and
#: weights that render them; 4: one array per distinct raster; 3: the rasters stacked in one
#: array, read at once). Files without an estimator name load as the Hawkes model alone.
READABLE_VERSIONS = (3, 4, 5, 6)


class SaveLoadMixin:
    """save and load of a HawkesAttributor."""

    def save(self, path) -> Path:
        """Write the fitted model to one ``.npz`` (arrays + JSON metadata, no pickle)."""
        check_fitted(self)
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(
                ".npz")
        meta = {
            "format": "culpa.HawkesAttributor", "version": FORMAT_VERSION,
            "params": self.get_params(), "actors": self.actors_,
            "processes": self.processes_,
            "process_actor": [int(v) for v in self.process_actor_],
            "process_targets": list(self.process_map_.targets),
            "projection": self.projection_.to_dict(), "t0": str(self.t0_),
            "t_end": self.t_end_, "omega": self.omega_,
            "spatial_weights": [float(v) for v in self._space[0]],
            "spatial_variances": [float(v) for v in self._space[1]],
            "n_iter": self.n_iter_, "converged": self.converged_,
            "log_likelihood": self.log_likelihood_, "n_pairs": int(self.n_pairs_),
            "marks": self._marks.meta(), "spatial": self._spatial.meta(),
            "temporal": self._temporal.meta(),
        }
        meta.update(self._extra_meta())  # a subclass's own part (the pool: culpa.model.pooled)
        arrays = {
            "meta_json": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            "ids": np.asarray(self._ids, dtype=str), "start": self._start.astype(np.int64),
            "t": self._t, "u": self._u, "x": self._x, "y": self._y, "prec": self._prec,
            "lab": self._lab, "mcode": self._mcode, "Q": self._Q,
            "mark_persistence": self.mark_persistence_,
            "bg": self._bg, "kde_loo": self._kde_loo, "order": self.order_, "alpha": self.alpha_,
            **self._spatial.to_arrays(), "mu": self._temporal.mu,
            "mu_edges": self._temporal.edges, **self._marks.to_arrays(),
            **self._extra_arrays(),
        }
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "HawkesAttributor":
        """Read a model written by :meth:`save` (``np.load(..., allow_pickle=False)``)."""
        path = Path(path)
        try:
            # the file is read into memory once; its rasters are decompressed when first used
            z = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise InputError(f"cannot read model: {e}", file=str(path)) from None
        if not hasattr(z, "files"):
            raise InputError("not a culpa model file (not an .npz archive)", file=str(path))
        if "meta_json" not in z.files:
            raise InputError("not a culpa model file (no metadata)", file=str(path))
        meta = json.loads(bytes(z["meta_json"]).decode("utf-8"))
        if meta.get("format") != "culpa.HawkesAttributor":
            raise InputError("not a culpa HawkesAttributor file", file=str(path))
        if meta.get("version", 0) > FORMAT_VERSION:
            raise InputError(f"model format {meta['version']} is newer than this culpa "
                             f"({FORMAT_VERSION})", file=str(path))
        if meta.get("version", 0) not in READABLE_VERSIONS:
            raise InputError(f"model format {meta.get('version')} was written by an older "
                             f"culpa: fit it again (culpa fit)", file=str(path))
        arr = {k: z[k] for k in z.files if not k.startswith("raster_")
               or k == "raster_index"}
        cls = _estimator_class(cls, meta, path)
        known = cls().get_params()
        params = {k: v for k, v in meta["params"].items() if k in known}
        params["mark_channels"] = tuple(params.get("mark_channels", MARK_CHANNELS))
        m = cls(**params)
        m._set_processes(ProcessMap(m.process_by, list(meta["actors"]), list(meta["processes"]),
                                    np.asarray(meta["process_actor"], np.int32),
                                    list(meta["process_targets"])))
        m.projection_ = LocalProjection.from_dict(meta["projection"])
        m.t0_ = np.datetime64(meta["t0"], "s")
        m.t_end_ = float(meta["t_end"])
        m.omega_ = float(meta["omega"])
        m._space = (np.asarray(meta["spatial_weights"], float),
                    np.asarray(meta["spatial_variances"], float))
        m._set_space_attrs()
        m.n_iter_ = int(meta["n_iter"])
        m.converged_ = bool(meta["converged"])
        m.log_likelihood_ = list(meta["log_likelihood"])
        m.n_pairs_ = int(meta["n_pairs"])
        m.alpha_ = arr["alpha"]
        m._ids = arr["ids"].astype(object)
        m._start = arr["start"].astype("datetime64[s]")
        m._t, m._u, m._x, m._y = arr["t"], arr["u"], arr["x"], arr["y"]
        m._prec = arr["prec"]
        m._s2 = m._prec ** 2
        m._lab, m._mcode = arr["lab"], arr["mcode"]
        m.mark_persistence_ = arr["mark_persistence"]
        m._Q, m._bg, m.order_ = arr["Q"], arr["bg"], arr["order"]
        m._kde_loo = arr["kde_loo"]
        m._Ex = m._Q @ m.alpha_
        m.n_events_ = len(m._t)
        m._marks = MarkModel.from_saved(meta["marks"], arr)
        m._mk = m._marks.kind_codes(m._mcode)
        m._pers = (kr.persistence(m._mk, m._marks.kind_log_p(), m.mark_persistence_)
                   if m.mark_persistence_.any() else None)
        if "ground_index" in z.files:  # format 5: rendered from the kernels when first read
            m._spatial = SpatialBackground.from_arrays(meta["spatial"], arr, m._x, m._y)
        else:  # rasters, read lazily (one array each) or at once (format 3: stacked)
            m._spatial = SpatialBackground.from_arrays(
                meta["spatial"], z if "raster_index" in z.files and "rasters" not in z.files
                else arr, m._x, m._y)
        m._temporal = TemporalBackground.from_saved(meta["temporal"], arr["mu_edges"], arr["mu"])
        m._pairs = m._w = m._grid = None
        m._load_extra(meta, z)
        m._set_public()
        return m

    def _extra_meta(self) -> dict:
        """What a subclass adds to the saved metadata (nothing here)."""
        return {}

    def _extra_arrays(self) -> dict:
        """What a subclass adds to the saved arrays (nothing here)."""
        return {}

    def _load_extra(self, meta: dict, arrays) -> None:
        """Read back what :meth:`_extra_meta` and :meth:`_extra_arrays` saved."""


def _estimator_class(cls, meta: dict, path):
    """The class a file is loaded as: the one that saved it (``estimator``; none: the Hawkes
    model alone, formats 3 and 4), whichever class's ``load`` is called."""
    from culpa.model.hawkes import HawkesAttributor

    name = meta.get("estimator")
    if name is None:
        return HawkesAttributor
    if name == "PooledAttributor":
        from culpa.model.pooled import PooledAttributor

        return PooledAttributor
    raise InputError(f"unknown estimator {name!r} in the model file", file=str(path))
