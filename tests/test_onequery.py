"""One query without numba (culpa.model.onequery, Forest's one-row walk) gives the compiled
kernels' numbers bit for bit, and ``culpa attribute`` with a saved model loads no numba."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from culpa.api import Workspace
from culpa.model import HawkesAttributor, kernels as kr, onequery
from culpa.model.background import _lookup
from culpa.model.trees import Forest, TreeMember, _walk
from helpers import UCDP_IRAQ


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("onequery") / "iraq.duckdb")
    ws.ingest([UCDP_IRAQ])
    return ws


@pytest.fixture(scope="module")
def model(store):
    events = store.events_frame(since="2017-01-01")
    return HawkesAttributor(max_iter=3, mark_persistence=True).fit(events)


def _queries(m, n=60, seed=0):
    """Times and places near the fitted events (and a few far away), with precisions, date
    half-widths and mark kinds."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, m.n_events_, n)
    t = m._t[pick] + rng.uniform(-3, 30, n)
    x = m._x[pick] + rng.normal(0, 5, n)
    y = m._y[pick] + rng.normal(0, 5, n)
    x[:3] += 5000.0  # outside everything
    s2 = rng.choice([0.0, 1.0, 625.0], n)
    u = rng.choice([0.0, 0.0, 0.5, 3.0], n)
    kind = m._mk[rng.integers(0, m.n_events_, n)]
    kind[::4] = -1
    return t, x, y, s2, u, kind


def test_one_query_history_and_intensity_equal_the_compiled_kernels(model):
    m = model
    grid = m._grid_index()
    t, x, y, s2, u, kind = _queries(m)
    pers = kr.persistence(kind, m._marks.kind_log_p(), m.mark_persistence_)
    seen = 0
    for i in range(len(t)):
        args = (m.omega_, m.window_days, m._space, m.radius_km)
        want = kr.query_contributions(grid, m._x, m._y, m._s2, m._u, t[i], x[i], y[i], s2[i],
                                      u[i], *args)
        got = onequery.history(grid, m._x, m._y, m._s2, m._u, float(t[i]), float(x[i]),
                               float(y[i]), float(s2[i]), float(u[i]), *args)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        seen += len(got[0])
        one = tuple(p[i:i + 1] for p in pers)
        q = (t[i:i + 1], x[i:i + 1], y[i:i + 1], s2[i:i + 1], u[i:i + 1])
        want = kr.query_intensity(grid, m._x, m._y, m._s2, m._u, m._Ex, *q, *args, m._mk, one)
        got = onequery.triggered(grid, m._x, m._y, m._s2, m._u, m._Ex, *q, *args, m._mk, one)
        np.testing.assert_array_equal(got, want)
    assert seen > 100  # the queries do read earlier events


def test_numpy_lookup_equals_the_compiled_one(model):
    sb = model._spatial
    R = sb.stored_level(0, 0, 0)
    rng = np.random.default_rng(1)
    x0, x1, y0, y1 = sb.extent
    xs = rng.uniform(x0 - 20, x1 + 20, 500)
    ys = rng.uniform(y0 - 20, y1 + 20, 500)
    want = np.zeros((500, 1))
    _lookup(R, sb.x0, sb.y0, sb.cell, xs, ys, want, 0)
    np.testing.assert_array_equal(onequery.lookup(R, sb.x0, sb.y0, sb.cell, xs, ys), want[:, 0])
    assert (want[:, 0] == 0).any() and (want[:, 0] > 0).any()
    for a in (np.round(xs / 50), np.zeros(0), np.array([3, 1, 3, 2], np.int32)):
        np.testing.assert_array_equal(onequery.distinct(a), np.unique(a))


def test_one_row_tree_walk_equals_the_compiled_walk():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) > 0).astype(int)
    y[::7] = 2
    forest: Forest = TreeMember().fit(X, y, n_classes=3).forest_
    for row in X[:40]:
        acc = np.zeros((1, len(forest.baseline)))
        _walk(row[None, :], forest.feature, forest.threshold, forest.left, forest.right,
              forest.leaf, forest.missing_left, forest.value, forest.roots, forest.out, acc)
        np.testing.assert_array_equal(forest.raw(row[None, :]), forest.baseline + acc)


def test_attribute_with_a_saved_model_loads_no_numba_pandas_or_scipy(store, tmp_path):
    """``culpa attribute --model M --json`` as a user types it: the same document in a fresh
    process, twice (the second reads the rasters the first rendered into the raster cache),
    and the second imports neither numba, pandas nor scipy."""
    out = tmp_path / "model.npz"
    store.fit(since="2018-01-01", out=out, max_iter=3)
    args = ["attribute", "--db", str(store.db), "--model", str(out), "--lat", "36.34", "--lon",
            "43.13", "--time", "2018-03-01", "--precision-km", "25", "--event-type",
            "one-sided", "--target", "Civilians", "--json"]
    doc = store.attribute(36.34, 43.13, "2018-03-01", model_path=out, precision_km=25,
                          event_type="one-sided", target="Civilians")
    code = ("import json, runpy, sys\n"
            f"sys.argv = ['culpa', *{args!r}]\n"
            "try:\n    runpy.run_module('culpa', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print(json.dumps([m for m in ('numba', 'pandas', 'scipy') if m in sys.modules]),"
            " file=sys.stderr)\n")
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == json.loads(json.dumps(doc))
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
