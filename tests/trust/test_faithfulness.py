"""Faithfulness scores: deletion and insertion curves, ROAD, Average Drop, each
checked against what a person would compute by hand, on Lite0 and real photos."""

from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageFilter

import gradcam
from helpers import photo
from gradcam.trust.faithfulness import BATCH, ROAD_NOISE, centred_blob, preview, road
from gradcam.engine.model import Model

FAST = dict(road=False, seeds=1)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def probability(model, pixels: np.ndarray, target: int) -> float:
    """The target's probability from Keras itself (Lite0 ends in a softmax), on 0..255 pixels."""
    from gradcam.engine.model import PREPROCESSING

    x = PREPROCESSING[model.preprocessing](pixels[None].astype(np.float32))
    return float(np.asarray(model.keras(x, training=False), np.float64)[0, target])


def network_pixels(model, image):
    size = model.input_size[::-1]
    return np.asarray(image.convert("RGB").resize(size, Image.BICUBIC), np.float32)


@pytest.fixture(scope="module")
def coffee_scores(lite0, coffee):
    explanation = gradcam.explain(lite0, coffee, target="espresso")
    return explanation, gradcam.faithfulness(lite0, coffee, explanation, steps=10, **FAST)


def test_curves_start_and_end_where_they_must(lite0, coffee, coffee_scores):
    explanation, scores = coffee_scores
    on_photo = next(p.probability for p in explanation.predictions if p.index == explanation.target)
    assert scores.probability == pytest.approx(on_photo, abs=1e-5)
    assert scores.deletion.scores[0] == pytest.approx(on_photo, abs=1e-5)  # nothing deleted yet: the photo
    assert scores.insertion.scores[-1] == pytest.approx(on_photo, abs=1e-5)  # everything inserted: the photo
    # The other ends are the baseline, a strongly blurred copy, whatever the map.
    blurred = np.asarray(coffee.resize(lite0.input_size[::-1], Image.BICUBIC).filter(
        ImageFilter.GaussianBlur(0.05 * 224)), np.float32)
    assert scores.deletion.scores[-1] == pytest.approx(probability(lite0, blurred, explanation.target), abs=1e-4)
    assert scores.insertion.scores[0] == scores.deletion.scores[-1]
    for curve in (scores.deletion, scores.insertion, scores.random.deletion, scores.blob.insertion):
        assert np.array_equal(curve.fractions, np.linspace(0, 1, 11))
        assert 0.0 <= curve.auc <= 1.0
        assert curve.auc == pytest.approx(np.trapezoid(curve.scores, curve.fractions))


def test_a_deletion_step_equals_the_same_step_done_by_hand(lite0, coffee):
    """A bare map (random values: no ties to break): at 30% the 30% hottest pixels
    of the network's input are replaced by the blurred copy, and the model scores that."""
    height, width = coffee.height, coffee.width
    blob = np.random.default_rng(1).random((height, width)).astype(np.float32)
    scores = gradcam.faithfulness(lite0, coffee, blob, target="espresso", steps=10, **FAST)
    pixels = network_pixels(lite0, coffee)
    blurred = np.asarray(Image.fromarray(pixels.astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.05 * 224)),
                         np.float32)
    small_blob = np.asarray(Image.fromarray(blob).resize((224, 224), Image.BILINEAR))
    hottest = np.argsort(-small_blob.reshape(-1), kind="stable")[: round(0.3 * 224 * 224)]
    deleted = pixels.reshape(-1, 3).copy()
    deleted[hottest] = blurred.reshape(-1, 3)[hottest]
    inserted = blurred.reshape(-1, 3).copy()
    inserted[hottest] = pixels.reshape(-1, 3)[hottest]
    target = scores.target
    assert scores.deletion.scores[3] == pytest.approx(probability(lite0, deleted.reshape(224, 224, 3), target), abs=1e-4)
    assert scores.insertion.scores[3] == pytest.approx(probability(lite0, inserted.reshape(224, 224, 3), target),
                                                       abs=1e-4)


