"""The "Can I trust it?" page through AppTest: the scores it shows are the
engine's, each next to random maps; the ranking and the sanity check run on
request, once, and say what they found."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import gradcam
from dashboard import cached, trust

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "5_Trust.py")
ON_A_CNN = [k for k, m in gradcam.METHODS.items() if m.kind != "attention"]  # rollout needs attention layers


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


@pytest.fixture(scope="module")
def page():
    """One session on the default sample (the cat) and model."""
    cached.engine_calls.clear()
    return run(AppTest.from_file(PAGE, default_timeout=900))


def shown_scores(at: AppTest) -> gradcam.Faithfulness:
    """The result the page drew, from the cache it drew it from."""
    image = cached.display_image(at.session_state["image_hash"], at.session_state["image_data"])
    model = cached.builtin_model(gradcam.DEFAULT_MODEL)
    target = gradcam.predict(model, image, top=1)[0].index
    return trust.scores(at.session_state["image_hash"], gradcam.DEFAULT_MODEL, "top_activation", "gradcam", target,
                        "blur", image, model)


def test_the_page_shows_the_verdict_the_curves_and_the_scores_with_their_random_baseline(page):
    scores = shown_scores(page)
    assert [s.value for s in page.success] == [scores.verdict]
    assert scores.verdict.startswith("Better than random")  # Grad-CAM on the cat (tests/trust/test_faithfulness.py)
    charts = page.get("vega_lite_chart")
    assert len(charts) == 2  # deletion and insertion, each with random maps and the blob in the same plot
    assert all('"share of pixels deleted"' in c.proto.spec or '"share of pixels inserted"' in c.proto.spec
               for c in charts)
    table = page.dataframe[0].value
    assert list(table[""]) == ["This map", "Random maps", "Centred blob"]
    assert np.allclose(table["Deletion AUC (lower is better)"],
                       [scores.deletion.auc, scores.random.deletion.auc, scores.blob.deletion.auc])
    assert np.allclose(table["Insertion AUC (higher is better)"],
                       [scores.insertion.auc, scores.random.insertion.auc, scores.blob.insertion.auc])
    assert np.allclose(table["Average Drop % (lower is better)"],
                       [scores.average_drop, scores.random.average_drop, scores.blob.average_drop])
    assert [image.captions for image in page.image] == [["10% deleted"], ["30% deleted"], ["60% deleted"]]
    road = page.dataframe[1].value
    assert list(road[""]) == ["This map", "A random map", "Centred blob"]
    assert all(-1 <= value <= 1 for value in road["ROAD combined (higher is better)"])
    for paper in ("Petsiuk et al.", "Chattopadhyay et al.", "Rong et al.", "Adebayo et al."):
        assert any(paper in caption.value for caption in page.caption)


def test_nothing_is_computed_twice(page):
    before = dict(cached.engine_calls)
    run(page)
    assert dict(cached.engine_calls) == before
    assert before["faithfulness"] == 1 and before["road"] == 1


def test_methods_are_ranked_on_request(page):
    assert len(page.dataframe) == 2  # not before the click
    button(page, "Rank every method").click()
    run(page)
    ranked = page.dataframe[2].value
    assert len(ranked) == len(ON_A_CNN) + 1
    assert "Random maps (mean of 3)" in list(ranked["method"])
    assert list(ranked["insertion - deletion"]) == sorted(ranked["insertion - deletion"], reverse=True)
    assert any(name.startswith("➜ ") for name in ranked["method"])  # the current method is marked
    run(page)  # the table stays, from the cache
    assert len(page.dataframe) == 3
    assert cached.engine_calls["method_score"] == len(ON_A_CNN) and cached.engine_calls["random_score"] == 1


def test_the_sanity_strip_shows_each_stage_and_the_verdict(page):
    button(page, "Run the sanity check").click()
    run(page)
    stages = gradcam.sanity.stages(cached.builtin_model(gradcam.DEFAULT_MODEL))
    strip = [image for image in page.image if "rank correlation" in image.captions[0] or
             "Trained model" in image.captions[0]]
    assert len(strip) == len(stages) + 1
    assert strip[1].captions[0].startswith("**random down to predictions**")
    verdicts = [s.value for s in page.success if s.value.startswith("Passed")]
    assert len(verdicts) == 1 and "Grad-CAM" in verdicts[0]
    assert cached.engine_calls["sanity_check"] == 1


@pytest.mark.skipif("guided-backprop" not in gradcam.METHODS, reason="Guided Backpropagation is not in METHODS yet")
def test_one_click_shows_guided_backprop_failing_side_by_side(page):
    button(page, "Compare with Guided Backpropagation").click()
    run(page)
    assert any(e.value.startswith("Failed") and "Guided Backpropagation" in e.value for e in page.error)
    assert cached.engine_calls["sanity_check"] == 2
