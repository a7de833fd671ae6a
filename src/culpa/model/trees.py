"""The tree member of the default attribution: boosted trees over place, time and marks,
cross-fitted, evaluated in NumPy.

What the trees see (fixed a priori, the same for every conflict): latitude, longitude, the
two 45-degree rotations of the place (front lines are rarely north-south), days since the
model's start, day of the year, day of the week, each event type seen in the fit (one column
each), each frequent target (at least ``MIN_TARGET`` labelled events, at most ``MAX_TARGETS``),
log(1 + fatalities) and the location precision (NaN where unknown: the trees route missing
values themselves). They classify the actors with at least ``min_events`` labelled events; the
rest share one class, ``other``, whose probability the pooled model splits among the small
actors as the Hawkes model does.

``TreeMember.fit`` fits scikit-learn's ``HistGradientBoostingClassifier`` (the settings of the
``gbm`` baseline) and exports it to plain node arrays (:class:`Forest`), walked by a compiled
kernel (a NumPy reference beside it), so a query (and a loaded model) never imports
scikit-learn (about 0.6 s cold).
The pooled model cross-fits it (:func:`culpa.model.pooled.cross_fit`).
"""

from __future__ import annotations

import numpy as np

from culpa import lazyimport
from culpa.model import lazynumba as nb
from culpa.model import onequery

pd = lazyimport.module("pandas")  # imported when first used: a single query needs none

#: A target is a feature of its own when it has at least this many labelled events ...
MIN_TARGET = 20
#: ... and is among the this many most frequent.
MAX_TARGETS = 12
#: Settings of the boosted trees: the ``gbm`` baseline's (evaluate/baselines.GBM_PARAMS) but
#: learning twice as fast, with the same patience in learning-rate units (0.1 x 10 rounds
#: = 0.05 x 20): they stop in about half the rounds, so the pool's four forests fit within
#: the EM's time on the second core (Syria: 20 s -> 10 s of trees; their out-of-fold
#: log-loss 0.1545 -> 0.1554).
GBM_PARAMS = dict(max_iter=500, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
                  l2_regularization=1.0, early_stopping=True, validation_fraction=0.15,
                  n_iter_no_change=10)
#: Boosting rounds when early stopping cannot hold out a share of every class (about where the
#: early-stopped trees stop on the shared splits).
FIXED_ITER = 75


def _texts(values, n):
    if values is None:
        return np.full(n, None, dtype=object)
    out = np.empty(n, dtype=object)
    for i, v in enumerate(values):
        out[i] = None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
    return out


def calendar(start) -> tuple[np.ndarray, np.ndarray]:
    """Day of the year (1-366) and day of the week (Monday 0) of datetime64 values, as floats
    (NaN where missing): pandas' ``day_of_year`` and ``day_of_week``, computed in NumPy (a
    served query is one date, and a DatetimeIndex per call cost more than the trees)."""
    day = np.asarray(start, dtype="datetime64[s]").astype("datetime64[D]")
    missing = np.isnat(day)
    d = day.astype(np.int64)
    year_start = day.astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    doy = (d - year_start + 1).astype(float)
    dow = ((d + 3) % 7).astype(float)  # 1970-01-01 was a Thursday
    doy[missing] = np.nan
    dow[missing] = np.nan
    return doy, dow


