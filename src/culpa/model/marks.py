"""Mark likelihood f_k(m) per process (an actor's events of one kind): what kind of event, against whom, how deadly, how well located.

``f_k(m) = prod_c P(m_c | k)`` over the mark channels, each a categorical distribution estimated
from counts weighted by the label probabilities ``Q[i, k]`` and smoothed by a symmetric
Dirichlet pseudo-count ``a`` (the MAP estimate under a Dirichlet(a + 1) prior, whose log density
is part of the EM objective so the update keeps it monotone):

    P(c | k) = (sum_i Q[i, k] [m_i = c] + a) / (sum_i Q[i, k] [m_i known] + C a)

Channels (``MARK_CHANNELS``):

- ``kind``: the event type *and its target* as one category, ``"state-based|Government of
  Syria"``, ``"one-sided|Civilians"``: who an actor fights is among the strongest signs of who it
  is (IS fought the SDF, the Syrian insurgents fought the government), and type and target are
  too dependent (one-sided violence is against civilians) to be multiplied as if independent.
  Pairs seen fewer than ``min_count`` times in the fit, and events whose target is not known,
  fall into ``"<type>|*"``. A query with a type but no target is scored by the type alone (the
  sum over that type's categories); a type never seen in the fit says nothing.
- ``fatalities``: band 0, 1-4, 5-24, 25+.
- ``precision``: how exactly the source could place it (<= 1 km, <= 25 km, <= 50 km, wider):
  reporting differs by actor (remote desert fighting is located to a district at best), so the
  precision of a record is itself evidence. Off by default for queries typed in by hand
  (``culpa attribute`` without ``--precision-km``), where it is not an observation.

A missing mark (no event type, unknown fatalities) contributes nothing (f = 1 for every actor).

Structural zeros: no actor fights itself, so a kind whose target is the actor's own name has
probability zero for that actor's processes (:meth:`MarkModel.forbid_self_targets`; the
Dirichlet pseudo-counts go to the other kinds only). Without it the uniform pseudo-count gave
the SDF a share of the IS attacks on the SDF: Syria backtest log-loss 0.2312 / 0.2234 / 0.2383
(seeds 0 / 1 / 2) before, 0.2297 / 0.2232 / 0.2371 with it.
"""

from __future__ import annotations

import numpy as np

from culpa import lazyimport

pd = lazyimport.module("pandas")  # imported when first used: a single query needs none

MARK_CHANNELS = ("kind", "fatalities", "precision")
#: Fatality bands: 0, 1-4, 5-24, 25+.
FATALITY_BANDS = ("0", "1-4", "5-24", "25+")
_BAND_EDGES = np.array([0.5, 4.5, 24.5])
#: Location precision classes (km): exact place, near it, a district, a province or wider.
PRECISION_CLASSES = ("<=1 km", "<=25 km", "<=50 km", ">50 km")
_PRECISION_EDGES = np.array([1.0, 25.0, 50.0])
OTHER_TARGET = "*"
#: log P of a kind that cannot happen (finite, so that 0 x log P stays 0 in the sums).
LOG_ZERO = -700.0


