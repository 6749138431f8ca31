"""Long jobs: a progress bar, a Stop, and a newer request superseding an older one.

Score-CAM and Ablation-CAM run many forward passes, a sanity check randomizes a
network stage by stage, an audit explains a whole dataset. They are not called
inside st.cache_data: a progress bar updated from inside a cached function would be
recorded and replayed on every cache hit. Their results go to this small cache
instead, shared by all sessions like st.cache_data (keyed by content hashes).
When a choice changes while one runs, Streamlit stops the old run at its next
progress update, so no stale result is ever stored or shown.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import streamlit as st

from .refusals import refusals_said

KEPT_RESULTS = 64
_RUNNING = "_long_job_stop"  # session key: the Event that stops this session's running job
_OWN = "_long_job_own"  # session key: (key, result) of this session's latest result that is not shared


@st.cache_resource(show_spinner=False)
def _results() -> tuple[OrderedDict, threading.Lock]:
    return OrderedDict(), threading.Lock()


def _own(key: tuple) -> tuple[bool, object]:
    own = st.session_state.get(_OWN)
    return (True, own[1]) if own is not None and own[0] == key else (False, None)


def long_job(key: tuple, run: Callable, title: str, unit: str, shared: Callable[[object], bool] | None = None
             ) -> object:
    """A long job's result, made once for every session: ``run(progress, stop)`` runs
    under a progress bar ("title: done of total unit"), and a newer job of this
    session, or ``stop_long_job``, stops it. ``shared(result)`` False: the result is
    this session's alone (it holds what only this session was refused, say), kept for
    it (the latest one) but never served to another session."""
    results, lock = _results()
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    mine, value = _own(key)
    if mine:
        return value
    # A newer request of this session supersedes an older one still running.
    previous = st.session_state.get(_RUNNING)
    if previous is not None:
        previous.set()
    stop = threading.Event()
    st.session_state[_RUNNING] = stop
    bar = st.progress(0.0, text=f"{title}: starting...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{title}: {done} of {total} {unit}")

    try:
        with refusals_said():
            value = run(progress, stop)
    finally:
        bar.empty()
    if shared is not None and not shared(value):
        st.session_state[_OWN] = (key, value)
        return value
    with lock:
        results[key] = value
        while len(results) > KEPT_RESULTS:
            results.popitem(last=False)
    return value


def kept_result(key: tuple) -> object | None:
    """``long_job(key, ...)``'s result if it is kept (made by any session), else None; never runs it."""
    results, lock = _results()
    with lock:
        if key in results:
            return results[key]
    return _own(key)[1]


def is_done(key: tuple) -> bool:
    """Whether ``long_job(key, ...)`` would return at once (its result is kept)."""
    results, lock = _results()
    with lock:
        if key in results:
            return True
    return _own(key)[0]


def stop_long_job() -> None:
    """Stop this session's long job, if one is running (a Stop button's callback)."""
    running = st.session_state.get(_RUNNING)
    if running is not None:
        running.set()
