"""A click while a long job runs: kept until the page acts on it, and the job goes on instead of
starting again (dashboard/runtime/clicks.py, dashboard/runtime/long_jobs.py).

Streamlit's fast reruns cannot be driven from AppTest (it runs one run at a time), so the two
things they do are done here by hand: a cut-short run resets every button (SessionState's own
``_reset_triggers``, what Streamlit calls when that run ends), and the new run of the same page
asks for the job again while it runs (two runs waiting for one key, from two threads)."""

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

import gradcam
from dashboard.runtime import long_jobs
from tests.app.test_app import run

# A page whose button comes after a long job, as on the Trust page (the sanity check after the ranking).
# Before the button, the reset a cut-short run makes when it ends.
PAGE = """
import streamlit as st
from streamlit.runtime.state import get_session_state
from dashboard.runtime import clicks

get_session_state()._state._reset_triggers()  # what the run cut short does when it ends
if clicks.button("Run the sanity check", key="kept"):
    st.write("the sanity check runs")
"""


def test_a_kept_click_survives_the_reset_a_cut_short_run_makes_and_counts_once():
    at = run(AppTest.from_string(PAGE, default_timeout=120))
    at.button(key="kept").click()
    run(at)
    assert [m.value for m in at.markdown][:1] == ["the sanity check runs"]
    run(at)  # the next run: the click was taken
    assert "the sanity check runs" not in [m.value for m in at.markdown]


PLAIN = """
import streamlit as st
from streamlit.runtime.state import get_session_state

get_session_state()._state._reset_triggers()  # what the run cut short does when it ends
st.write(f"plain: {st.button('Plain', key='plain')}")
"""


def test_streamlits_own_button_read_after_that_reset_is_lost():
    """The failure the kept click mends: Streamlit's own button, read after the reset, says not clicked."""
    at = run(AppTest.from_string(PLAIN, default_timeout=120))
    at.button(key="plain").click()
    run(at)
    assert [m.value for m in at.markdown] == ["plain: False"]


def test_the_bar_names_a_queued_click_and_it_is_dropped_after_a_whole_run():
    script = """
import streamlit as st
from dashboard.runtime import clicks
st.button("Run the sanity check", key="kept", on_click=clicks._note, args=("kept", "Run the sanity check"))
st.write(clicks.waiting_note() or "nothing queued")
clicks.forget_unanswered()
"""
    at = run(AppTest.from_string(script, default_timeout=120))
    at.button(key="kept").click()
    run(at)
    note = at.markdown[0].value
    assert note.startswith('· then "Run the sanity check", clicked meanwhile') and "it runs once this is done" in note
    run(at)
    assert at.markdown[0].value == "nothing queued"


# --- the job goes on ---------------------------------------------------------------------------

WAITING = """
import streamlit as st
from dashboard.runtime import long_jobs
from tests.app import test_long_jobs as here
st.write(f"result: {long_jobs.long_job(here.KEY, here.counting, 'Counting', 'steps')}")
"""
KEY = ("test", "counting")
started = []  # one entry per start of the job
release = threading.Event()


def counting(progress, stop):
    started.append(time.monotonic())
    for step in range(1, 1001):
        if stop.is_set():
            raise gradcam.ExplanationStopped("stopped")
        if release.is_set():
            return "done"
        progress(step, 1000)
        time.sleep(0.02)
    return "gave up"


def test_a_second_run_asking_while_the_job_runs_waits_for_it_and_does_not_start_it_again():
    started.clear()
    release.clear()
    first, second = AppTest.from_string(WAITING, default_timeout=120), AppTest.from_string(WAITING, default_timeout=120)
    runs = [threading.Thread(target=at.run) for at in (first, second)]
    runs[0].start()
    deadline = time.monotonic() + 30
    while not long_jobs.is_running(KEY) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert long_jobs.is_running(KEY) and not long_jobs.is_done(KEY)
    runs[1].start()  # the new run (here another session's: AppTest runs one at a time) asks for it meanwhile
    time.sleep(1.0)
    release.set()
    for thread in runs:
        thread.join(60)
    assert [at.markdown[0].value for at in (first, second)] == ["result: done", "result: done"]
    assert len(started) == 1  # one job, not a second from the start
    assert long_jobs.is_done(KEY) and not long_jobs.is_running(KEY)


def test_a_job_nobody_watches_any_more_stops_and_one_watched_goes_on(monkeypatch):
    monkeypatch.setattr(long_jobs, "ABANDONED_AFTER", 0.5)
    release.clear()
    left = long_jobs._job_for(("test", "left"), counting)  # started, then nobody looks at it again
    watched = long_jobs._job_for(("test", "watched"), counting)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        watched.watch("a page")
        time.sleep(0.1)
    assert left.done.wait(10) and isinstance(left.error, gradcam.ExplanationStopped)
    assert not watched.done.is_set() and not long_jobs.is_running(("test", "left"))
    release.set()
    assert watched.done.wait(10) and watched.value == "done" and long_jobs.kept_result(("test", "watched")) == "done"


def test_stop_stops_the_job_only_when_no_other_session_waits():
    release.clear()
    job = long_jobs._job_for(("test", "shared"), counting)  # asked for by this session (outside a page here)
    job.watch("another session")
    job.leave(long_jobs._session())  # this session's Stop
    assert not job.stopped.is_set()
    job.leave("another session")
    assert job.stopped.is_set() and job.done.wait(10) and isinstance(job.error, gradcam.ExplanationStopped)


@pytest.fixture(autouse=True)
def _let_jobs_end():
    yield
    release.set()  # no test leaves a job counting in the background