def _floats(values) -> np.ndarray:
    """Numbers as floats, NaN where not a number (a numeric array as it is: a served query is
    one value, and a pandas Series per call cost more than the arithmetic)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(float)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def fatality_band(fatalities) -> np.ndarray:
    """Band code 0..3 per event, -1 where unknown (NaN or negative)."""
    f = _floats(fatalities)
    code = np.searchsorted(_BAND_EDGES, f, side="right").astype(np.int32)
    code[~(f >= 0)] = -1
    return code


def precision_class(precision_km) -> np.ndarray:
    """Class code 0..3 per event, -1 where unknown."""
    p = _floats(precision_km)
    code = np.searchsorted(_PRECISION_EDGES, p, side="left").astype(np.int32)
    code[~(p >= 0)] = -1
    return code


def clean_texts(values, n: int) -> np.ndarray:
    """Stripped strings, None for missing or blank values (all None when ``values`` is None)."""
    if values is None:
        return np.full(n, None, dtype=object)
    s = values if isinstance(values, np.ndarray) and values.dtype == object else \
        pd.Series(values, dtype=object)
    return np.array([v.strip() if isinstance(v, str) and v.strip() else None for v in s],
                    dtype=object)


def kind_labels(event_type, target) -> np.ndarray:
    """``"type|target"`` per event (``"type|*"`` without a target, None without a type)."""
    et = clean_texts(event_type, len(event_type))
    tg = clean_texts(target, len(et))
    return np.array([None if e is None else f"{e}|{t if t is not None else OTHER_TARGET}"
                     for e, t in zip(et, tg)], dtype=object)


class MarkModel:
    """Per-process categorical likelihoods of the mark channels (see module doc)."""

    def __init__(self, kinds: list[str], n_processes: int, pseudo_count: float = 1.0,
                 channels=MARK_CHANNELS):
        self.kinds = list(kinds)
        self.n_processes = n_processes
        self.a = float(pseudo_count)
        self.channels = tuple(channels)
        self.types = sorted({k.split("|", 1)[0] for k in self.kinds})
        t_index = {t: i for i, t in enumerate(self.types)}
        self._kind_type = np.array([t_index[k.split("|", 1)[0]] for k in self.kinds], np.int32)
        sizes = {"kind": max(len(self.kinds), 1), "fatalities": len(FATALITY_BANDS),
                 "precision": len(PRECISION_CLASSES)}
        self.log_p = [np.full((n_processes, sizes[c]), -np.log(sizes[c])) for c in self.channels]
        self.forbidden = None  # (n_processes x kinds) bool: kinds a process cannot have

    def forbid_self_targets(self, actor_names) -> None:
        """Each process ``k`` of actor ``actor_names[k]`` never has a kind whose target
        is that name (exact text): nobody attacks or fights itself."""
        targets = [k.split("|", 1)[1] for k in self.kinds]
        self.forbidden = np.array([[t == a for t in targets] for a in actor_names], bool)
        if "kind" in self.channels:
            c = self.channels.index("kind")
            self.log_p[c] = self._renormalise(np.exp(self.log_p[c]))

    @classmethod
    def for_events(cls, event_type, target, n_processes: int, pseudo_count: float = 1.0,
                   channels=MARK_CHANNELS, min_count: int = 5) -> "MarkModel":
        """The categories of a fit: each type|target pair seen ``min_count`` times, and
        ``type|*`` for every type (rare or unknown targets)."""
        labels = pd.Series(kind_labels(event_type, target), dtype=object).dropna()
        counts = labels.value_counts()
        common = {k for k, c in counts.items() if c >= min_count}
        types = {k.split("|", 1)[0] for k in labels}
        kinds = sorted(common | {f"{t}|{OTHER_TARGET}" for t in types})
        return cls(kinds, n_processes, pseudo_count, channels)

    def encode(self, event_type, target, fatalities, precision_km,
               fitting: bool = False) -> np.ndarray:
        """Codes (N x channels) from four arrays of length N (None: all unknown): a category
        index; -1 unknown; for ``kind``, ``-2 - t`` means "type t, target not given" (scored by
        the type alone) — except for the events of a fit (``fitting``), where a missing target
        is the category ``type|*``, so that data without targets still learns its types."""
        n = max(len(v) for v in (event_type, target, fatalities, precision_km) if v is not None)
        if fatalities is None:
            fatalities = np.full(n, np.nan)
        if precision_km is None:
            precision_km = np.full(n, np.nan)
        out = np.full((n, len(self.channels)), -1, np.int32)
        for c, name in enumerate(self.channels):
            if name == "fatalities":
                out[:, c] = fatality_band(fatalities)
            elif name == "precision":
                out[:, c] = precision_class(precision_km)
            else:
                out[:, c] = self._kind_codes(event_type, target, n, fitting)
        return out

    def _kind_codes(self, event_type, target, n: int, fitting: bool) -> np.ndarray:
        lut, t_index = self._lookups()
        et = clean_texts(event_type, n)
        tg = clean_texts(target, n)
        code = np.full(n, -1, np.int32)
        for i, (e, t) in enumerate(zip(et, tg)):
            if e is None or e not in t_index:
                continue
            if t is None and not fitting:
                code[i] = -2 - t_index[e]
            else:
                code[i] = lut.get(f"{e}|{t if t is not None else OTHER_TARGET}",
                                  lut[f"{e}|{OTHER_TARGET}"])
        return code

    def _lookups(self) -> tuple[dict, dict]:
        """kind -> index and type -> index, built once per list of kinds."""
        key = (tuple(self.kinds), tuple(self.types))
        cached = getattr(self, "_lookup_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, {k: i for i, k in enumerate(self.kinds)},
                      {t: i for i, t in enumerate(self.types)})
            self._lookup_cache = cached
        return cached[1], cached[2]

    def update(self, Q: np.ndarray, codes: np.ndarray, kind_weights=None,
               matrices=None) -> None:
        """MAP update from label probabilities ``Q`` (N x K). ``kind_weights`` (N x K) replaces
        ``Q`` for the kind channel: the share of each event whose kind was drawn afresh rather
        than copied from its trigger (mark persistence, see :mod:`culpa.model.hawkes`).
        ``matrices``: :meth:`code_matrices` of ``codes`` (made here when not given)."""
        if matrices is None:
            matrices = self.code_matrices(codes)
        self.log_p = [self._fit(kind_weights if (ch == "kind" and kind_weights is not None)
                                else Q, M, lp.shape[1], ch == "kind")
                      for ch, lp, M in zip(self.channels, self.log_p, matrices)]

    def code_matrices(self, codes: np.ndarray) -> list:
        """Per channel, the (categories x N) 0/1 sparse matrix of the events' codes (the
        valid ones), whose product with ``Q`` counts the categories per process."""
        from scipy import sparse  # fitting only: not on the query path

        out = []
        for c, lp in enumerate(self.log_p):
            code, C = codes[:, c], lp.shape[1]
            ok = np.flatnonzero((code >= 0) & (code < C))
            out.append(sparse.csr_matrix((np.ones(len(ok)), (code[ok], ok)),
                                         shape=(C, len(code))))
        return out

    def kind_log_p(self):
        """log P(kind | actor), (K x kinds), or None without a kind channel."""
        return self.log_p[self.channels.index("kind")] if "kind" in self.channels else None

    def kind_codes(self, codes: np.ndarray) -> np.ndarray:
        """The kind channel's codes with "type only" and unknown both as -1."""
        if "kind" not in self.channels:
            return np.full(len(codes), -1, np.int32)
        k = codes[:, self.channels.index("kind")]
        return np.where(k >= 0, k, -1).astype(np.int32)

    def _fit(self, Q, onehot, C, kind: bool = False):
        # counts[k, c] = sum_i Q[i, k] [code_i = c], as one sparse product (C x N by N x K)
        counts = np.asarray((onehot @ Q).T)
        if kind and self.forbidden is not None:
            return self._renormalise(counts + self.a)
        p = (counts + self.a) / (counts.sum(1, keepdims=True) + C * self.a)
        return np.log(p)

    def _renormalise(self, w):
        """log of ``w`` normalised per actor over the kinds it can have (LOG_ZERO elsewhere)."""
        w = np.where(self.forbidden, 0.0, w)
        with np.errstate(divide="ignore"):
            return np.maximum(np.log(w / w.sum(1, keepdims=True)), LOG_ZERO)

    def loglik(self, codes: np.ndarray) -> np.ndarray:
        """log f_k(m_i), (N x K)."""
        out = np.zeros((len(codes), self.n_processes))
        for c, lp in enumerate(self.log_p):
            code = codes[:, c]
            ok = code >= 0
            rows = np.ascontiguousarray(lp.T)  # (categories x K): gather whole rows
            if ok.all():
                out += rows[code]
            else:
                out[ok] += rows[code[ok]]
            marg = code <= -2
            if marg.any():  # a type without its target: P(type | k)
                p = np.exp(lp)
                by_type = np.stack([p[:, self._kind_type == t].sum(1)
                                    for t in range(len(self.types))], 1)
                out[marg] += np.log(by_type[:, -2 - code[marg]]).T
        return out

    def log_prior(self) -> float:
        total = 0.0
        for ch, lp in zip(self.channels, self.log_p):
            allowed = ~self.forbidden if (ch == "kind" and self.forbidden is not None) else True
            total += float(np.sum(lp, where=allowed))
        return self.a * total

    def table(self, actor: int) -> dict:
        """P(category | actor) per channel, for explanations."""
        names = {"kind": self.kinds, "fatalities": list(FATALITY_BANDS),
                 "precision": list(PRECISION_CLASSES)}
        return {ch: dict(zip(names[ch], np.exp(lp[actor]).round(6).tolist()))
                for ch, lp in zip(self.channels, self.log_p)}

    def to_arrays(self) -> dict:
        return {f"marks_{ch}": lp for ch, lp in zip(self.channels, self.log_p)}

    def meta(self) -> dict:
        return {"kinds": self.kinds, "channels": list(self.channels), "pseudo_count": self.a}

    @classmethod
    def from_saved(cls, meta: dict, arrays) -> "MarkModel":
        channels = tuple(meta["channels"])
        first = np.asarray(arrays[f"marks_{channels[0]}"])
        m = cls(meta["kinds"], first.shape[0], meta["pseudo_count"], channels)
        m.log_p = [np.asarray(arrays[f"marks_{ch}"]) for ch in channels]
        return m
