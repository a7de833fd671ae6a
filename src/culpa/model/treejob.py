"""The pool's tree cross-fit in a second process, side by side with the EM.

The trees of :class:`~culpa.model.pooled.PooledAttributor` see only the events' places, times,
marks and labels, never the Hawkes fit, so they can be fitted while the EM runs. In one process
they cannot: each boosting round is mostly Python (the GIL), and threadpoolctl's one-thread
limit (:mod:`culpa.openmp`) is process-wide, so it would also take numba's second thread from
the EM. The EM keeps both cores busy only part of the time (its M-step is one thread), so a
second process fits the trees in the cycles the EM leaves idle.

The worker is a plain ``python -c`` subprocess (not ``multiprocessing``,
whose spawned children import the parent's ``__main__`` script again: a user's unguarded script
would run twice). It is started at the first fit that needs it, its imports (NumPy,
scikit-learn: about a second) overlap the EM too, and it is kept for later fits of the same
process; it reads one pickled job at a time from its stdin and writes back the result. The
trees are the same as in one process (one OpenMP thread, the same seed): the result does not
depend on where they were fitted (tests/test_treejob.py). Anything that goes wrong (no second
core, a worker that cannot start or dies, a member that cannot be pickled, a worker busy with
another thread's fit) falls back to fitting in the calling process.

While the worker runs, the fit's EM runs its compiled passes on one thread: on two cores a
numba pass split over two threads waits for the one the worker displaced (the Syria E pass
took 60 ms on one thread, 110-140 ms on two beside other work), and the passes' sums do not
depend on the number of threads (:func:`culpa.model.kernels.n_chunks`).

``CULPA_TREE_WORKER=0`` switches the worker off.
"""

from __future__ import annotations

import atexit
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["cross_fit", "fit_trees", "start_cross_fit"]


def cross_fit(member, X, y, n_classes: int, n_folds: int, seed: int = 0):
    """``n_folds`` copies of ``member`` (anything with ``fit(X, y, n_classes)`` and
    ``predict_proba(X)``), each fitted on all rows but one fold: (the fitted copies, each row's
    probabilities from the copy that did not see it)."""
    import numpy as np

    n = len(y)
    folds = max(2, min(int(n_folds), n))
    fold = np.random.default_rng(seed).permutation(n) % folds
    oof = np.zeros((n, n_classes))
    fitted = []
    for f in range(folds):
        held = fold == f
        m, p = _fit_copy(member, X, y, n_classes, ~held, held)
        if p is not None:
            oof[held] = p
        if hasattr(m, "drop_fit_state"):
            m.drop_fit_state()
        fitted.append(m)
    return fitted, oof


def _fit_copy(member, X, y, n_classes: int, train, held):
    """A copy of ``member`` fitted on the ``train`` rows, and its probabilities at the
    ``held`` rows (None when there are none): the fit's own predictor while it is at hand."""
    import copy

    m = copy.deepcopy(member)
    m.fit(X[train], y[train], n_classes)
    if not held.any():
        return m, None
    return m, getattr(m, "predict_proba_fit", m.predict_proba)(X[held])


def fit_trees(member, X, y, n_classes: int, n_folds: int, seed: int = 0, forward=None):
    """:func:`cross_fit`, and with ``forward = (train, predict)`` (row masks) one more copy
    of ``member`` fitted on the ``train`` rows, with its probabilities at the ``predict`` rows
    (the pool's forward calibration): ``(fitted, oof, forward probabilities or None)``."""
    fitted, oof = cross_fit(member, X, y, n_classes, n_folds, seed)
    pt = None
    if forward is not None:
        pt = _fit_copy(member, X, y, n_classes, *forward)[1]
    return fitted, oof, pt


# ---------------------------------------------------------------------------------------------
# the parent's side


def _enabled() -> bool:
    if os.environ.get("CULPA_TREE_WORKER", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores >= 2


#: How the worker starts: this culpa first on its path (the one this process imported).
#: ``sys.path[0]`` is replaced, not prepended to: ``python -c`` puts the working directory
#: there, and a ``numpy/`` or ``copy.py`` where ``culpa fit`` runs must not be imported.
#: Ctrl-C reaches the whole process group: the worker ignores it from its first line (the
#: parent kills it, or closes its input), so it prints no traceback of its own.
_BOOT = ("import sys; sys.path[0] = sys.argv[1]; "
         "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "from culpa.model.treejob import _serve; _serve()")


class _Worker:
    """The worker subprocess; ``busy`` is held while it runs a job (one at a time)."""

    def __init__(self):
        src = str(Path(__file__).resolve().parents[2])
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, src], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, close_fds=True)
        self.busy = threading.Lock()
        self.owner = os.getpid()  # a forked child must not talk to its parent's worker

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:
            pass

    def stop(self) -> None:
        """At exit: close its input (it exits when idle), kill it if it does not."""
        if self.owner != os.getpid():
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except Exception:
            self.kill()


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _get_worker() -> _Worker | None:
    global _worker
    with _worker_lock:
        if _worker is None or _worker.owner != os.getpid() or not _worker.alive():
            try:
                _worker = _Worker()
            except OSError:
                _worker = None
            else:
                atexit.register(_worker.stop)
        return _worker


