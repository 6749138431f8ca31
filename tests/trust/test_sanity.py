"""The sanity check (cascading model randomization): Grad-CAM's map changes when
the model's weights are random; the shared model is never touched; other
threads' explanations are unaffected; the clone is freed."""

import gc
import os
import threading
import weakref

import keras
import numpy as np
import pytest

import gradcam
from gradcam.trust import sanity
from gradcam.engine.model import Model, sha256_of_weights
from gradcam.trust.sanity import PASS_THRESHOLD, judged_step, rank_correlation, ssim, stages

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def coffee_check(lite0, coffee):
    """One check on Lite0, watching the clone it makes and the shared model's weights."""
    before = sha256_of_weights(lite0)
    clones = []
    make_clone = sanity.clone

    def watched_clone(model):
        twin = make_clone(model)
        clones.append(weakref.ref(twin.keras))
        return twin

    sanity.clone = watched_clone
    try:
        check = gradcam.sanity_check(lite0, coffee, target="espresso")
    finally:
        sanity.clone = make_clone
    gc.collect()
    return check, before, clones


def test_grad_cam_changes_once_the_top_of_the_network_is_random(lite0, coffee_check):
    check, _, _ = coffee_check
    groups = stages(lite0)
    assert [s.randomized_down_to for s in check.steps] == [group[0][0] for group in groups]
    assert check.steps[0].randomized_down_to == "predictions"  # the logits first
    assert check.steps[-1].randomized_down_to == "stem_conv"  # the last step: the whole network random
    judged = check.steps[judged_step(check.steps)]
    assert judged.rank_correlation < PASS_THRESHOLD
    assert check.passed and check.verdict.startswith("Passed")
    assert f"{judged.rank_correlation:.2f}" in check.verdict
    assert check.label == "espresso" and check.method == "gradcam" and check.layer == "top_activation"
    assert all(-1 <= s.rank_correlation <= 1 and -1 <= s.ssim <= 1 for s in check.steps)
    assert all(s.raw.shape == check.original.shape for s in check.steps)


def test_the_stages_cover_every_weighted_layer_once_from_the_top(lite0):
    groups = stages(lite0)
    listed = [path for group in groups for path, _ in group]
    weighted = [path for path, layer in gradcam.engine.graph.walk_layers(lite0.keras) if layer.weights]
    assert sorted(listed) == sorted(weighted) and len(set(listed)) == len(listed)
    assert [path for group in reversed(groups) for path, _ in group] == weighted  # top first means reversed order
    assert len(groups) == len(gradcam.stage_layers(lite0)) + 1  # the logits, then one group per resolution


def test_the_shared_model_is_byte_identical_and_the_clone_is_freed(lite0, coffee_check):
    check, before, clones = coffee_check
    assert sha256_of_weights(lite0) == before
    assert len(clones) == 1 and clones[0]() is None  # nothing keeps the randomized clone alive


def test_a_check_in_one_thread_leaves_another_threads_maps_identical(lite0, cat, coffee):
    requests = [(cat, None, "gradcam"), (coffee, 967, "gradcam"), (cat, 285, "gradcam++")]
    alone = [gradcam.explain(lite0, image, target=target, method=method).raw for image, target, method in requests]
    during, done = [], threading.Event()

    def check():
        try:
            gradcam.sanity_check(lite0, cat)
        finally:
            done.set()

    worker = threading.Thread(target=check)
    worker.start()
    while not done.is_set() or not during:
        for (image, target, method), expected in zip(requests, alone):
            during.append((gradcam.explain(lite0, image, target=target, method=method).raw, expected))
    worker.join()
    assert len(during) >= 3
    for got, expected in during:
        assert np.allclose(got, expected, rtol=1e-4, atol=1e-6 * max(1.0, float(expected.max())))


def nested_model():
    """A transfer-learning shape: a nested base model, a pooling and a softmax head."""
    keras.utils.set_random_seed(21)
    base_in = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(base_in)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv2")(x)
    base = keras.Model(base_in, x, name="base")
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs))
    net = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(pooled))
    return Model(name="nested", keras=net, input_size=(32, 32), labels=["a", "b", "c"], preprocessing="0..1")


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_nested_models_work(noise_image):
    model = nested_model()
    groups = stages(model)
    assert [[path for path, _ in group] for group in groups] == [["head"], ["base/conv2"], ["base/conv1", "base/bn1"]]
    before = sha256_of_weights(model)
    check = gradcam.sanity_check(model, noise_image, layer="base/conv2")
    assert len(check.steps) == 3 and check.layer == "base/conv2"
    assert sha256_of_weights(model) == before


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_stays_bounded_over_repeated_checks(noise_image):
    model = nested_model()
    for _ in range(3):
        gradcam.sanity_check(model, noise_image)
    gc.collect()
    before = resident_mb()
    for _ in range(15):
        gradcam.sanity_check(model, noise_image)
    gc.collect()
    assert resident_mb() - before < 40  # 15 clones kept alive would hold their graphs and traced functions


