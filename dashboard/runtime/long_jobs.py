"""Long jobs: a progress bar, a Stop, and a click meanwhile that waits for the job instead of
cutting it short.

Score-CAM and Ablation-CAM run many forward passes, a sanity check randomizes a network
stage by stage, an audit explains a whole dataset. Each runs in a thread of its own, shared
by every session that asks for the same result (keyed by content hashes), and the page waits
for it, drawing its progress. A click while it runs starts a new run of the page at once
(Streamlit's fast reruns) and ends the old one at its next progress update, but not the job:
the new run finds the job still running and waits for it too, so the job goes on where it
was, and the click's own work follows (clicks.py keeps the click, the bar says it is queued).

A job stops when Stop is pressed, when its session asks for another job instead (a newer
choice supersedes it), or when nobody has watched it for ABANDONED_AFTER seconds (the page was
left): unless another session still watches it. Results go to a small cache shared by all
sessions, like st.cache_data (a progress bar drawn from inside st.cache_data would be recorded
and replayed on every hit), except a result its job's ``shared`` says is the asking session's
own (it holds what only this session was refused, say): such a job is never shared either.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import OrderedDict
from typing import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from .clicks import waiting_note
from .refusals import refusals_said

KEPT_RESULTS = 64
POLL_SECONDS = 0.25  # how often a waiting page redraws the bar (each redraw lets a click end that run)
# A job nobody has watched for this long is stopped: longer than a rerun takes to come back to it
# on a loaded machine, short enough that a page left behind does not hold the CPU long.
ABANDONED_AFTER = 10.0
_WATCHING = "_long_job_watching"  # session key: the running job this session waits for (its slot)
_OWN = "_long_job_own"  # session key: (key, result) of this session's latest result that is not shared


class _Job:
    """One job running in its thread; ``is_set`` is the engine's stop signal."""

    def __init__(self, key: tuple, slot: tuple, run: Callable, shared: Callable[[object], bool] | None):
        self.key, self.slot, self.shared = key, slot, shared  # the result's key; where it runs (see _slot)
        self.done = threading.Event()
        self.stopped = threading.Event()
        self.value = self.error = None
        self.progress = (0, 0)
        self.watchers: dict[str, float] = {}  # session id -> when it last looked
        self.watch(_session())
        # The thread runs in a copy of the asking run's context: its sandbox reads still count as
        # that session's (gradcam.intake's sandbox_session is a context variable).
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._work, run), name=f"long job {key[0]}",
                                       daemon=True)

    def _work(self, run: Callable) -> None:
        try:
            self.value = run(self._advance, self)
            if self.shared is None or self.shared(self.value):
                _keep(self.key, self.value)
        except BaseException as error:  # handed to the page that waits (ExplanationStopped too)
            self.error = error
        finally:
            _forget(self)
            self.done.set()

    def _advance(self, done: int, total: int) -> None:
        self.progress = (done, total)

    def watch(self, session: str) -> None:
        self.watchers[session] = time.monotonic()

    def watched_by_others(self, session: str) -> bool:
        now = time.monotonic()
        return any(now - when < ABANDONED_AFTER for who, when in list(self.watchers.items()) if who != session)

    def leave(self, session: str) -> None:
        """``session`` no longer waits: the job stops unless another session watches it."""
        self.watchers.pop(session, None)
        if not self.watched_by_others(session):
            self.stopped.set()

    def is_set(self) -> bool:
        """Whether the engine should stop (the stop signal ``run`` is handed, like a threading.Event)."""
        last_look = max(list(self.watchers.values()), default=0.0)
        if not self.stopped.is_set() and time.monotonic() - last_look > ABANDONED_AFTER:
            self.stopped.set()  # for good: the engine may stop at once, so nobody may count on this job again
        return self.stopped.is_set()


@st.cache_resource(show_spinner=False)
def _shared() -> tuple[OrderedDict, dict, threading.Lock]:
    """The kept results, the jobs running, and their lock: one for the whole server."""
    return OrderedDict(), {}, threading.Lock()