class TreeFeatures:
    """The feature columns of events and queries (see the module doc). ``types`` and
    ``targets`` are the categories of the fit."""

    def __init__(self, types: list[str], targets: list[str], t0: np.datetime64):
        self.types, self.targets, self.t0 = list(types), list(targets), np.datetime64(t0, "s")

    @classmethod
    def for_fit(cls, event_type, target, labelled, t0) -> "TreeFeatures":
        n = len(labelled)
        et, tg = _texts(event_type, n), _texts(target, n)
        types = sorted({v for v in et[labelled] if v})
        counts = pd.Series(tg[labelled], dtype=object).dropna().value_counts()
        counts = counts[counts >= MIN_TARGET]
        targets = sorted(counts.index[:MAX_TARGETS])
        return cls(types, targets, t0)

    @property
    def names(self) -> list[str]:
        return (["latitude", "longitude", "lat+lon", "lat-lon", "days", "day_of_year",
                 "day_of_week"] + [f"type={t}" for t in self.types]
                + [f"target={t}" for t in self.targets] + ["log_fatalities", "precision_km"])

    def matrix(self, start, lat, lon, event_type, target, fatalities, precision_km) -> np.ndarray:
        """(n x features) float matrix; ``start`` datetime64 (the date the event began)."""
        lat = np.asarray(lat, float)
        n = len(lat)
        lon = np.asarray(lon, float)
        start = np.asarray(start, dtype="datetime64[s]")
        days = (start - self.t0).astype(np.float64) / 86400.0
        day_of_year, day_of_week = calendar(start)
        et, tg = _texts(event_type, n), _texts(target, n)
        fat = np.asarray(fatalities if fatalities is not None else np.full(n, np.nan), float)
        prec = np.asarray(precision_km if precision_km is not None else np.full(n, np.nan), float)
        cols = [lat, lon, lat + lon, lat - lon, days, day_of_year, day_of_week]
        cols += [(et == t).astype(float) for t in self.types]
        cols += [(tg == t).astype(float) for t in self.targets]
        cols += [np.log1p(np.maximum(fat, 0)), prec]
        return np.column_stack(cols) if n else np.zeros((0, len(self.names)))

    def meta(self) -> dict:
        return {"types": self.types, "targets": self.targets, "t0": str(self.t0)}

    @classmethod
    def from_meta(cls, meta: dict) -> "TreeFeatures":
        return cls(meta["types"], meta["targets"], np.datetime64(meta["t0"], "s"))


