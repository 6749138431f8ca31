"""Complexity, Coherency and ARCC (Domeniconi et al. 2026) against their formulas
written out here, next to their random baselines; the metrics registry says what
every score is."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import gradcam
from gradcam.engine.baselines import map_at_input, network_pixels, prepared_pixels
from gradcam.trust.metrics import METRICS, arcc, metric


@pytest.fixture(scope="module")
def espresso(lite0, coffee):
    explanation = gradcam.explain(lite0, coffee, target="espresso")
    return explanation, gradcam.faithfulness(lite0, coffee, explanation, steps=8)


def unit(m):
    m = np.asarray(m, np.float64) - np.min(m)
    return m / (1e-7 + m.max())


def gradcam_at_input(lite0, x, class_index):
    """Grad-CAM the textbook way on a prepared input: a sub-model to (A, pooled), the logit
    by hand; then as pytorch-grad-cam's BaseCAM returns it: ReLU, scaled, upsampled, scaled."""
    keras_model = lite0.keras
    dense = keras_model.layers[-1]
    sub = keras.Model(keras_model.inputs, [keras_model.get_layer("top_activation").output, dense.input])
    with tf.GradientTape() as tape:
        features, pooled = sub(tf.constant(x, tf.float32))
        logit = (tf.matmul(pooled, dense.kernel) + dense.bias)[0, class_index]
    G = tape.gradient(logit, features)[0].numpy()
    cam = np.maximum((features[0].numpy() * G.mean(axis=(0, 1))).sum(-1), 0)
    up = tf.image.resize(unit(cam)[None, :, :, None].astype(np.float32), (224, 224), method="bilinear")
    return unit(up.numpy()[0, :, :, 0])


def pearson(a, b):
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_complexity_coherency_and_arcc_follow_their_formulas(lite0, coffee, espresso):
    explanation, scores = espresso
    saliency = unit(map_at_input(explanation.heatmap, 224, 224))
    assert scores.complexity == pytest.approx(saliency.mean(), abs=1e-6)  # the L1 norm over the pixels

    x = prepared_pixels(lite0, network_pixels(lite0, coffee))[None] * saliency[None, :, :, None]
    remade = gradcam_at_input(lite0, x, explanation.target)
    assert scores.coherency == pytest.approx((pearson(remade, saliency) + 1) / 2, abs=1e-3)

    road = scores.road
    keep = [road.percentiles.index(p) for p in (20, 40, 60, 80)]
    road_arcc = (road.least_relevant_first[keep].mean() - road.most_relevant_first[keep].mean()) / 2
    road_unit = min(max(2 * road_arcc, 0.0), 1.0)
    expected = 3 / (1 / scores.coherency + 1 / (1 - scores.complexity) + 1 / road_unit)
    assert scores.arcc == pytest.approx(expected, rel=1e-5)
    assert 0 < scores.arcc < 1


def test_every_new_score_has_its_random_baseline_and_grad_cam_beats_it(espresso):
    _, scores = espresso
    for key in ("complexity", "coherency", "arcc"):
        assert scores.random.value(key) is not None and scores.blob.value(key) is not None, key
    # Grad-CAM on the cup: a compact map (random maps light up about half the photo) that the
    # method draws again on the photo it kept, which a random map's method run does not.
    assert scores.complexity < scores.random.complexity
    assert scores.coherency > scores.random.coherency
    assert scores.arcc > scores.random.arcc
    assert set(scores.numbers()["map"]) == set(METRICS)


def test_a_bare_map_has_complexity_but_no_coherency(lite0, coffee):
    blob = np.zeros((coffee.height, coffee.width), np.float32)
    blob[100:300, 150:450] = 1.0
    scores = gradcam.faithfulness(lite0, coffee, blob, target=967, steps=4, road=False, seeds=1)
    assert scores.complexity == pytest.approx(unit(map_at_input(blob, 224, 224)).mean(), abs=1e-6)
    assert scores.coherency is None and scores.arcc is None  # no method to run again


def test_arcc_is_a_harmonic_mean_that_any_zero_sinks():
    assert arcc(1.0, 0.0, 0.5) == pytest.approx(1.0, abs=1e-6)  # ROAD 0.5 -> 1 after doubling
    assert arcc(0.5, 0.5, 0.25) == pytest.approx(0.5, abs=1e-6)
    assert arcc(1.0, 0.0, -0.2) < 1e-6  # a negative ROAD clips to zero: the harmonic mean follows


def test_the_registry_says_what_each_score_is():
    assert list(METRICS) == ["deletion_auc", "insertion_auc", "road_combined", "average_drop",
                             "increase_in_confidence", "complexity", "coherency", "arcc"]
    assert gradcam.METRICS is METRICS
    for key, entry in METRICS.items():
        assert entry.name == key and entry.paper and entry.computed and entry.random_baseline
        assert entry.higher in ("better", "worse", "yes")
    assert METRICS["deletion_auc"].title == "Deletion AUC (lower is better)"
    assert METRICS["increase_in_confidence"].title == "Increase in Confidence (yes or no)"
    with pytest.raises(ValueError, match='Unknown metric "auc"'):
        metric("auc")


def test_a_bare_map_named_with_its_method_gets_coherency_too(lite0, coffee, espresso):
    explanation, scores = espresso
    bare = gradcam.faithfulness(lite0, coffee, explanation.heatmap, target=explanation.target, steps=8,
                                method="gradcam", layer="top_activation", resolution=explanation.raw.shape)
    assert bare.coherency == pytest.approx(scores.coherency, abs=1e-6)
    assert bare.arcc == pytest.approx(scores.arcc, abs=1e-6)
