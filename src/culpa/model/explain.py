"""Why the model says what it says: one attribution split into its terms (:meth:`explain`), the
branching probabilities (:attr:`parent_proba_`) and the escalation chains they make
(:meth:`chain`). A mixin of :class:`~culpa.model.hawkes.HawkesAttributor`, reading its fitted
state."""

from __future__ import annotations

import math

import numpy as np

from culpa import lazyimport
from culpa.errors import InputError
from culpa.model import kernels as kr
from culpa.model import onequery
from culpa.model.fitted import check_fitted
from culpa.model.frames import QueryArrays, day_text, instant_text
from culpa.model.pairs import GridIndex, reverse_index

pd = lazyimport.module("pandas")  # imported when first used: a single query needs none


class ExplanationMixin:
    """explain, parent_proba_ and chain of a fitted HawkesAttributor."""

    def explain(self, time, lat: float, lon: float, precision_km: float | None = None,
                event_type: str | None = None, fatalities: float | None = None,
                top: int = 10, date_precision_days: float = 1.0,
                target: str | None = None) -> dict:
        """Attribution of one (time, place, marks), split into its terms.

        ``precision_km``: how exactly the place is known (None: exactly, and the precision says
        nothing about the actor); ``target``: who was attacked or fought, if known.

        Returns ``{"time", "latitude", "longitude", "actors": [...]}`` with, per actor (most
        probable first): ``probability``, ``intensity`` (lambda_k, events/day/km^2),
        ``mark_likelihood``, ``background`` (mu_k b_k), ``background_share`` and ``top_events``:
        the earlier events that raise lambda_k most (``id``, ``date``, ``distance_km``,
        ``days_before``, ``actor`` (label or most probable actor), ``actor_probability``,
        ``contribution`` and ``share`` = contribution / lambda_k). ``top_events`` at the top
        level ranks all earlier events by their share of the total sum_k lambda_k f_k.
        """
        check_fitted(self)
        q = QueryArrays.one(self.t0_, time, lat, lon, precision_km=precision_km,
                            date_precision_days=date_precision_days, event_type=event_type,
                            target=target, fatalities=fatalities)
        t, la, lo, prec, uq, codes = self._query_arrays(q)
        x, y = self.projection_.forward(la, lo)
        bg, trig, logf = self._intensities(t, uq, x, y, prec, codes)
        lam = (bg + trig)[0]
        u = float(uq[0])
        idx, gh, d2 = onequery.history(self._grid_index(), self._x, self._y, self._s2, self._u,
                                       float(t[0]), float(x[0]), float(y[0]),
                                       float(prec[0] ** 2), u, self.omega_, self.window_days,
                                       self._space, self.radius_km)
        contrib = self._Ex[idx] * gh[:, None]  # (m, K)
        qp = self._query_persistence(codes)
        if qp is not None:  # the factor of a trigger whose kind this event repeats (or not)
            qm, qA, qB = qp
            known = (qm[0] >= 0) & (self._mk[idx] >= 0)
            contrib *= np.where(known[:, None],
                                qA[0] + qB[0] * (self._mk[idx] == qm[0])[:, None], 1.0)
        fk = np.exp(logf[0])
        total = float(lam @ fk)
        # per actor: the sums over its processes (one process per actor with process_by="actor")
        score = self.by_actor(lam * fk)  # lambda_k f_k
        lam_a = self.by_actor(lam)
        f_a = np.divide(score, lam_a, out=np.zeros_like(score), where=lam_a > 0)
        contrib_a = self.by_actor(contrib * fk)  # each earlier event's part of lambda_k f_k
        post = score / score.sum() if score.sum() > 0 else np.full(len(score), 1 / len(score))

        def best(v):  # positions of the `top` largest positive values, largest first
            cand = np.flatnonzero(v > 0)
            if len(cand) > top:
                cand = cand[np.argpartition(-v[cand], top - 1)[:top]]
            return cand[np.argsort(-v[cand], kind="stable")]

        def ev(i, c, share):
            j = int(idx[i])
            la_ = int(self._lab[j])
            k, pk = self._event_actor(j)
            return {"id": str(self._ids[j]),
                    "date": day_text(self._start[j]),
                    "distance_km": float(math.sqrt(d2[i])),
                    "days_before": float(t[0] - self._t[j]),
                    "actor": self.actors_[k],
                    "actor_probability": pk,
                    "labelled": la_ >= 0,
                    "contribution": float(c), "share": float(share)}

        bg_a, bgf_a = self.by_actor(bg[0]), self.by_actor(bg[0] * fk)
        any_earlier = (contrib_a > 0).any(0)  # actors some earlier event raises at all
        actors = []
        for k in np.argsort(-post, kind="stable"):
            sk, fa = float(score[k]), float(f_a[k])
            actors.append({
                "actor": self.actors_[k], "probability": float(post[k]),
                "intensity": float(lam_a[k]), "mark_likelihood": fa,
                "background": float(bg_a[k]),
                "background_share": float(bgf_a[k] / sk) if sk > 0 else 1.0,
                "top_events": [ev(i, contrib_a[i, k] / fa if fa > 0 else 0.0,
                                  contrib_a[i, k] / sk if sk > 0 else 0.0)
                               for i in (best(contrib_a[:, k]) if any_earlier[k] else ())]})
        overall = contrib @ fk
        return {"time": instant_text(time), "latitude": float(lat), "longitude": float(lon),
                "marks": {"event_type": event_type, "target": target,
                          "fatalities": None if fatalities is None else float(fatalities),
                          "precision_km": precision_km},
                "total_intensity": total,
                "background_share": float(bg[0] @ fk / total) if total > 0 else 1.0,
                "actors": actors,
                "top_events": [ev(i, overall[i], overall[i] / total) for i in best(overall)]}

    # -----------------------------------------------------------------------------------------
    # branching structure

    def _ensure_branching(self) -> None:
        """The candidate pairs and their branching weights (rebuilt after a load)."""
        if getattr(self, "_pairs", None) is None or getattr(self, "_w", None) is None:
            self._pairs = self._build_pairs(self._grid_index())
            B = self._temporal.rate(self._t) * self._spatial.with_floor(self._kde_loo)
            r = kr.estep(self._pairs, self._s2, self._u, self._lab, self._Q, self._Ex, B,
                         self.alpha_, self.omega_, float(self.window_days), self._space,
                         self._pers, want_w=True)
            self._w = r.w

    @property
    def parent_proba_(self) -> "sparse.csr_matrix":
        """Branching matrix (N x N, rows = child, columns = parent, input order): entry (i, j) is
        P(event j triggered event i) over the candidate pairs; ``background_proba_`` holds
        P(background) per event, and each row plus it sums to one."""
        from scipy import sparse  # not on the query path

        check_fitted(self)
        self._ensure_branching()
        if getattr(self, "_parent_csr", None) is None:
            p = self._pairs
            n = self.n_events_
            m = sparse.csr_matrix((self._w, self.order_[p.parent].astype(np.int32), p.indptr),
                                  shape=(n, n))
            self._parent_csr = m[self._inv]
        return self._parent_csr

    def _children_index(self):
        if getattr(self, "_rev_all", None) is None:
            self._ensure_branching()
            self._rev_all = reverse_index(self._pairs, self.n_events_)
        return self._rev_all

    def chain(self, event_id: str, depth: int = 3, min_proba: float = 0.05,
              max_branch: int = 5) -> dict:
        """Escalation chain around an event from the branching probabilities.

        Returns ``{"id", "date", "actor", "actor_probability", "background_proba", "parents",
        "children"}``: ``parents`` are its likely triggers (probability >= ``min_proba``, at most
        ``max_branch``), each with its own ``parents`` down to ``depth`` levels; ``children`` the
        events it likely triggered, each with its own ``children``.
        """
        check_fitted(self)
        self._ensure_branching()
        pos = self._id_pos().get(str(event_id))
        if pos is None:
            raise InputError(f"no fitted event with id {event_id!r}", field="event_id")
        p = self._pairs
        rptr, rpair, rchild = self._children_index()

        def node(j):
            la_ = int(self._lab[j])
            k, pk = self._event_actor(j)
            return {"id": str(self._ids[j]), "date": day_text(self._start[j]),
                    "actor": self.actors_[k], "actor_probability": pk,
                    "labelled": la_ >= 0, "background_proba": float(self._bg[j])}

        def linked(i, key):  # (pair positions, the events at their other end)
            if key == "parents":
                pp = np.arange(p.indptr[i], p.indptr[i + 1])
                return pp, p.parent[pp]
            sl = slice(rptr[i], rptr[i + 1])
            return rpair[sl], rchild[sl]

        def walk(i, d, key):  # the likeliest parents (or children), recursively
            if d == 0:
                return []
            pp, other = linked(i, key)
            w = self._w[pp]
            out = []
            for o in np.argsort(-w)[:max_branch]:
                if w[o] < min_proba:
                    break
                j = int(other[o])
                nd = node(j)
                nd.update({"probability": float(w[o]), "days": float(p.dt[pp[o]]),
                           "distance_km": float(math.sqrt(p.d2[pp[o]])),
                           key: walk(j, d - 1, key)})
                out.append(nd)
            return out

        root = node(pos)
        root.update(parents=walk(pos, depth, "parents"), children=walk(pos, depth, "children"))
        return root

    def _event_actor(self, j: int) -> tuple[int, float]:
        """A fitted event's actor and its probability (see :meth:`event_actors`)."""
        k, p = self.event_actors(self._Q[j:j + 1], self._lab[j:j + 1])
        return int(k[0]), float(p[0])

    def _id_pos(self) -> dict:
        if getattr(self, "_id_lut", None) is None:
            self._id_lut = {s: i for i, s in enumerate(self._ids)}
        return self._id_lut

    def _grid_index(self) -> GridIndex:
        if getattr(self, "_grid", None) is None:
            self._grid = GridIndex.build(self._t, self._x, self._y, float(self.radius_km))
        return self._grid
