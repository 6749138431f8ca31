"""The bad-input corpus (tests/corpus.py) through every front end: the library,
the command line and the Explore page.

Every case must end the same way everywhere: a good image is explained, and
anything else is one plain sentence (``InvalidImageError``, ``error: ...`` with
exit status 2, one ``st.error`` on the page) while the current photo stays.
"""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a site-packages "tests" shadows ours

from corpus import CASES, Case  # noqa: E402

import gradcam  # noqa: E402

PAGE = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PARAMS = [pytest.param(case, id=case.id) for case in CASES]
SLOW_PAGE_RUN = 20.0  # seconds; a case slower than this on the page is worth a report

# (case id, seconds) of every case's upload run, checked by the last test.
page_timings: list[tuple[str, float]] = []


def contains(text: str, phrase: str) -> bool:
    return phrase.casefold() in text.casefold()


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message, message
    assert message.endswith("."), message
    assert "Traceback" not in message, message


# --- the library -----------------------------------------------------------------


@pytest.mark.parametrize("case", PARAMS)
def test_load_image(case: Case) -> None:
    data = case.make()
    started = time.perf_counter()
    if case.refused:
        with pytest.raises(gradcam.InvalidImageError) as caught:
            gradcam.load_image(data)
        elapsed = time.perf_counter() - started
        assert type(caught.value) is gradcam.InvalidImageError
        message = str(caught.value)
        assert_one_sentence(message)
        assert contains(message, case.expected.phrase), message
    else:
        image = gradcam.load_image(data)
        elapsed = time.perf_counter() - started
        expected = case.expected
        assert isinstance(image, Image.Image)
        assert image.mode == "RGB"
        assert image.size == (expected.width, expected.height)
        for xy, colour in expected.pixels.items():
            actual = image.getpixel(xy)
            assert all(abs(a - e) <= expected.tolerance for a, e in zip(actual, colour)), (
                f"pixel {xy} is {actual}, expected about {colour}")
    if case.max_seconds is not None:
        assert elapsed < case.max_seconds, f"took {elapsed:.2f} s"


# --- the command line ------------------------------------------------------------

RANKED_LINE = re.compile(r"^\s*\d+\. .+\s+\d+\.\d\d%\s+\(class \d+\)$")


@pytest.mark.parametrize("case", PARAMS)
def test_cli_predict(case: Case, tmp_path, capsys) -> None:
    from gradcam.cli import main

    path = tmp_path / case.filename
    path.write_bytes(case.make())
    started = time.perf_counter()
    code = main(["predict", str(path)])
    elapsed = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if case.refused:
        assert code == 2, (out, err)
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert contains(lines[0], case.expected.phrase), err
        assert_one_sentence(lines[0])
        if case.max_seconds is not None:
            assert elapsed < case.max_seconds, f"took {elapsed:.2f} s"
    else:
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 5, out
        assert lines[0].lstrip().startswith("1. ")
        assert all(RANKED_LINE.match(line) for line in lines), out


# --- the Explore page ------------------------------------------------------------


def coffee_jpeg() -> bytes:
    """A small JPEG of a real photo (scikit-image ships it: no download)."""
    from skimage import data

    image = Image.fromarray(data.coffee()).convert("RGB")
    image.thumbnail((320, 320))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def run(at) -> float:
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    assert not at.exception, [e.value for e in at.exception]
    return elapsed


def shown_errors(at) -> list[str]:
    # The page escapes Markdown in what it shows; compare the text as a person reads it.
    return [error.value.replace("\\", "") for error in at.error]


@pytest.fixture(scope="module")
def page():
    """One Explore page for the whole corpus, put back on the cat sample before each case."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=180)
    run(at)
    assert at.session_state["image_name"] == "cat.jpg"
    return at


def back_to_the_cat(at) -> None:
    at.file_uploader(key="upload").set_value(None)
    at.button(key="sample_cat.jpg").click()
    run(at)
    assert at.session_state["image_name"] == "cat.jpg"
    assert not at.error, shown_errors(at)


def explained(at) -> None:
    """The page shows an explanation: a target class and the overlay."""
    assert at.selectbox(key="target").value is not None
    assert any(c.startswith("Grad-CAM overlay") for image in at.image for c in image.captions)


@pytest.mark.parametrize("case", PARAMS)
def test_explore_page_upload(case: Case, page) -> None:
    at = page
    back_to_the_cat(at)
    at.file_uploader(key="upload").set_value((case.filename, case.make(), case.mime))
    elapsed = run(at)
    page_timings.append((case.id, elapsed))
    explained(at)
    if not case.refused:
        assert at.session_state["image_name"] == case.filename
        assert not at.error, shown_errors(at)
        return
    errors = shown_errors(at)
    assert len(errors) == 1, errors
    assert contains(errors[0], case.expected.phrase), errors
    assert at.session_state["image_name"] == "cat.jpg"  # the current photo stays
    # ...and the next good upload works.
    at.file_uploader(key="upload").set_value(("coffee.jpg", coffee_jpeg(), "image/jpeg"))
    run(at)
    assert at.session_state["image_name"] == "coffee.jpg"
    assert not at.error, shown_errors(at)
    explained(at)


def test_a_bad_file_replacing_a_good_upload_keeps_that_upload(page) -> None:
    """What a browser sends when a person drops a new file on the uploader that holds one: first the old
    file's removal (a run of its own), then the new file. A broken file must not cost the good photo."""
    at = page
    back_to_the_cat(at)
    at.file_uploader(key="upload").set_value(("coffee.jpg", coffee_jpeg(), "image/jpeg"))
    run(at)
    assert at.session_state["image_name"] == "coffee.jpg"
    at.file_uploader(key="upload").set_value(None)  # the browser's first message: the old file went
    run(at)
    broken = coffee_jpeg()[:200]  # a JPEG cut off after its header
    at.file_uploader(key="upload").set_value(("holiday.jpg", broken, "image/jpeg"))
    run(at)
    assert at.session_state["image_name"] == "coffee.jpg"  # the upload, not the sample the removal went back to
    errors = shown_errors(at)
    assert len(errors) == 1 and errors[0].startswith("holiday.jpg: "), errors
    assert errors[0].endswith("The current photo stays: coffee.jpg."), errors
    assert at.selectbox(key="target").value == 967  # espresso: the kept photo, explained  # the kept photo, explained
    explained(at)


def test_no_page_run_was_slow() -> None:
    """Every case's page run, the 24-megapixel photo included, took under 20 s."""
    if not page_timings:
        pytest.skip("the page tests did not run")
    slow = [(case_id, round(seconds, 1)) for case_id, seconds in page_timings if seconds > SLOW_PAGE_RUN]
    assert not slow, slow