def _keep(key: tuple, value: object) -> None:
    results, _, lock = _shared()
    with lock:
        results[key] = value
        while len(results) > KEPT_RESULTS:
            results.popitem(last=False)


def _forget(job: _Job) -> None:
    _, running, lock = _shared()
    with lock:
        if running.get(job.slot) is job:
            del running[job.slot]


def _session() -> str:
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else "no session"


def _slot(key: tuple, shared: Callable | None, session: str) -> tuple:
    """Where the job for ``key`` runs: one for every session, or, when its result may be the
    asking session's own (``shared`` given), one per session (it runs on that session's budget)."""
    return key if shared is None else ("session", session, *key)


def _job_for(key: tuple, run: Callable, shared: Callable | None = None) -> _Job:
    """The job running for ``key`` (one still going, not stopped), else a new one, started."""
    _, running, lock = _shared()
    slot = _slot(key, shared, _session())
    with lock:
        job = running.get(slot)
        if job is not None and not job.is_set():
            job.watch(_session())
            return job
        job = running[slot] = _Job(key, slot, run, shared)
    job.thread.start()
    return job


def _own(key: tuple) -> tuple[bool, object]:
    own = st.session_state.get(_OWN)
    return (True, own[1]) if own is not None and own[0] == key else (False, None)


def long_job(key: tuple, run: Callable, title: str, unit: str, shared: Callable[[object], bool] | None = None
             ) -> object:
    """A long job's result, made once for every session: ``run(progress, stop)`` runs in its own
    thread while the page shows a bar ("title: done of total unit"); ``stop.is_set()`` turns true
    on Stop, on a newer job of this session, or when the page is left. Raises what ``run`` raised
    (gradcam.ExplanationStopped when stopped). ``shared(result)`` False: the result is this
    session's alone (it holds what only this session was refused, say), kept for it (the latest
    one) but never served to another session."""
    kept = kept_result(key)
    if kept is not None or is_done(key):
        return kept
    session = _session()
    slot = _slot(key, shared, session)
    previous = _running_job(st.session_state.get(_WATCHING))
    if previous is not None and previous.slot != slot:
        previous.leave(session)  # a newer request of this session supersedes an older one
    st.session_state[_WATCHING] = slot
    job = _job_for(key, run, shared)
    bar = st.progress(0.0, text=f"{title}: starting...")
    try:
        while not job.done.wait(POLL_SECONDS):
            job.watch(session)
            done, total = job.progress
            text = f"{title}: {done} of {total} {unit}" if total else f"{title}: starting..."
            # Redrawn even when unchanged: each redraw is where a click ends this run (the job goes on).
            bar.progress(done / max(total, 1), text=text + waiting_note())
    finally:
        bar.empty()
    if job.error is not None:
        with refusals_said():
            raise job.error
    if shared is not None and not shared(job.value):
        st.session_state[_OWN] = (key, job.value)
    return job.value


def _running_job(slot: tuple | None) -> _Job | None:
    if slot is None:
        return None
    _, running, lock = _shared()
    with lock:
        return running.get(slot)


def kept_result(key: tuple) -> object | None:
    """``long_job(key, ...)``'s result if it is kept (made by any session, or this session's own),
    else None; never runs it."""
    results, _, lock = _shared()
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    return _own(key)[1]


def is_done(key: tuple) -> bool:
    """Whether ``long_job(key, ...)`` would return at once (its result is kept)."""
    results, _, lock = _shared()
    with lock:
        if key in results:
            return True
    return _own(key)[0]


def is_running(key: tuple) -> bool:
    """Whether a job for ``key`` is running for every session or for this one, and not stopped."""
    for slot in (key, _slot(key, True, _session())):
        job = _running_job(slot)
        if job is not None and not job.is_set():
            return True
    return False


def stop_long_job() -> None:
    """Stop this session's long job, if one is running (a Stop button's callback); another
    session waiting for the same result keeps it running."""
    job = _running_job(st.session_state.get(_WATCHING))
    if job is not None:
        job.leave(_session())

