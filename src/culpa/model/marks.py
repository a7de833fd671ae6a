"""Mark likelihood f_k(m) per actor: event type and fatality band.

``f_k(m) = P(type | k) * P(band | k)`` with the two categorical distributions estimated from
counts weighted by the label probabilities ``Q[i, k]`` and smoothed by a symmetric Dirichlet
pseudo-count ``a`` (the MAP estimate under a Dirichlet(a + 1) prior, whose log density is part of
the EM objective so the update keeps it monotone):

    P(c | k) = (sum_i Q[i, k] [m_i = c] + a) / (sum_i Q[i, k] [m_i known] + C a)

A missing mark (no event type, unknown fatalities) or an event type not seen in the fit
contributes nothing (f = 1 for every actor).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Fatality bands: 0, 1-4, 5-24, 25+.
FATALITY_BANDS = ("0", "1-4", "5-24", "25+")
_BAND_EDGES = np.array([0.5, 4.5, 24.5])


def fatality_band(fatalities) -> np.ndarray:
    """Band code 0..3 per event, -1 where unknown (NaN or negative)."""
    f = pd.to_numeric(pd.Series(fatalities), errors="coerce").to_numpy(dtype=float)
    code = np.searchsorted(_BAND_EDGES, f, side="right").astype(np.int32)
    code[~(f >= 0)] = -1
    return code


def type_codes(event_type, categories: list[str]) -> np.ndarray:
    """Code per event into ``categories``; -1 for missing or unseen types."""
    s = pd.Series(event_type, dtype=object)
    lut = {c: i for i, c in enumerate(categories)}
    return np.array([lut.get(v, -1) if isinstance(v, str) else -1 for v in s], dtype=np.int32)


class MarkModel:
    """Per-actor categorical likelihoods of event type and fatality band."""

    def __init__(self, categories: list[str], n_actors: int, pseudo_count: float = 1.0):
        self.categories = list(categories)
        self.n_actors = n_actors
        self.a = float(pseudo_count)
        C = max(len(self.categories), 1)
        self.log_type = np.full((n_actors, C), -np.log(C))
        self.log_band = np.full((n_actors, len(FATALITY_BANDS)), -np.log(len(FATALITY_BANDS)))

    @classmethod
    def for_events(cls, event_type, n_actors: int, pseudo_count: float = 1.0) -> "MarkModel":
        s = pd.Series(event_type, dtype=object)
        cats = sorted({v for v in s if isinstance(v, str)})
        return cls(cats, n_actors, pseudo_count)

    def update(self, Q: np.ndarray, tcode: np.ndarray, bcode: np.ndarray) -> None:
        """MAP update from label probabilities ``Q`` (N x K)."""
        self.log_type = self._fit(Q, tcode, self.log_type.shape[1])
        self.log_band = self._fit(Q, bcode, self.log_band.shape[1])

    def _fit(self, Q, code, C):
        K = Q.shape[1]
        counts = np.zeros((K, C))
        ok = code >= 0
        for k in range(K):
            counts[k] = np.bincount(code[ok], weights=Q[ok, k], minlength=C)[:C]
        p = (counts + self.a) / (counts.sum(1, keepdims=True) + C * self.a)
        return np.log(p)

    def loglik(self, tcode: np.ndarray, bcode: np.ndarray) -> np.ndarray:
        """log f_k(m_i), (N x K)."""
        out = np.zeros((len(tcode), self.n_actors))
        ok = tcode >= 0
        out[ok] += self.log_type[:, tcode[ok]].T
        ok = bcode >= 0
        out[ok] += self.log_band[:, bcode[ok]].T
        return out

    def log_prior(self) -> float:
        return self.a * (float(self.log_type.sum()) + float(self.log_band.sum()))

    def to_arrays(self) -> dict:
        return {"marks_log_type": self.log_type, "marks_log_band": self.log_band}

    def meta(self) -> dict:
        return {"categories": self.categories, "pseudo_count": self.a}

    @classmethod
    def from_saved(cls, meta: dict, arrays) -> "MarkModel":
        lt = np.asarray(arrays["marks_log_type"])
        m = cls(meta["categories"], lt.shape[0], meta["pseudo_count"])
        m.log_type = lt
        m.log_band = np.asarray(arrays["marks_log_band"])
        return m
