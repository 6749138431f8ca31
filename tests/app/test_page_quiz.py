"""Where will it look? through AppTest: one round played, revealed, tallied; the round in the link."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app, switch_to

from tests.app.test_app import run

ROOT = Path(__file__).resolve().parents[2]


def quiz(link: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=240)
    at.query_params.update(link or {})
    run(at)
    switch_to(at, "quiz")
    return run(at)


def test_one_round_guessing_the_cup_for_espresso_is_a_hit_and_counts_once():
    at = quiz()
    assert "asked about **espresso**" in at.markdown[0].value
    at.slider(key="quiz_x_0").set_value(65)  # the cup on its saucer, right half of the cat-and-coffee photo
    at.slider(key="quiz_y_0").set_value(70)
    at.button(key="quiz_reveal").click()
    run(at)
    assert at.success and "Inside the map's strongest region" in at.success[0].value
    assert at.slider(key="quiz_x_0").disabled  # the guess is fixed once the map is shown
    assert at.caption[-1].value.startswith("Score: 1 of 1")
    run(at)
    assert at.caption[-1].value.startswith("Score: 1 of 1")  # a rerun does not count the round again

    at.button(key="quiz_next").click()
    run(at)
    assert "asked about **tiger cat**" in at.markdown[0].value and at.query_params["round"] == "2"
    at.slider(key="quiz_x_1").set_value(90)  # the cup, for the cat: a miss
    at.button(key="quiz_reveal").click()
    run(at)
    assert at.warning and "Outside the map's strongest region" in at.warning[0].value
    assert at.caption[-1].value.startswith("Score: 1 of 2")


def opened_by_link(link: dict) -> AppTest:
    at = page_app("quiz", default_timeout=240)
    at.query_params.update(link)
    return run(at)


def test_a_link_opens_its_round_and_a_broken_round_falls_back_to_the_first():
    opened = opened_by_link({"round": "3"})
    assert "Round 3 of" in opened.markdown[0].value and opened.query_params["round"] == "3"
    assert "Round 1 of" in opened_by_link({"round": "three"}).markdown[0].value



def demo_round(x: int, y: int) -> AppTest:
    at = opened_by_link({"round": "6"})
    assert "Round 6 of 6. Clever Hans demo is asked about **disc**" in at.markdown[0].value
    at.slider(key="quiz_x_5").set_value(x)
    at.slider(key="quiz_y_5").set_value(y)
    at.button(key="quiz_reveal").click()
    return run(at)


def test_the_last_round_asks_the_cheating_demo_model_and_it_looks_at_the_tag_not_the_disc():
    on_the_disc = demo_round(35, 22)  # disc-01.jpg: the disc sits in the upper left
    assert on_the_disc.warning and "Outside the map's strongest region" in on_the_disc.warning[0].value
    assert any("copyright tag, not at the disc" in m.value for m in on_the_disc.markdown)
    on_the_tag = demo_round(75, 85)  # the tag's corner, bottom right
    assert on_the_tag.success and "Inside the map's strongest region" in on_the_tag.success[0].value