def test_similarities_are_the_textbook_ones():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    a = rng.random((40, 50))
    b = a + 0.3 * rng.standard_normal(a.shape)  # no ties, so ranks are plain positions
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, data_range=1.0), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)
    ranks_a, ranks_b = np.argsort(np.argsort(a.ravel())), np.argsort(np.argsort(b.ravel()))
    assert rank_correlation(a, b) == pytest.approx(np.corrcoef(ranks_a, ranks_b)[0, 1])
    assert rank_correlation(a, np.zeros_like(a)) == 0.0  # an empty map keeps nothing of the original


def test_guided_backprop_fails_where_grad_cam_passes(lite0, coffee, coffee_check):
    """Adebayo et al.'s finding, on Lite0: with the top of the network random,
    Guided Backpropagation's map hardly changes."""
    guided = gradcam.sanity_check(lite0, coffee, target="espresso", method="guided-backprop")
    judged = judged_step(guided.steps)
    assert guided.steps[judged].rank_correlation >= PASS_THRESHOLD > coffee_check[0].steps[judged].rank_correlation
    assert not guided.passed and guided.verdict.startswith("Failed")


def test_unknown_method_is_one_sentence(lite0, cat):
    with pytest.raises(ValueError, match=r'^Unknown method "magic"; choose one of: gradcam, gradcam\+\+'):
        gradcam.sanity_check(lite0, cat, method="magic")


def test_a_model_keras_cannot_copy_gets_one_sentence(noise_image, monkeypatch):
    model = nested_model()

    def refuse(*args, **kwargs):
        raise ValueError("Expected `model` argument to be a functional `Model` instance, but got a subclassed model")

    monkeypatch.setattr(keras.models, "clone_model", refuse)
    with pytest.raises(ValueError, match=r"^This model cannot be copied .* cannot run on it\.$"):
        gradcam.sanity_check(model, noise_image)


# --- several random draws (issue 32, item 4) ----------------------------------------


def test_the_verdict_reads_three_random_draws_and_gives_their_range(coffee_check):
    check, _, _ = coffee_check
    assert len(check.draws) == sanity.DRAWS == 3
    assert check.draws[0] == check.steps[judged_step(check.steps)].rank_correlation  # the strip is the first draw
    assert len(set(check.draws)) == 3  # three different sets of random weights, not one drawn three times
    low, high = min(check.draws), max(check.draws)
    assert high < PASS_THRESHOLD and check.passed and check.outcome == "passed"
    assert f"from {low:.2f} to {high:.2f} over 3 random draws" in check.verdict
    assert all(f"{value:.2f}" in check.verdict for value in check.draws)
    assert "drawn at random 3 times" in sanity.how_judged(check)
    assert check.summary()["draws"] == list(check.draws) and check.summary()["outcome"] == "passed"


def test_the_verdict_follows_the_range_of_the_draws():
    passed = sanity.verdict("Grad-CAM", [0.3, 0.1, -0.2], 0.5)
    failed = sanity.verdict("Guided Backpropagation", [0.93, 0.91, 0.93], 0.5)
    split = sanity.verdict("Eigen-CAM", [0.86, 0.90, -0.81], 0.5)
    assert passed.startswith("Passed") and "from -0.20 to 0.30 over 3 random draws" in passed
    assert failed.startswith("Failed") and "from 0.91 to 0.93" in failed
    # One draw on the other side of the threshold is enough for "not settled", never for "passed".
    assert split.startswith("Not settled") and "from -0.81 to 0.90" in split and "does not show" in split


def test_further_draws_leave_the_first_draws_steps_as_they_were(noise_image, monkeypatch):
    model = nested_model()
    three = gradcam.sanity_check(model, noise_image, layer="base/conv2")
    monkeypatch.setattr(sanity, "DRAWS", 1)
    one = gradcam.sanity_check(model, noise_image, layer="base/conv2")
    assert len(one.draws) == 1 and len(three.draws) == 3
    assert [s.rank_correlation for s in one.steps] == pytest.approx([s.rank_correlation for s in three.steps])
    assert three.draws[0] == pytest.approx(one.draws[0])
    again = gradcam.sanity_check(model, noise_image, layer="base/conv2")
    assert again.draws == one.draws  # seeded: the same draws on every run
