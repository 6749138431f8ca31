"""Explore's "What if?" through AppTest: a link that covers the cup shows espresso
falling, the boxes travel in the link, Undo and Clear take them back."""

from pathlib import Path

import pytest

from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

from gradcam.zoo.labels import imagenet_labels
from tests.app.test_app import run

EXPLORE = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
ESPRESSO = imagenet_labels().index("espresso")


def answer(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**The model's answer now**"))


def test_a_link_that_covers_the_cup_shows_espresso_fall_and_undo_and_clear_take_it_back():
    at = AppTest.from_file(EXPLORE, default_timeout=240)
    at.query_params.update({"sample": "cat-and-coffee.jpg", "target": str(ESPRESSO), "cover": "0.50,0.00,1.00,1.00"})
    run(at)
    shown = answer(at)
    espresso_line = next(line for line in shown.splitlines() if "espresso" in line)
    assert "▼ down" in espresso_line  # the cup is gone, and so is the espresso
    assert at.query_params["cover"] == "0.50,0.00,1.00,1.00"

    # A second box from the sliders: both travel in the link.
    at.slider(key="what_if_x").set_value((0, 20))
    at.slider(key="what_if_y").set_value((0, 30))
    at.button(key="what_if_cover").click()
    run(at)
    assert at.query_params["cover"] == "0.50,0.00,1.00,1.00;0.00,0.00,0.20,0.30"

    at.button(key="what_if_undo").click()
    run(at)
    assert at.query_params["cover"] == "0.50,0.00,1.00,1.00"
    at.button(key="what_if_clear").click()
    run(at)
    assert "cover" not in at.query_params
    assert not [m for m in at.markdown if m.value.startswith("**The model's answer now**")]


def test_a_hand_edited_cover_in_a_link_is_ignored_without_a_traceback():
    at = AppTest.from_file(EXPLORE, default_timeout=240)
    at.query_params.update({"cover": "nan,0,1,1;a,b;0.2,0.2,0.2,0.9;" + "0,0,1,1;" * 50})
    run(at)
    # The first eight parts are read: three malformed ones dropped, five sound boxes kept; the rest never read.
    assert at.query_params["cover"] == ";".join(["0.00,0.00,1.00,1.00"] * 5)


LESSON = "how_it_works"


@pytest.mark.slow  # two sessions of the lesson: about 6 s with the model loaded
def test_the_lessons_last_step_covers_where_the_map_points_and_the_link_carries_it():
    at = page_app(LESSON, default_timeout=240)
    at.query_params.update({"sample": "cat-and-coffee.jpg", "lesson_class": str(ESPRESSO), "step": "8"})
    run(at)
    assert [h.value for h in at.subheader] == ["Step 8 of 8: What if? Cover it"]
    assert "cover" not in at.query_params
    at.button(key="lesson_what_if_strongest").click()
    run(at)
    # Espresso's map points at the cup, on the photo's right half: that box is covered, and espresso falls.
    cover = at.query_params["cover"]
    x0, y0, x1, y1 = (float(v) for v in cover.split(","))
    assert x0 >= 0.4 and x1 > x0 and y1 > y0
    espresso_line = next(line for line in answer(at).splitlines() if "espresso" in line)
    assert "▼ down" in espresso_line
    assert at.query_params["step"] == "8" and at.query_params["lesson_class"] == str(ESPRESSO)

    # The link a teacher hands out opens the same step with the same box covered.
    shared = page_app(LESSON, default_timeout=240)
    shared.query_params.update(dict(at.query_params))
    run(shared)
    assert shared.query_params["cover"] == cover and answer(shared) == answer(at)
    # On another step the box is kept but left out of the link: it belongs to the last step.
    shared.button(key="lesson_previous").click()
    run(shared)
    assert "cover" not in shared.query_params and shared.session_state["lesson_what_if_boxes"]
