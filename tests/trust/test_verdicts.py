"""A verdict never says more than the evidence: small hand-built models whose
answer is known, so each verdict case is checked exactly (and in seconds)."""

import numpy as np
import pytest
from PIL import Image

import gradcam
from synthetic import SIDE, centre_reader, constant_model, gaussian
from gradcam.trust import faithfulness as f
from gradcam.trust.sanity import how_judged


@pytest.fixture(scope="module")
def white():
    return Image.new("RGB", (SIDE, SIDE), (255, 255, 255))


@pytest.fixture(scope="module")
def middle():
    return centre_reader()


def score(model, image, heatmap, target=0, **options):
    return f.faithfulness(model, image, heatmap.astype(np.float32), target=target, steps=16, baseline="black",
                          road=False, resolution=(8, 8), **options)


def test_an_empty_map_is_not_judged(middle, white):
    scores = score(middle, white, np.zeros((SIDE, SIDE)))
    assert scores.judgement == f.CANNOT_JUDGE
    assert scores.verdict.startswith("This test cannot judge this map: it is empty")
    assert "random" not in scores.verdict.split(":")[0]  # no "better/no better than random" claim


def test_a_model_whose_output_never_moves_is_not_judged(white):
    model = constant_model()
    # Its own Grad-CAM map is empty (no gradient reaches the layer) ...
    explanation = gradcam.explain(model, white, target=0, layer="conv")
    assert explanation.no_positive_evidence
    assert gradcam.faithfulness(model, white, explanation, steps=8, road=False, seeds=1).judgement == f.CANNOT_JUDGE
    # ... and even a map with a clear ranking cannot be judged: softmax(0, 0) is 0.5 whatever is deleted.
    scores = score(model, white, gaussian(8, 8, 4))
    assert scores.probability == pytest.approx(0.5)
    assert scores.judgement == f.CANNOT_JUDGE
    assert "probability stays within 0.000 of 0.500" in scores.verdict


def test_a_map_that_finds_the_middle_only_as_well_as_the_blob_says_so(middle, white):
    # A blob off to one side overlaps the middle: better than random, worse than the centred blob.
    scores = score(middle, white, gaussian(10, 10, 8))
    assert scores.deletion.auc < scores.random.deletion.auc and scores.insertion.auc > scores.random.insertion.auc
    assert scores.blob.deletion.auc < scores.deletion.auc and scores.blob.insertion.auc > scores.insertion.auc
    assert scores.judgement == f.BLOB_AS_GOOD
    assert scores.verdict.startswith("Beats random maps, but not a map that only says 'the middle'")
    assert f"{scores.blob.deletion.auc:.3f} for a centred blob" in scores.verdict


def test_a_map_that_beats_random_and_the_blob_is_better(white):
    # The model reads the top-left corner; the map points there; the blob points at the middle.
    model = centre_reader()
    kernel, bias = model.keras.get_layer("logits").get_weights()
    corner = gaussian(6, 6, 4)
    kernel[:, 0] = corner.reshape(-1) * 6.0 / (3 * corner.sum())
    model.keras.get_layer("logits").set_weights([kernel, bias])
    scores = score(model, white, corner)
    assert scores.judgement == f.BETTER
    assert scores.verdict.startswith("Better than random and than a centred blob")


def test_a_map_pointing_away_from_what_the_model_reads_is_no_better_than_random(middle, white):
    corners = 1.0 - gaussian((SIDE - 1) / 2, (SIDE - 1) / 2, SIDE / 4)
    scores = score(middle, white, corners)
    assert scores.judgement == f.NOT_BETTER
    assert scores.verdict.startswith("No better than random")


def test_the_numbers_say_how_they_were_measured(middle, white):
    numbers = score(middle, white, gaussian(10, 10, 8)).numbers()
    assert numbers["baseline"] == "black" and numbers["steps"] == 16 and numbers["judgement"] == f.BLOB_AS_GOOD


def test_an_empty_map_is_not_sanity_checked(white):
    check = gradcam.sanity_check(constant_model(), white, target=0, layer="conv")
    assert not check.judged and not check.passed and check.steps == []
    assert check.verdict.startswith("This test cannot judge the Grad-CAM map: it is empty")
    assert how_judged(check) == "No step was judged: the original map is empty."
