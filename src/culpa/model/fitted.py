"""A fitted model's state as other parts of culpa read it: the check that a model is fitted, and
its events in time order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from culpa.errors import AnalysisError


class NotFittedError(AnalysisError, ValueError, AttributeError):
    """The estimator is used before fit() (or load()). Like scikit-learn's NotFittedError it is
    a ValueError and an AttributeError (it is not a subclass of sklearn's class: importing
    scikit-learn would cost a cold ``culpa attribute`` about 0.6 s)."""


def check_fitted(model) -> None:
    """Raise :class:`NotFittedError` unless ``model`` has been fitted (or loaded)."""
    if not model.__sklearn_is_fitted__():
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet: call fit() or load()")


@dataclass(frozen=True)
class FittedEvents:
    """A fitted model's events in time order: ``t`` days since ``t0_`` (midpoint of the date
    range), ``u`` its half-width, ``x``/``y`` km in the model's projection, ``s2`` squared
    location precision, ``excitation[j, p]`` = sum_l Q[j, l] alpha[l, p] (what event j excites in
    process p), ``label_proba`` Q (N x processes), ``labels`` the known process index or -1."""

    ids: np.ndarray
    start: np.ndarray
    t: np.ndarray
    u: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s2: np.ndarray
    excitation: np.ndarray
    label_proba: np.ndarray
    labels: np.ndarray
