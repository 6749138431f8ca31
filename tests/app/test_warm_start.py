"""The default model's warm-up (dashboard.runtime.boot) and a first visitor's page share one
interpreter: the warm-up lets a page that is already running draw its photo and pickers
before TensorFlow's import takes the interpreter, and waits for nobody otherwise."""

import threading
import time

import pytest

from dashboard.runtime import boot


@pytest.fixture
def fresh_events(monkeypatch):
    monkeypatch.setattr(boot, "_page_running", threading.Event())
    monkeypatch.setattr(boot, "_first_view", threading.Event())
    monkeypatch.setattr(boot, "ARRIVAL_WAIT", 0.2)
    monkeypatch.setattr(boot, "FIRST_VIEW_WAIT", 5.0)


def held_for(action) -> float:
    """Seconds the warm-up held back while ``action`` ran beside it."""
    started = time.monotonic()
    warm = threading.Thread(target=boot._let_the_first_view_draw)
    warm.start()
    action()
    warm.join(10)
    assert not warm.is_alive()
    return time.monotonic() - started


def test_with_no_visitor_the_warm_up_waits_only_for_a_moment(fresh_events):
    assert 0.15 < held_for(lambda: None) < 1.0


def test_a_running_page_draws_its_first_view_before_the_warm_up_imports(fresh_events):
    def a_visitor():
        boot.page_running()
        time.sleep(1.0)  # the page draws its photo and pickers
        boot.first_view_drawn()

    assert held_for(a_visitor) >= 1.0


def test_a_page_that_never_says_it_drew_holds_the_warm_up_only_so_long(fresh_events, monkeypatch):
    monkeypatch.setattr(boot, "FIRST_VIEW_WAIT", 0.5)
    assert 0.5 <= held_for(boot.page_running) < 2.0


def test_streamlit_checks_how_it_runs_at_boot_not_at_the_first_page(monkeypatch):
    """That check walks every loaded module (TensorFlow's thousands: ~0.4 s of a first page);
    boot() makes it before the warm-up imports TensorFlow, so no page pays for it."""
    from streamlit import delta_generator

    from dashboard.runtime.streamlit_patches import settle_the_direct_run_check

    monkeypatch.setattr(delta_generator, "_use_warning_has_been_displayed", False)
    settle_the_direct_run_check()
    assert delta_generator._use_warning_has_been_displayed
