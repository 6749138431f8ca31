"""The Trust page's verdict cases through AppTest, on small hand-built models
given to the session as an uploaded model would be (seconds, not Lite0): a model
whose output never moves, Score-CAM scored on the budgeted map Explore shows."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

import gradcam
from dashboard.parts import trust_scores
from gradcam.engine.methods import SCORECAM_DEFAULT_CHANNELS
from synthetic import constant_model, wide_model
from dashboard.runtime import explanation_cache

PAGE = "trust"


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def with_model(key: str, model, method: str = "gradcam", link: dict | None = None) -> AppTest:
    at = page_app(PAGE, default_timeout=300)
    at.query_params.update(link or {})
    at.session_state["model_key"] = key  # what Explore leaves after an upload
    at.session_state["own_models"] = {key: model}
    at.session_state["chosen"] = {"method": method}
    return run(at)


def test_a_model_whose_output_never_moves_gets_no_verdict():
    at = with_model("own:constant", constant_model())
    said = [box.value for box in at.info]
    assert any(s.startswith("This test cannot judge this map") for s in said), said
    assert not at.success and not any("better than random" in w.value.lower() for w in at.warning)
    next(b for b in at.button if b.label.startswith("Run the sanity check")).click()
    run(at)
    assert any(s.value.startswith("This test cannot judge the Grad-CAM map: it is empty") for s in at.info)
    assert not at.error  # not "Failed"


def test_score_cam_is_scored_on_the_budgeted_map_that_explore_shows():
    model = wide_model()
    at = with_model("own:wide", model, method="scorecam")
    image = explanation_cache.display_image(at.session_state["image_hash"], at.session_state["image_data"])
    target = gradcam.predict(model, image, top=1)[0].index
    budgeted = gradcam.explain(model, image, target=target, method="scorecam", max_channels=SCORECAM_DEFAULT_CHANNELS)
    full = gradcam.explain(model, image, target=target, method="scorecam")
    assert not np.allclose(budgeted.heatmap, full.heatmap, atol=1e-3)  # the budget matters for this model
    expected = gradcam.faithfulness(model, image, budgeted, steps=trust_scores.STEPS, road=False)
    table = at.table[0].value
    assert float(table.loc["Deletion AUC (lower is better)", "This map"]) == pytest.approx(expected.deletion.auc,
                                                                                          abs=6e-4)
    assert float(table.loc["Insertion AUC (higher is better)", "This map"]) == pytest.approx(
        expected.insertion.auc, abs=6e-4)


def test_a_link_opens_the_page_with_its_baseline_ranking_and_sanity_check_shown():
    model = wide_model()
    at = with_model("own:wide", model)
    at.segmented_control(key="trust_baseline").set_value("black")
    run(at)
    next(b for b in at.button if b.label.startswith("Rank every method")).click()
    run(at)
    next(b for b in at.button if b.label.startswith("Run the sanity check")).click()
    run(at)
    link = dict(at.query_params)
    assert {k: link[k] for k in ("baseline", "rank", "sanity")} == {"baseline": "black", "rank": "1", "sanity": "1"}
    shown = with_model("own:wide", model, link=link)  # a new session opening the link: no clicks
    assert shown.segmented_control(key="trust_baseline").value == "black"
    assert len(shown.table) == 3  # scores, ROAD and the ranking
    # The verdict is shown (three random draws: this untrained model's may disagree, "Not settled", a warning).
    assert any(box.value.startswith(("Passed", "Failed", "Not settled"))
               for box in [*shown.success, *shown.error, *shown.warning])
    ranked = shown.table[2].value
    marks = dict(zip(ranked["method"], ranked["sanity check"]))
    assert marks["➜ Grad-CAM"] in ("passed here", "FAILED here")  # this session's own result, from the link
    assert any("deleted pixels become black" in c.value for c in shown.caption)


def test_presenting_walks_through_the_sections_one_at_a_time_and_a_link_opens_on_one():
    """A teacher projects the page: a link opens it presenting the ranking (section 4 of 5), already ranked on
    the black baseline; Next shows the sanity check alone, and the link follows."""
    model = wide_model()
    at = with_model("own:wide", model, link={"present": "1", "section": "4", "rank": "1", "baseline": "black"})
    assert at.toggle(key="trust_present").value is True
    assert any(m.value.startswith("**Section 4 of 5** · Which method should I believe here?") for m in at.markdown)
    assert not at.get("vega_lite_chart")  # the curves belong to section 1: not drawn, not computed
    assert len(at.table) == 1 and "Random maps (mean of 3)" in list(at.table[0].value["method"])
    assert any("deleted pixels become black" in c.value for c in at.caption)
    at.button(key="trust_next").click()
    run(at)
    assert any(m.value.startswith("**Section 5 of 5** · The sanity check") for m in at.markdown)
    assert not at.table and at.button(key="trust_next").disabled
    assert dict(at.query_params)["section"] == "5" and dict(at.query_params)["present"] == "1"
    at.toggle(key="trust_present").set_value(False)  # the whole page again, as it was: ranked, on black
    run(at)
    assert len(at.get("vega_lite_chart")) == 2 and len(at.table) == 3
    assert "present" not in dict(at.query_params) and dict(at.query_params)["baseline"] == "black"