class Forest:
    """Boosted trees as flat node arrays, walked by a compiled kernel.

    ``roots[t]`` is tree t's first node, ``out[t]`` the output column its leaf values add to
    (``n_outputs`` = forests x classes), ``baseline`` each column's starting score. A forest of
    a binary problem has one tree per round (its column holds the log-odds of class 1).
    """

    FIELDS = ("feature", "threshold", "left", "right", "leaf", "missing_left", "value")

    def __init__(self, feature, threshold, left, right, leaf, missing_left, value, roots, out,
                 baseline, depth: int):
        self.feature = np.asarray(feature, np.int32)
        self.threshold = np.asarray(threshold, np.float64)
        self.left = np.asarray(left, np.int32)
        self.right = np.asarray(right, np.int32)
        self.leaf = np.asarray(leaf, bool)
        self.missing_left = np.asarray(missing_left, bool)
        self.value = np.asarray(value, np.float64)
        self.roots = np.asarray(roots, np.int32)
        self.out = np.asarray(out, np.int32)
        self.baseline = np.asarray(baseline, np.float64)
        self.depth = int(depth)

    @classmethod
    def from_sklearn(cls, clfs: list, n_features: int) -> "Forest":
        """Export fitted ``HistGradientBoostingClassifier``s (numeric features only) whose
        outputs are stacked: classifier i's tree column c is output ``i * C + c``."""
        parts = {f: [] for f in cls.FIELDS}
        roots, out, base = [], [], []
        offset, depth, width = 0, 0, None
        for i, clf in enumerate(clfs):
            b = np.asarray(clf._baseline_prediction, float).ravel()
            width = len(b) if width is None else width
            if len(b) != width:
                raise ValueError("the classifiers disagree on their number of outputs")
            base.append(b)
            for trees in clf._predictors:
                for c, tree in enumerate(trees):
                    nd = tree.nodes
                    if nd["is_categorical"].any():
                        raise ValueError("categorical splits are not exported")
                    m = len(nd)
                    idx = np.arange(m)
                    leaf = nd["is_leaf"].astype(bool)
                    parts["feature"].append(np.where(leaf, 0, nd["feature_idx"]))
                    parts["threshold"].append(np.where(leaf, 0.0, nd["num_threshold"]))
                    parts["left"].append(np.where(leaf, idx, nd["left"]) + offset)
                    parts["right"].append(np.where(leaf, idx, nd["right"]) + offset)
                    parts["leaf"].append(leaf)
                    parts["missing_left"].append(nd["missing_go_to_left"].astype(bool))
                    parts["value"].append(np.where(leaf, nd["value"], 0.0))
                    roots.append(offset)
                    out.append(i * width + c)
                    depth = max(depth, int(nd["depth"].max()))
                    offset += m
        arrays = {f: (np.concatenate(v) if v else np.zeros(0)) for f, v in parts.items()}
        return cls(**arrays, roots=roots, out=out,
                   baseline=np.concatenate(base) if base else np.zeros(0), depth=depth)

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Each output's score (n x outputs): baseline + the sum of its trees' leaf values,
        each row walking each tree down to its leaf (compiled: :func:`_walk`; the NumPy walk
        :meth:`raw_reference` gives the same)."""
        X = np.ascontiguousarray(X, np.float64)
        res = np.tile(self.baseline, (len(X), 1))
        if len(self.roots) == 0 or len(X) == 0:
            return res
        if len(X) == 1:  # one row in NumPy (the same numbers): it need not load numba
            return res + self._walk_one(X[0])[None, :]
        acc = np.zeros_like(res)
        _walk(X, self.feature, self.threshold, self.left, self.right, self.leaf,
              self.missing_left, self.value, self.roots, self.out, acc)
        return res + acc

    def _walk_one(self, x: np.ndarray) -> np.ndarray:
        """:func:`_walk` of one row: every tree's leaf value, added to its output in tree
        order (``np.cumsum``, as the compiled loop adds them)."""
        node = np.array(self.roots, np.int64)
        for _ in range(self.depth + 1):
            inner = ~self.leaf[node]
            if not inner.any():
                break
            xv = x[self.feature[node]]
            go_left = np.where(np.isnan(xv), self.missing_left[node], xv <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        vals = self.value[node]
        acc = np.zeros(len(self.baseline))
        for o in onequery.distinct(self.out).tolist():
            acc[o] = np.cumsum(vals[self.out == o])[-1]
        return acc

    def raw_reference(self, X: np.ndarray, chunk: int = 256) -> np.ndarray:
        """:meth:`raw` in NumPy, all trees a level at a time (the readable reference)."""
        X = np.asarray(X, np.float64)
        n, T = len(X), len(self.roots)
        n_out = len(self.baseline)
        res = np.tile(self.baseline, (n, 1))
        if T == 0 or n == 0:
            return res
        rows_per = max(1, chunk * 2000 // max(T, 1))
        for lo in range(0, n, rows_per):
            Xc = X[lo:lo + rows_per]
            m = len(Xc)
            node = np.broadcast_to(self.roots, (m, T)).copy()
            rows = np.arange(m)[:, None]
            for _ in range(self.depth):
                xv = Xc[rows, self.feature[node]]
                go_left = np.where(np.isnan(xv), self.missing_left[node],
                                   xv <= self.threshold[node])
                node = np.where(go_left, self.left[node], self.right[node])
            vals = self.value[node]  # (m x T); leaves point to themselves
            acc = np.zeros((m, n_out))
            for o in range(n_out):
                sel = self.out == o
                acc[:, o] = vals[:, sel].sum(1)
            res[lo:lo + m] += acc
        return res

    def to_arrays(self, prefix: str) -> dict:
        d = {f"{prefix}{f}": getattr(self, f) for f in self.FIELDS}
        d.update({f"{prefix}roots": self.roots, f"{prefix}out": self.out,
                  f"{prefix}baseline": self.baseline,
                  f"{prefix}depth": np.array([self.depth], np.int64)})
        return d

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> "Forest":
        kw = {f: arrays[f"{prefix}{f}"] for f in cls.FIELDS}
        return cls(**kw, roots=arrays[f"{prefix}roots"], out=arrays[f"{prefix}out"],
                   baseline=arrays[f"{prefix}baseline"],
                   depth=int(np.asarray(arrays[f"{prefix}depth"]).ravel()[0]))


@nb.njit(cache=True, nogil=True)
def _walk(X, feature, threshold, left, right, leaf, missing_left, value, roots, out, acc):
    """acc[i, out[t]] += the leaf value row i reaches in tree t (NaN goes where the split sends
    missing values), trees in order."""
    for i in range(X.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while not leaf[node]:
                x = X[i, feature[node]]
                if np.isnan(x):
                    go_left = missing_left[node]
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            acc[i, out[t]] += value[node]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TreeMember:
    """Boosted trees over ``n_classes`` classes, predicting in NumPy (scikit-learn style:
    ``fit(X, y, n_classes)`` returns self, learned state ends in ``_``). scikit-learn is
    imported by ``fit`` only; the fitted forest is :class:`Forest` arrays."""

    def __init__(self, random_state: int = 0, floor: float = 1e-6):
        self.random_state = random_state
        self.floor = floor

    def get_params(self, deep: bool = True) -> dict:
        return {"random_state": self.random_state, "floor": self.floor}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int) -> "TreeMember":
        X, y = np.asarray(X, np.float64), np.asarray(y, int)
        self.n_classes_ = int(n_classes)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:  # one class only: nothing to split
            self.forest_ = None
            return self
        from sklearn.ensemble import HistGradientBoostingClassifier

        from culpa.openmp import one_thread

        params = dict(GBM_PARAMS)
        _, counts = np.unique(y, return_counts=True)
        held = int(np.ceil(params["validation_fraction"] * len(y)))
        if counts.min() < 2 or held < len(counts) or len(y) - held < len(counts):
            # early stopping holds out a stratified share, which needs two events of each
            # class (a small fold or a short case window can have an actor with one): fit a
            # fixed budget without it
            params.update(early_stopping=False, max_iter=FIXED_ITER)
        clf = HistGradientBoostingClassifier(**params, random_state=self.random_state)
        with one_thread():
            clf.fit(X, y)
        self.classes_ = np.asarray(clf.classes_, int)
        self.forest_ = Forest.from_sklearn([clf], X.shape[1])
        self.n_iter_ = int(clf.n_iter_)
        self._clf = clf  # for the fit's own out-of-fold predictions only (not saved)
        return self

    def predict_proba_fit(self, X: np.ndarray) -> np.ndarray:
        """As :meth:`predict_proba` (equal to rounding), with scikit-learn's compiled
        predictor while the fit's classifier is at hand: the out-of-fold step of a fit."""
        clf = getattr(self, "_clf", None)
        if clf is None:
            return self.predict_proba(X)
        out = np.full((len(X), self.n_classes_), self.floor)
        from culpa.openmp import one_thread

        with one_thread():
            out[:, self.classes_] = clf.predict_proba(np.asarray(X, np.float64))
        return out / out.sum(1, keepdims=True)

    def drop_fit_state(self) -> None:
        """Forget the scikit-learn classifier (what is kept predicts in NumPy)."""
        self.__dict__.pop("_clf", None)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "classes_"):
            from culpa.model.fitted import NotFittedError

            raise NotFittedError("this TreeMember is not fitted yet: call fit()")
        X = np.asarray(X, np.float64)
        out = np.full((len(X), self.n_classes_), self.floor)
        if self.forest_ is None:
            out[:, self.classes_] = 1.0
        else:
            z = self.forest_.raw(X)
            if z.shape[1] == 1:  # binary: log-odds of the second class
                z = np.column_stack([np.zeros(len(z)), z[:, 0]])
            out[:, self.classes_] = _softmax(z)
        return out / out.sum(1, keepdims=True)

    def to_arrays(self, prefix: str) -> dict:
        d = {f"{prefix}n_classes": np.array([self.n_classes_], np.int64),
             f"{prefix}classes": np.asarray(self.classes_, np.int64),
             f"{prefix}fitted": np.array([self.forest_ is not None])}
        if self.forest_ is not None:
            d.update(self.forest_.to_arrays(prefix))
        return d

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> "TreeMember":
        m = cls()
        m.n_classes_ = int(arrays[f"{prefix}n_classes"][0])
        m.classes_ = np.asarray(arrays[f"{prefix}classes"], int)
        m.forest_ = (Forest.from_arrays(arrays, prefix) if bool(arrays[f"{prefix}fitted"][0])
                     else None)
        return m