def test_every_step_goes_through_the_network_in_batches(lite0, coffee):
    calls = []
    gradcam.faithfulness(lite0, coffee, centred_blob(coffee.height, coffee.width), target=967, steps=8, **FAST)
    forward = lite0._compiled["forward_batch"]
    lite0._compiled["forward_batch"] = lambda x: calls.append(len(x)) or forward(x)
    try:
        gradcam.faithfulness(lite0, coffee, centred_blob(coffee.height, coffee.width), target=967, steps=50, **FAST)
    finally:
        lite0._compiled["forward_batch"] = forward
    # Per map (own, one random, blob): 2 x 49 inner steps and one masked photo; plus the photo and baseline once.
    assert sum(calls) == 2 + 3 * (2 * 49 + 1)
    assert max(calls) == BATCH and calls.count(BATCH) == 3 * (98 // BATCH)


@pytest.mark.parametrize("name, target", [("coffee", "espresso"), ("chelsea", None), ("cat-and-coffee.jpg", "espresso")])
def test_gradcam_beats_random_maps_on_real_photos(lite0, name, target):
    image = gradcam.load_image(SAMPLES / name) if name.endswith(".jpg") else photo(name)
    explanation = gradcam.explain(lite0, image, target=target)
    scores = gradcam.faithfulness(lite0, image, explanation, steps=20, road=False)
    assert scores.deletion.auc < scores.random.deletion.auc
    assert scores.insertion.auc > scores.random.insertion.auc
    # Beating random maps is not the whole verdict: the centred blob is weighed too. On the cat
    # (chelsea) the blob does better on both curves, and the sentence must say so.
    blob_wins = scores.blob.deletion.auc <= scores.deletion.auc and scores.blob.insertion.auc >= scores.insertion.auc
    assert scores.verdict.startswith("Beats random maps, but not a map that only says 'the middle'" if blob_wins
                                     else "Better than random")
    assert f"{scores.deletion.auc:.3f} vs {scores.random.deletion.auc:.3f}" in scores.verdict


def test_average_drop_and_increase_in_confidence_follow_the_paper(lite0, coffee, coffee_scores):
    """Chattopadhyay et al.: Y = p(photo), O = p(photo x map); drop = max(0, Y - O) / Y x 100."""
    explanation, scores = coffee_scores
    pixels = network_pixels(lite0, coffee)
    small_map = np.asarray(Image.fromarray(explanation.heatmap).resize((224, 224), Image.BILINEAR))
    masked = probability(lite0, pixels * (small_map / small_map.max())[..., None], explanation.target)
    y = scores.probability
    assert scores.average_drop == pytest.approx(max(0.0, y - masked) / y * 100, abs=1e-2)
    assert scores.increase_in_confidence == float(masked > y)
    assert 0 <= scores.random.average_drop <= 100 and 0 <= scores.blob.average_drop <= 100


# --- ROAD against a literal reference --------------------------------------------


def reference_imputation(img, keep, noise_rng):
    """pytorch-grad-cam's NoisyLinearImputer written out pixel by pixel: for every
    removed pixel, -(sum of its inside neighbours' weights) x itself + sum over
    removed neighbours of weight x neighbour = -(sum over kept neighbours of
    weight x value); then noise on the removed pixels."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    weights = {(1, 1): 1 / 12, (0, 1): 1 / 6, (-1, 1): 1 / 12, (1, -1): 1 / 12, (0, -1): 1 / 6,
               (-1, -1): 1 / 12, (1, 0): 1 / 6, (-1, 0): 1 / 6}
    height, width, channels = img.shape
    removed = [(r, c) for r in range(height) for c in range(width) if not keep[r, c]]
    number = {pixel: i for i, pixel in enumerate(removed)}
    a = lil_matrix((len(removed), len(removed)))
    b = np.zeros((len(removed), channels))
    for i, (r, c) in enumerate(removed):
        total = 0.0
        for (dr, dc), w in weights.items():
            rr, cc = r + dr, c + dc
            if not (0 <= rr < height and 0 <= cc < width):
                continue
            total += w
            if keep[rr, cc]:
                b[i] -= w * img[rr, cc]
            else:
                a[i, number[(rr, cc)]] = w
        a[i, i] = -total
    solution = spsolve(a.tocsc(), b).reshape(len(removed), channels)
    solution = solution + ROAD_NOISE * noise_rng.standard_normal(solution.shape)
    out = img.astype(np.float64).copy()
    for i, (r, c) in enumerate(removed):
        out[r, c] = solution[i]
    return out.astype(np.float32)


def test_road_equals_a_literal_reference_on_a_small_model():
    keras.utils.set_random_seed(11)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    net = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    model = Model(name="small", keras=net, input_size=(12, 12), labels=list("abcd"), preprocessing="0..1")
    rng = np.random.default_rng(5)
    x = rng.random((12, 12, 3)).astype(np.float32)
    cam = rng.random((12, 12)).astype(np.float32)
    target = 2

    def p(img):
        return float(np.asarray(net(img[None]))[0, target])

    noise = np.random.default_rng(0)  # the engine's seed 0, draws in the same order: MoRF 10..90, then LeRF
    morf, lerf = [], []
    for p_ in range(10, 100, 10):  # RemoveMostRelevantFirst: keep the pixels below the percentile
        morf.append(p(reference_imputation(x, cam < np.percentile(cam, p_), noise)) - p(x))
    for p_ in range(10, 100, 10):  # RemoveLeastRelevantFirst: the same on 1 - map
        lerf.append(p(reference_imputation(x, (1 - cam) < np.percentile(1 - cam, p_), noise)) - p(x))
    expected = (np.mean(lerf) - np.mean(morf)) / 2  # ROADCombined

    found = road(model, x, cam, target)
    assert np.allclose(found.most_relevant_first, morf, atol=1e-6)
    assert np.allclose(found.least_relevant_first, lerf, atol=1e-6)
    assert found.combined == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_road_on_lite0_favours_grad_cam_over_a_random_map(lite0, coffee):
    explanation = gradcam.explain(lite0, coffee, target="espresso")
    scores = gradcam.faithfulness(lite0, coffee, explanation, steps=4, seeds=1)
    assert scores.road.percentiles == (10, 20, 30, 40, 50, 60, 70, 80, 90)
    assert scores.road.combined > scores.random.road.combined
    assert scores.road.combined == pytest.approx(
        (scores.road.least_relevant_first.mean() - scores.road.most_relevant_first.mean()) / 2)


# --- every method, every baseline, and bad input ---------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", [k for k, m in gradcam.METHODS.items() if m.kind != "attention"])  # a CNN
def test_every_method_can_be_scored(lite0, cat, method):
    explanation = gradcam.explain(lite0, cat, method=method)
    scores = gradcam.faithfulness(lite0, cat, explanation, steps=4, **FAST)
    assert scores.target == explanation.target
    assert 0 <= scores.deletion.auc <= 1 and 0 <= scores.insertion.auc <= 1
    assert scores.verdict


@pytest.mark.parametrize("baseline", ["mean", "black"])
def test_other_baselines_are_what_they_say(lite0, coffee, baseline):
    scores = gradcam.faithfulness(lite0, coffee, centred_blob(coffee.height, coffee.width), target=967, steps=4,
                                  baseline=baseline, **FAST)
    pixels = network_pixels(lite0, coffee)
    fill = np.broadcast_to(pixels.mean(axis=(0, 1)), pixels.shape) if baseline == "mean" else np.zeros_like(pixels)
    assert scores.baseline == baseline
    assert scores.deletion.scores[-1] == pytest.approx(probability(lite0, np.array(fill), 967), abs=1e-4)


@pytest.mark.parametrize("kwargs, sentence", [
    (dict(baseline="grey"), 'Unknown baseline "grey"; choose one of: blur, mean, black.'),
    (dict(steps=1), "steps must be a whole number from 2 to 1000."),
    (dict(steps=10**9), "steps must be a whole number from 2 to 1000."),
    (dict(target=None), "A bare map needs target= (the class it explains)."),
    (dict(heatmap=np.zeros((10, 10))), "The map is 10x10 but the image is 400x300; give a map at the image's size."),
    (dict(heatmap=np.full((300, 400), np.nan)), "The map has NaN or infinite values."),
    (dict(target="no such class"), None),
])
def test_bad_arguments_get_one_sentence(lite0, kwargs, sentence):
    image = Image.new("RGB", (400, 300), "gray")
    heatmap = kwargs.pop("heatmap", np.ones((300, 400), np.float32))
    kwargs.setdefault("target", 1)
    with pytest.raises(ValueError) as raised:
        gradcam.faithfulness(lite0, image, heatmap, **kwargs)
    message = str(raised.value)
    assert "\n" not in message and message.endswith(".")
    if sentence:
        assert message == sentence


@pytest.mark.slow
def test_methods_are_ranked_by_insertion_minus_deletion_next_to_random_maps(lite0, coffee):
    seen = []
    rows = gradcam.rank_methods(lite0, coffee, target="espresso", steps=10, progress=lambda *done: seen.append(done))
    every = gradcam.methods_for(lite0)  # all but attention rollout: Lite0 is a CNN
    assert sorted(row.method for row in rows) == sorted([*every, "random"])
    assert [row.score for row in rows] == sorted((row.score for row in rows), reverse=True)
    assert seen == [(i, len(every)) for i in range(1, len(every) + 1)]
    alone = gradcam.faithfulness(lite0, coffee, gradcam.explain(lite0, coffee, target="espresso"), steps=10, **FAST)
    gradcam_row = next(row for row in rows if row.method == "gradcam")
    assert gradcam_row.deletion_auc == pytest.approx(alone.deletion.auc)
    assert gradcam_row.insertion_auc == pytest.approx(alone.insertion.auc)
    assert gradcam_row.score == pytest.approx(alone.insertion.auc - alone.deletion.auc)
    random_row = next(row for row in rows if row.method == "random")
    assert gradcam_row.score > random_row.score


def test_the_preview_shows_what_deleting_means(lite0, coffee):
    blob = centred_blob(coffee.height, coffee.width)
    frames = preview(lite0, coffee, blob, fractions=(0.0, 0.5, 1.0))
    pixels = network_pixels(lite0, coffee)
    assert [f.size for f in frames] == [(224, 224)] * 3
    assert np.array_equal(np.asarray(frames[0]), pixels.astype(np.uint8))  # nothing deleted: the photo
    middle = np.asarray(frames[1], np.float32)
    assert not np.array_equal(middle[112, 112], pixels[112, 112])  # the centre (the blob's peak) is gone first
    assert np.array_equal(middle[0, 0], pixels[0, 0])  # a corner is still there at 50%
