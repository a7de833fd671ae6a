"""The pool's trees fitted in a worker process beside the EM (culpa.model.treejob): the same
model as in one process, and a fallback to one process whatever goes wrong."""

from __future__ import annotations

import numpy as np
import pytest

from culpa.model import treejob
from culpa.model.pooled import PooledAttributor
from culpa.model.simulate import simulate
from culpa.model.trees import TreeMember


@pytest.fixture(scope="module")
def events():
    return simulate(n_actors=3, days=400.0, seed=3).events


def _problem(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, y


def _same(a, b) -> None:
    (fa, oa), (fb, ob) = a, b
    np.testing.assert_array_equal(oa, ob)
    assert len(fa) == len(fb)
    for ma, mb in zip(fa, fb):
        np.testing.assert_array_equal(ma.forest_.value, mb.forest_.value)
        np.testing.assert_array_equal(ma.forest_.threshold, mb.forest_.threshold)


def test_the_worker_fits_the_same_trees_as_this_process(monkeypatch):
    X, y = _problem()
    monkeypatch.setenv("CULPA_TREE_WORKER", "1")
    monkeypatch.setattr(treejob, "_enabled", lambda: True)
    job = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(job, treejob._Remote)
    remote = job.result()
    assert job.seconds is not None and job.seconds > 0
    local = treejob.cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    _same(remote, local)
    # the worker stays for the next job
    job2 = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(job2, treejob._Remote)
    _same(job2.result(), local)


def test_a_dead_worker_or_a_busy_one_falls_back_to_this_process(monkeypatch):
    X, y = _problem(seed=1)
    monkeypatch.setattr(treejob, "_enabled", lambda: True)
    local = treejob.cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    job = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(job, treejob._Remote)
    busy = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(busy, treejob._Local)  # one job at a time: the second runs here
    job.worker.kill()  # dies before it answers
    _same(job.result(), local)
    _same(busy.result(), local)
    # the next job gets a new worker
    again = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(again, treejob._Remote)
    _same(again.result(), local)


def test_a_cancelled_job_frees_the_worker(monkeypatch):
    X, y = _problem(seed=2)
    monkeypatch.setattr(treejob, "_enabled", lambda: True)
    job = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    job.cancel()
    nxt = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(nxt, treejob._Remote)
    _same(nxt.result(), treejob.cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0))


def test_switched_off_or_one_core_fits_in_this_process(monkeypatch):
    X, y = _problem()
    monkeypatch.setenv("CULPA_TREE_WORKER", "0")
    assert not treejob._enabled()
    assert isinstance(treejob.start_cross_fit(TreeMember(), X, y, 3, 3, 0), treejob._Local)
    monkeypatch.setenv("CULPA_TREE_WORKER", "1")
    monkeypatch.setattr(treejob.os, "sched_getaffinity", lambda pid: {0})
    assert not treejob._enabled()


def test_the_pooled_model_is_the_same_with_and_without_the_worker(events, monkeypatch):
    """With the worker the EM's compiled passes run on one thread (restored after): the
    same numbers as on all threads without it."""
    import numba

    threads = numba.get_num_threads()
    monkeypatch.setattr(treejob, "_enabled", lambda: True)
    a = PooledAttributor(max_iter=5).fit(events)
    assert numba.get_num_threads() == threads
    monkeypatch.setattr(treejob, "_enabled", lambda: False)
    b = PooledAttributor(max_iter=5).fit(events)
    np.testing.assert_array_equal(a.pool_weights_, b.pool_weights_)
    # the forward calibration's forest is fitted beside the EM too
    assert "weights" in a.pool_calibration_["forward"]
    np.testing.assert_array_equal(a.pool_forward_weights_, b.pool_forward_weights_)
    assert a.pool_calibration_ == b.pool_calibration_
    np.testing.assert_array_equal(a.label_proba_, b.label_proba_)
    assert a.pool_oof_ == b.pool_oof_
    assert a.fit_seconds_["pool_trees_fit"] > 0


def test_a_failed_em_cancels_the_trees(events, monkeypatch):
    monkeypatch.setattr(treejob, "_enabled", lambda: True)
    cancelled = []
    real = treejob._Remote.cancel
    monkeypatch.setattr(treejob._Remote, "cancel", lambda self: (cancelled.append(1),
                                                                 real(self)))

    def boom(*a, **k):
        raise RuntimeError("EM failed")

    m = PooledAttributor(max_iter=5)
    monkeypatch.setattr(type(m), "_initial_em", boom)
    import numba

    threads = numba.get_num_threads()
    with pytest.raises(RuntimeError, match="EM failed"):
        m.fit(events)
    assert cancelled == [1]
    assert numba.get_num_threads() == threads
    assert not hasattr(m, "_tree_job")


def test_a_forked_child_starts_its_own_worker(monkeypatch):
    """A process forked after a fit (a server's workers) never writes to its parent's worker."""
    X, y = _problem(seed=4)
    monkeypatch.setattr(treejob, "_enabled", lambda: True)
    job = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    job.result()
    parent_worker = treejob._worker
    monkeypatch.setattr(treejob.os, "getpid", lambda: -12345)  # as a forked child sees it
    job2 = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(job2, treejob._Remote) and job2.worker is not parent_worker
    _same(job2.result(), treejob.cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0))
    job2.worker.kill()


def test_the_worker_outlives_ctrl_c_quietly_and_never_imports_from_the_working_directory(
        tmp_path, monkeypatch):
    """Ctrl-C reaches the whole process group: the worker ignores it (the parent decides), and
    a ``copy.py`` where ``culpa fit`` runs is not what the worker imports."""
    import os
    import signal
    import time

    (tmp_path / "copy.py").write_text("raise SystemExit('imported from the working directory')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(treejob, "_enabled", lambda: True)
    monkeypatch.setattr(treejob, "_worker", None)
    X, y = _problem(200)
    here = treejob.cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    first = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert isinstance(first, treejob._Remote)
    _same(first.result(), here)  # the worker is up: it imported culpa, not ./copy.py
    worker = first.worker
    assert worker.alive()
    os.kill(worker.proc.pid, signal.SIGINT)  # as Ctrl-C in the terminal would
    time.sleep(0.2)
    assert worker.alive()
    second = treejob.start_cross_fit(TreeMember(random_state=0), X, y, 3, 3, 0)
    assert second.worker is worker
    _same(second.result(), here)
    worker.stop()
