"""Scoring maps is bounded like explaining them (issue 16): the faithfulness check, the
deletion and insertion curves, rank_methods, the sanity check and the Batch page's AUC
refuse the review's hostile model (a 2048 x 2048 input, one 1x1 convolution of 24
filters) with one sentence before any pass, in bounded memory; an ordinary model is still scored."""

from __future__ import annotations

import time

import numpy as np
import pytest

import gradcam
from engine.test_cost import PeakMemory, photo, wide_model
from gradcam.engine import cost
from gradcam.report.batch import explain_records
from gradcam.trust.faithfulness import BATCH
from helpers import own_model

LABELS = [f"class {i}" for i in range(10)]


@pytest.fixture(scope="module")
def hostile():
    return own_model(wide_model(24), LABELS)


def refused(call) -> str:
    with PeakMemory() as memory:
        started = time.perf_counter()
        with pytest.raises(gradcam.ExplanationTooCostly) as error:
            call()
        seconds = time.perf_counter() - started
    assert seconds < 2, seconds  # the layers' shapes added up, no pass
    assert memory.grew < 200 * 2**20, memory.grew / 2**20  # one batch of 20 copies would hold gigabytes
    sentence = str(error.value)
    assert "\n" not in sentence and sentence.endswith(".") and "the limit is 2.0 GB" in sentence, sentence
    return sentence


def test_scoring_a_map_of_the_hostile_model_is_refused_before_any_pass(hostile):
    image = photo(64)
    bare = np.ones((64, 64), np.float32)  # a map made elsewhere: scoring it runs only forward batches
    # What C perturbed photos at a time hold, written out: C x 3 x the widest tensor x 4 bytes.
    widest = 2048 * 2048 * 24
    assert cost.forward_batch_bytes(hostile, BATCH) == BATCH * 3 * widest * 4
    for call in (lambda: gradcam.faithfulness(hostile, image, bare, target=0),
                 lambda: gradcam.faithfulness(hostile, image, bare, target=0, road=False, steps=2),
                 lambda: gradcam.rank_methods(hostile, image, target=0),
                 lambda: explain_records(hostile, [b"not read"], faithfulness=True)):
        sentence = refused(call)
        assert "2048 x 2048" in sentence, sentence
    assert "perturbed photos at a time" in refused(lambda: gradcam.rank_methods(hostile, image, target=0))
    assert hostile.compiled_keys() == [], "a pass was built before the refusal"


def test_a_sanity_check_whose_one_map_is_over_budget_is_refused_before_any_pass():
    # The sanity check's passes are explanations of one class, each checked as one: at 24 filters
    # one map is estimated at 1.3 GB (allowed); at 48, at 2.5 GB.
    wider = own_model(wide_model(48), LABELS)
    assert "Grad-CAM" in refused(lambda: gradcam.sanity_check(wider, photo(64), target=0))
    assert wider.compiled_keys() == []


def test_an_ordinary_model_is_still_scored():
    small = own_model(wide_model(4, side=64), LABELS)
    image = photo(64)
    explanation = gradcam.explain(small, image, target=0)
    scored = gradcam.faithfulness(small, image, explanation, steps=4, road=False, seeds=1)
    assert 0.0 <= scored.deletion.auc <= 1.0 and 0.0 <= scored.insertion.auc <= 1.0
    assert cost.check_forward_batch(small, BATCH) == BATCH * 3 * (64 * 64 * 4) * 4


@pytest.mark.slow
def test_the_trust_and_report_pages_say_a_model_is_too_wide_to_score():
    """A model the dashboard accepts (its top-5 fits), whose batches of perturbed photos would not."""
    from pathlib import Path

    from tests.app.pages import page_app

    model = own_model(wide_model(12, side=1024), LABELS)
    assert cost.check_explanation(model, "gradcam", 5) < cost.memory_budget_bytes()  # Explore explains it
    at = page_app("trust", default_timeout=300)
    at.session_state["model_key"] = "own:wide"  # what Explore leaves after an upload
    at.session_state["own_models"] = {"own:wide": model}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value.replace("\\", "") for e in at.error]
    assert len(errors) == 1 and "Scoring a map on this 1024 x 1024 model" in errors[0], errors
    assert any(h.value.startswith("Faithfulness") for h in at.header)  # the page up to there is drawn
    # The Report page with its scores asked for: made without them, and says why.
    report = page_app("report", default_timeout=300)
    report.session_state["model_key"] = "own:wide"
    report.session_state["own_models"] = {"own:wide": model}
    report.session_state["report_trust"] = True
    report.run()
    assert not report.exception and not report.error, [e.value for e in report.exception or report.error]
    warned = [w.value.replace("\\", "") for w in report.warning]
    assert any("Scoring a map on this 1024 x 1024 model" in w and "made without them" in w for w in warned), warned