class _Local:
    """A cross-fit run in this process when its result is asked for."""

    seconds = None  # the cross-fit's own seconds, once it ran
    forward = None  # the extra forest's probabilities, once it ran (fit_trees)
    busy_core = False  # no other process is working on it

    def __init__(self, args):
        self.args = args

    def result(self):
        tick = time.perf_counter()
        fitted, oof, self.forward = fit_trees(*self.args)
        self.seconds = time.perf_counter() - tick
        return fitted, oof

    def cancel(self) -> None:
        pass


class _Remote:
    """A cross-fit sent to the worker: ``result`` reads its answer (or fits here if the worker
    failed), ``cancel`` stops the worker (the next fit starts another)."""

    seconds = None  # the cross-fit's own seconds in the worker, once it answered
    forward = None  # the extra forest's probabilities, once it answered (fit_trees)
    busy_core = True  # the worker keeps a core busy until it answers

    def __init__(self, worker: _Worker, args, payload: bytes):
        self.worker, self.args, self.done = worker, args, False
        self.sent_ok = True
        self.sender = threading.Thread(target=self._send, args=(payload,), daemon=True,
                                       name="culpa-trees-send")
        self.sender.start()  # the pipe holds 64 KiB: never wait for the worker to read

    def _send(self, payload: bytes) -> None:
        try:
            _write(self.worker.proc.stdin, payload)
        except Exception:
            self.sent_ok = False

    def result(self):
        status, value = "error", None
        try:
            self.sender.join()
            if self.sent_ok:
                status, value = pickle.loads(_read(self.worker.proc.stdout))
        except Exception:  # the worker died or sent garbage
            status = "error"
        finally:
            if status != "ok":
                self.worker.kill()
            self._release()
        if status != "ok":
            local = _Local(self.args)
            out = local.result()
            self.forward, self.seconds = local.forward, local.seconds
            return out
        fitted, oof, self.forward, self.seconds = value
        return fitted, oof

    def _release(self) -> None:
        if not self.done:
            self.done = True
            self.worker.busy.release()

    def cancel(self) -> None:
        if not self.done:
            self.worker.kill()
            self._release()


def start_cross_fit(member, X, y, n_classes: int, n_folds: int, seed: int = 0,
                    worker: bool = True, forward=None):
    """Start :func:`cross_fit` (and the ``forward`` forest of :func:`fit_trees`) in the worker
    process when one can take it (else, or with ``worker=False``, it runs in this process when
    its result is asked for); returns an object whose ``result()`` gives what
    :func:`cross_fit` returns, ``forward`` the extra forest's probabilities after it,
    ``cancel()`` forgets it and ``seconds`` is the trees' own time once they ran."""
    args = (member, X, y, n_classes, n_folds, seed, forward)
    if not (worker and _enabled()):
        return _Local(args)
    try:
        payload = pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a member that cannot travel
        return _Local(args)
    worker = _get_worker()
    if worker is None or not worker.busy.acquire(blocking=False):
        return _Local(args)
    return _Remote(worker, args, payload)


# ---------------------------------------------------------------------------------------------
# framing: an 8-byte length, then the pickle


def _write(stream, data: bytes) -> None:
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _read(stream) -> bytes:
    head = stream.read(8)
    if len(head) != 8:
        raise EOFError("the tree worker closed its output")
    (n,) = struct.unpack("<Q", head)
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the tree worker's answer was cut short")
    return data


# ---------------------------------------------------------------------------------------------
# the worker's side


def _serve() -> None:
    """Answer jobs from stdin until it closes; stdout carries only the answers (anything
    printed goes to stderr)."""
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while True:
        try:
            job = _read(inp)
        except EOFError:
            return
        try:
            tick = time.perf_counter()
            fitted, oof, pt = fit_trees(*pickle.loads(job))
            answer = ("ok", (fitted, oof, pt, time.perf_counter() - tick))
        except Exception as exc:  # the parent fits it itself
            answer = ("error", repr(exc))
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            data = pickle.dumps(("error", repr(exc)))
        _write(out, data)
