"""Actors and their processes: the public map between the two.

An *actor* is a party (``"IS"``). A *process* is one of an actor's sub-processes, by kind of
event (``process_by``): one per actor (``"actor"``), per actor and event type (``"type"``,
``"IS|one-sided"``) or per actor, event type and target (``"kind"``,
``"IS|state-based|Government of Syria"``; targets with under ``PROCESS_MIN_TARGET`` events in the
fit pooled as ``"*"``). Each process has its own ground, rate, triggering and marks; an
attribution sums an actor's processes back into the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from culpa import lazyimport
from culpa.model.marks import clean_texts

pd = lazyimport.module("pandas")  # imported when first used: a single query needs none

#: Ways to split an actor into processes.
PROCESS_BY = ("actor", "type", "kind")
#: With ``process_by="kind"``, targets with fewer events in the fit are pooled as "*".
PROCESS_MIN_TARGET = 100


def common_targets(target) -> list[str]:
    """The targets frequent enough to get processes of their own (``process_by="kind"``)."""
    vc = pd.Series(clean_texts(target, len(target)), dtype=object).dropna().value_counts()
    return sorted(vc.index[vc >= PROCESS_MIN_TARGET])


def process_names(process_by: str, targets, actor, event_type, target=None) -> np.ndarray:
    """Each event's process name, ``actor``, ``actor|type`` or ``actor|type|target`` (None
    without an actor); targets not in ``targets`` are ``*``."""
    n = len(actor)
    act = [None if v is None else str(v) for v in actor]
    if process_by == "actor":
        return np.array(act, dtype=object)
    et = [e or "?" for e in clean_texts(event_type, n)]
    if process_by == "type":
        return np.array([None if v is None else f"{v}|{e}" for v, e in zip(act, et)],
                        dtype=object)
    common = set(targets)
    tg = clean_texts(target, n)
    return np.array([None if v is None else f"{v}|{e}|{g if g in common else '*'}"
                     for v, e, g in zip(act, et, tg)], dtype=object)


@dataclass(frozen=True)
class ProcessMap:
    """The actors and processes of a fit: ``process_actor[p]`` is the index into ``actors`` of
    process ``p``'s actor; ``targets`` those with processes of their own."""

    process_by: str
    actors: list[str]
    processes: list[str]
    process_actor: np.ndarray
    targets: list[str]

    @classmethod
    def of_events(cls, process_by: str, actor, event_type, target, labelled) -> "ProcessMap":
        """The map of a fit: the labelled events' actors, and their processes."""
        targets = common_targets(target) if process_by == "kind" else []
        name = process_names(process_by, targets, actor, event_type, target)
        actors = sorted({str(v) for v in actor[labelled]})
        processes = sorted(set(name[labelled]))
        owner = dict(zip(name[labelled], actor[labelled]))
        index = {a: i for i, a in enumerate(actors)}
        process_actor = np.array([index[str(owner[p])] for p in processes], np.int32)
        return cls(process_by, actors, processes, process_actor, targets)

    def names(self, actor, event_type, target=None) -> np.ndarray:
        """Each event's process name (see :func:`process_names`)."""
        return process_names(self.process_by, self.targets, actor, event_type, target)

    def index(self, names) -> np.ndarray:
        """Process index of each name, -1 where the map has no such process (or no name)."""
        lut = {p: i for i, p in enumerate(self.processes)}
        return np.array([lut.get(v, -1) for v in names], np.int32)

    @cached_property
    def to_actors(self) -> np.ndarray:
        """(processes x actors) 0/1: which actor each process belongs to."""
        A = np.zeros((len(self.processes), len(self.actors)))
        A[np.arange(len(self.processes)), self.process_actor] = 1.0
        return A

    def by_actor(self, per_process) -> np.ndarray:
        """Sum the last axis of a per-process array (probabilities, intensities, counts) into
        actors (columns = ``actors``)."""
        return np.asarray(per_process, float) @ self.to_actors

    def event_actors(self, Q, labels) -> tuple[np.ndarray, np.ndarray]:
        """Each event's actor (index into ``actors``: its label's, else the most probable) and
        that actor's probability, from process probabilities ``Q`` (n x processes) and process
        labels (-1 where latent)."""
        qa = self.by_actor(Q)
        lab = np.asarray(labels)
        k = np.where(lab >= 0, self.process_actor[np.maximum(lab, 0)], qa.argmax(1))
        return k, qa[np.arange(len(k)), k]
