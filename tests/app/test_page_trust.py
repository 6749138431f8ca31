"""The "Can I trust it?" page through AppTest: the scores it shows are the
engine's, each next to random maps; the ranking and the sanity check run on
request, once, and say what they found."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

import gradcam
from dashboard.parts import trust_scores
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import model_cache
from dashboard.runtime import explanation_cache

pytestmark = [pytest.mark.slow]

PAGE = "trust"
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
    engine_calls.clear()
    return run(page_app(PAGE, default_timeout=900))


def shown_scores(at: AppTest) -> gradcam.Faithfulness:
    """The result the page drew, from the cache it drew it from."""
    image = explanation_cache.display_image(at.session_state["image_hash"], at.session_state["image_data"])
    model = model_cache.builtin_model(gradcam.DEFAULT_MODEL)
    target = gradcam.predict(model, image, top=1)[0].index
    # The cache answers from its key alone (the map argument is not hashed): None proves the page drew this one.
    return trust_scores.scores(at.session_state["image_hash"], gradcam.DEFAULT_MODEL, "top_activation", "gradcam", target,
                        "blur", image, model, None)


def test_the_page_shows_the_verdict_the_curves_and_the_scores_with_their_random_baseline(page):
    scores = shown_scores(page)
    # The verdict weighs both baselines, written out here from the numbers the table shows.
    beats_random = scores.deletion.auc < scores.random.deletion.auc and scores.insertion.auc > scores.random.insertion.auc
    beats_blob = scores.deletion.auc < scores.blob.deletion.auc or scores.insertion.auc > scores.blob.insertion.auc
    assert beats_random  # Grad-CAM on the cat (tests/trust/test_faithfulness.py)
    if beats_blob:
        assert [s.value for s in page.success] == [scores.verdict]
    else:  # the cat: the blob does as well, so no green "better than random"
        assert not page.success and scores.verdict in [w.value for w in page.warning]
        assert scores.verdict.startswith("Beats random maps, but not a map that only says 'the middle'")
    assert "centred blob" in scores.verdict
    charts = page.get("vega_lite_chart")
    assert len(charts) == 2  # deletion and insertion, each with random maps and the blob in the same plot
    assert all('"share of pixels deleted"' in c.proto.spec or '"share of pixels inserted"' in c.proto.spec
               for c in charts)
    # Scores as rows and the three maps as columns, in cells that wrap: it fits a phone without scrolling sideways.
    table = page.table[0].value
    assert list(table.columns) == ["This map", "Random maps", "Centred blob"]
    number = lambda name: [float(v) for v in table.loc[name]]  # noqa: E731  shown rounded as printed
    assert np.allclose(number("Deletion AUC (lower is better)"),
                       [scores.deletion.auc, scores.random.deletion.auc, scores.blob.deletion.auc], atol=6e-4)
    assert np.allclose(number("Insertion AUC (higher is better)"),
                       [scores.insertion.auc, scores.random.insertion.auc, scores.blob.insertion.auc], atol=6e-4)
    assert np.allclose(number("Average Drop % (lower is better)"),
                       [scores.average_drop, scores.random.average_drop, scores.blob.average_drop], atol=0.06)
    assert not any(v.startswith("-0.0") and float(v) == 0 for v in table.to_numpy().ravel())  # never "-0.000"
    assert list(table.loc["Increase in Confidence (yes or no)"])[::2] == [
        "yes" if s.increase_in_confidence else "no" for s in (scores, scores.blob)]
    assert [image.captions for image in page.image] == [["10% deleted"], ["30% deleted"], ["60% deleted"]]
    road = page.table[1].value
    assert list(road.columns) == ["This map", "A random map", "Centred blob"]
    assert all(-1 <= float(value) <= 1 for value in road.loc["ROAD combined (higher is better)"])
    for paper in ("Petsiuk et al.", "Chattopadhyay et al.", "Rong et al.", "Adebayo et al."):
        assert any(paper in caption.value for caption in page.caption)


def test_the_scores_a_random_map_wins_say_why_beside_the_table(page):
    """Issue 32, item 5: on the cat, random maps lose less probability than Grad-CAM's map (Average Drop), which
    looks like random maps win; the sentence under the table says what these scores reward."""
    scores = shown_scores(page)
    assert scores.random.average_drop < scores.average_drop  # what a reader sees in the table: random "wins"
    beside = [c.value for c in page.caption if c.value.startswith("Average Drop and Increase in Confidence score")]
    assert len(beside) == 1, [c.value for c in page.caption]
    assert "Both reward a map that keeps the photo in view, not one that points precisely" in beside[0]
    assert "a random map can win on these two; read them next to deletion and insertion" in beside[0]
    assert "Chattopadhyay et al." in beside[0]


def test_nothing_is_computed_twice(page):
    before = dict(engine_calls)
    run(page)
    assert dict(engine_calls) == before
    assert before["faithfulness"] == 1 and before["road"] == 1


def test_methods_are_ranked_on_request(page):
    assert len(page.table) == 2  # not before the click
    button(page, "Rank every method").click()
    run(page)
    ranked = page.table[2].value  # st.table: every row shown, the random one too, without scrolling inside it
    assert len(ranked) == len(ON_A_CNN) + 1 and list(ranked.index) == list(range(1, len(ON_A_CNN) + 2))
    assert "Random maps (mean of 3)" in list(ranked["method"])
    differences = [float(v) for v in ranked["insertion - deletion"]]
    assert differences == sorted(differences, reverse=True)
    assert any(name.startswith("➜ ") for name in ranked["method"])  # the current method is marked
    # The same baseline and steps as the table above: Grad-CAM's row is the map's own score.
    scores = shown_scores(page)
    mine = ranked[ranked["method"] == "➜ Grad-CAM"].iloc[0]
    deletion, insertion = (float(v) for v in mine["deletion / insertion AUC"].split(" / "))
    assert deletion == pytest.approx(scores.deletion.auc, abs=6e-4)
    assert insertion == pytest.approx(scores.insertion.auc, abs=6e-4)
    # Faithfulness is not sanity: methods known to fail the sanity check are marked wherever they rank.
    marks = dict(zip(ranked["method"], ranked["sanity check"]))
    ranked_here = [m for m in gradcam.METHODS.values() if m.kind != "attention"]  # rollout needs a transformer
    for method in ranked_here:
        shown = marks.get(method.display_name, marks.get("➜ " + method.display_name))
        assert shown == ("known to fail (see below)" if method.known_sanity_failure else "not run here")
    assert marks["Random maps (mean of 3)"] == "(a baseline)"
    assert any("faithfulness to this photo" in c.value for c in page.caption)
    known = [m.display_name for m in gradcam.METHODS.values() if m.known_sanity_failure]
    assert any(w.value.startswith("Known to fail the sanity check: ") and all(n in w.value for n in known)
               and "Adebayo et al. 2018" in w.value for w in page.warning)
    run(page)  # the table stays, from the cache
    assert len(page.table) == 3
    assert engine_calls["method_score"] == len(ON_A_CNN) and engine_calls["random_score"] == 1


def test_the_sanity_strip_shows_each_stage_and_the_verdict(page):
    button(page, "Run the sanity check").click()
    run(page)
    stages = gradcam.trust.sanity.stages(model_cache.builtin_model(gradcam.DEFAULT_MODEL))
    strip = [image for image in page.image if "rank correlation" in image.captions[0] or
             "Trained model" in image.captions[0]]
    assert len(strip) == len(stages) + 1
    assert strip[1].captions[0].startswith("**random down to predictions**")
    verdicts = [s.value for s in page.success if s.value.startswith("Passed")]
    assert len(verdicts) == 1 and "Grad-CAM" in verdicts[0]
    judged = [image for image in strip if "judged here" in image.captions[0]]
    assert len(judged) == 1 and judged[0] is strip[2]  # the step with the top two stages random
    assert any(c.value.startswith("The verdict reads step 2 of") for c in page.caption)
    assert engine_calls["sanity_check"] == 1


def test_one_click_shows_guided_backprop_failing_side_by_side(page):
    button(page, "Compare with Guided Backpropagation").click()
    run(page)
    assert any(e.value.startswith("Failed") and "Guided Backpropagation" in e.value for e in page.error)
    assert engine_calls["sanity_check"] == 2
