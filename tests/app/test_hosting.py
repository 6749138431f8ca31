"""A hosted dashboard survives its users (issue 16), through AppTest: crafted links,
a model whose explanation would exhaust the server's memory, a model with a huge
number of classes. Each hostile input is built here; each test checks the sentence
shown and that the page still serves."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import class_picker
from dashboard.link_values import link_number
from dashboard.model_picker import UPLOAD

ROOT = Path(__file__).resolve().parents[2]
EXPLORE = str(ROOT / "streamlit_app.py")
# Digits int() refuses or str.isdigit() accepts: superscript two, Arabic-Indic three, a fullwidth
# one; then what a hand-edited link holds: a sign, spaces, a number with 40 digits.
CRAFTED = ["²", "٣", "１", "-1", " 3", "9" * 40, "3.0", ""]


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_link_numbers_are_ascii_digits_only():
    assert [link_number(v) for v in CRAFTED] == [None] * len(CRAFTED)
    assert link_number("0") == 0 and link_number("968") == 968
    assert link_number("968", below=1000) == 968 and link_number("1000", below=1000) is None
    assert link_number(None) is None and link_number(7) is None  # only a link's text is read


@pytest.mark.parametrize("page, link", [
    (EXPLORE, {"target": "²"}),
    (str(ROOT / "app_pages/1_How_it_works.py"), {"step": "²", "lesson_class": "٣"}),
    (str(ROOT / "app_pages/2_Compare.py"), {"compare": "classes", "compare_class": "²", "other": "１"}),
])
def test_a_crafted_link_opens_the_page_on_its_defaults(page, link):
    at = AppTest.from_file(page, default_timeout=240)
    at.query_params.update(link)
    run(at)  # no exception: the page is drawn
    assert not at.error, [e.value for e in at.error]
    for key in set(link) - {"compare"}:  # the numbers: the page's default, not the crafted value
        assert at.query_params.get(key) != link[key], (key, dict(at.query_params))


# --- many classes -----------------------------------------------------------------------------


def test_the_picker_of_an_imagenet_21k_model_offers_a_search_not_every_class():
    labels = [f"synset {i:05d}" for i in range(21_843)]
    labels[20_000] = "Tibetan mastiff"
    top5 = [3, 1, 4, 15, 9]
    started = time.perf_counter()
    offered = class_picker.options(labels, top5, 12_345, "")
    assert offered == [3, 1, 4, 15, 9, 12_345]  # the top-5 and the class already chosen
    found = class_picker.options(labels, top5, 12_345, "  tibetan ")
    assert found == [3, 1, 4, 15, 9, 12_345, 20_000]
    many = class_picker.options(labels, top5, None, "synset 1")
    assert len(many) == 5 + class_picker.SHOWN_MATCHES and all(labels[i].startswith("synset 1") for i in many[5:])
    assert time.perf_counter() - started < 0.5
    # ImageNet-1k keeps its one box of every class, top-5 first.
    small = [f"c{i}" for i in range(1000)]
    assert class_picker.options(small, top5, 7, "") == [*top5, *(i for i in range(1000) if i not in top5)]
