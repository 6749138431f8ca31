"""Every CAM method equals its paper's formula written out plainly here, on the real
Lite0 weights and on a nested transfer-learning model; none changes the cached
model, retraces per photo or class, or disturbs another thread."""

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import gradcam
from helpers import nested_lite0
from gradcam.engine.methods import METHODS, SCORECAM_DEFAULT_CHANNELS
from gradcam.engine.model import Model

# Finer-CAM differentiates its own target, not the class's logit: test_methods_newer.py checks it.
GRADIENT_METHODS = [key for key, m in METHODS.items() if m.kind == "gradient" and m.target_score is None]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# --- the references: plain NumPy on tensors taken from a textbook sub-model -----------


def lite0_features_and_gradients(lite0, image, layer_name, class_index):
    """A and dy/dA for Lite0's logit of class_index, the textbook way: a sub-model to
    (A, the classifier's input), and the logit by hand (no softmax in the gradient)."""
    keras_model = lite0.keras
    dense = keras_model.layers[-1]
    sub = keras.Model(keras_model.inputs, [keras_model.get_layer(layer_name).output, dense.input])
    with tf.GradientTape() as tape:
        features, pooled = sub(lite0.prepare(image))
        logit = (tf.matmul(pooled, dense.kernel) + dense.bias)[0, class_index]
    grads = tape.gradient(logit, features)[0].numpy().astype(np.float64)
    return features[0].numpy().astype(np.float64), grads


def projection(values):
    """pytorch-grad-cam's get_2d_projection, then the sign rule: flip when the
    negative side has more energy (sum of squares) than the positive side."""
    height, width, channels = values.shape
    reshaped = values.reshape(-1, channels)
    centred = reshaped - reshaped.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    p = centred @ vt[0]
    if (np.maximum(-p, 0) ** 2).sum() > (np.maximum(p, 0) ** 2).sum():
        p = -p
    return p.reshape(height, width)


def reference_map(method, A, G):
    """Each method's formula, before the final ReLU."""
    if method == "gradcam":
        return (A * G.mean(axis=(0, 1))).sum(-1)
    if method == "gradcam++":
        g2, g3 = G**2, G**3
        denominator = 2 * g2 + A.sum(axis=(0, 1)) * g3
        alpha = np.where(np.abs(denominator) > 1e-12, g2 / np.where(denominator == 0, 1, denominator), 0)
        return (A * (alpha * np.maximum(G, 0)).sum(axis=(0, 1))).sum(-1)
    if method == "xgradcam":
        return (A * ((G * A).sum(axis=(0, 1)) / (A.sum(axis=(0, 1)) + 1e-7))).sum(-1)
    if method == "hirescam":
        return (G * A).sum(-1)
    if method == "gradcam-elementwise":
        return np.maximum(G * A, 0).sum(-1)
    if method == "layercam":
        return (np.maximum(G, 0) * A).sum(-1)
    if method == "eigencam":
        return projection(A)
    if method == "eigengradcam":
        return projection(G * A)
    if method == "shapleycam":  # Lite0 is piecewise linear after any layer: the Hessian term H A is zero
        return (A * G.mean(axis=(0, 1))).sum(-1)
    if method == "seg-eigencam":
        p = projection(np.abs(G) * A)  # energy rule; the |min| > |max| rule may flip it back
        return -p if abs(p.min()) > abs(p.max()) else p
    raise AssertionError(method)


@pytest.mark.parametrize("layer", ["top_activation", "block10_add", "block3_project_bn"])
@pytest.mark.parametrize("method", [*GRADIENT_METHODS, "eigencam"])
def test_gradient_and_eigen_methods_equal_their_formulas_on_lite0(lite0, cat, layer, method):
    explanation = gradcam.explain(lite0, cat, target=285, layer=layer, method=method)
    A, G = lite0_features_and_gradients(lite0, cat, layer, 285)
    expected = np.maximum(reference_map(method, A, G), 0)
    assert explanation.raw.shape == expected.shape == A.shape[:2]
    assert expected.max() > 0 and np.count_nonzero(expected) >= 5
    assert correlation(explanation.raw, expected) > 0.999


def test_at_lite0s_last_layer_hirescam_and_xgradcam_equal_gradcam_but_not_earlier(lite0, cat):
    """The last layer feeds global average pooling: its gradient is the same at every
    position, so the element-wise and activation-weighted variants collapse to Grad-CAM."""
    def maps(layer):
        return {m: gradcam.explain(lite0, cat, target=285, layer=layer, method=m).raw
                for m in ("gradcam", "hirescam", "xgradcam")}

    last = maps("top_activation")
    assert correlation(last["hirescam"], last["gradcam"]) > 0.9999
    assert correlation(last["xgradcam"], last["gradcam"]) > 0.9999
    early = maps("block10_add")
    assert correlation(early["hirescam"], early["gradcam"]) < 0.99


def test_layercam_and_elementwise_differ_where_activations_are_negative(lite0, cat):
    A, _ = lite0_features_and_gradients(lite0, cat, "block10_add", 285)
    assert (A < 0).mean() > 0.2  # a residual sum: plenty of negative activations
    layercam = gradcam.explain(lite0, cat, target=285, layer="block10_add", method="layercam").raw
    elementwise = gradcam.explain(lite0, cat, target=285, layer="block10_add", method="gradcam-elementwise").raw
    assert not np.allclose(layercam, elementwise, rtol=0.05)


def test_eigencam_is_the_same_for_every_class_and_never_inverted(lite0, cat):
    maps = gradcam.explain_many(lite0, cat, top=5, method="eigencam")
    assert len({m.target for m in maps}) == 5
    assert all(np.array_equal(maps[0].raw, m.raw) for m in maps[1:])
    # Chelsea fills the middle of the photo: the map sits there, not around her.
    heat = maps[0].heatmap
    h, w = heat.shape
    middle = np.zeros_like(heat, bool)
    middle[h // 6: 5 * h // 6, w // 6: 5 * w // 6] = True
    assert heat[middle].mean() > 2 * heat[~middle].mean()


# --- Score-CAM and Ablation-CAM: literal loops over channels ---------------------------


def aligned_corners_bilinear(channel: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling with aligned corners (torch's UpsamplingBilinear2d), by hand."""
    h, w = channel.shape
    ys = np.arange(height) * (h - 1) / (height - 1)
    xs = np.arange(width) * (w - 1) / (width - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = channel[y0][:, x0] * (1 - fx) + channel[y0][:, x1] * fx
    bottom = channel[y1][:, x0] * (1 - fx) + channel[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def lite0_logits(lite0, x):
    keras_model = lite0.keras
    dense = keras_model.layers[-1]
    pooled = keras.Model(keras_model.inputs, dense.input)(x)
    return (tf.matmul(pooled, dense.kernel) + dense.bias).numpy()


def reference_scorecam(lite0, image, layer_name, class_index, channels):
    x = lite0.prepare(image)
    A = keras.Model(lite0.keras.inputs, lite0.keras.get_layer(layer_name).output)(x)[0].numpy()
    scores = []
    for k in channels:  # one masked input per channel, one at a time
        mask = aligned_corners_bilinear(A[:, :, k].astype(np.float64), 224, 224)
        mask = (mask - mask.min()) / (mask.max() - mask.min() + 1e-8)
        scores.append(lite0_logits(lite0, (x * mask[None, :, :, None]).astype(np.float32))[0, class_index])
    scores = np.array(scores)
    weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    return np.maximum((A[:, :, channels] * weights).sum(-1), 0)


@pytest.mark.slow
def test_scorecam_equals_a_loop_over_channels_at_an_early_layer(lite0, cat):
    explanation = gradcam.explain(lite0, cat, target=285, layer="block0_project_bn", method="scorecam")
    expected = reference_scorecam(lite0, cat, "block0_project_bn", 285, list(range(16)))
    assert explanation.raw.shape == (112, 112)
    assert correlation(explanation.raw, expected) > 0.999


def test_faster_scorecam_keeps_the_channels_with_the_largest_variance(lite0, coffee):
    explanation = gradcam.explain(lite0, coffee, target="espresso", method="scorecam", max_channels=24)
    A = keras.Model(lite0.keras.inputs, lite0.keras.get_layer("top_activation").output)(lite0.prepare(coffee))
    variance = A[0].numpy().reshape(-1, 1280).var(axis=0)
    channels = sorted(np.argsort(-variance)[:24])
    expected = reference_scorecam(lite0, coffee, "top_activation", explanation.target, channels)
    assert correlation(explanation.raw, expected) > 0.999
    assert np.count_nonzero(explanation.channel_weights) == 24


@pytest.mark.slow
def test_ablationcam_equals_a_loop_over_channels_across_a_residual_connection(lite0, cat):
    """Ablating block14_project_bn: the residual Add after it also takes block13_add,
    computed before the cut. The reference runs that rest of the network as its own
    Keras model, once per ablated channel."""
    keras_model = lite0.keras
    x = lite0.prepare(cat)
    before = keras.Model(keras_model.inputs, [keras_model.get_layer("block14_project_bn").output,
                                              keras_model.get_layer("block13_add").output])
    rest = keras.Model([keras_model.get_layer("block14_project_bn").output, keras_model.get_layer("block13_add").output],
                       keras_model.get_layer("avg_pool").output)
    dense = keras_model.layers[-1]
    A, skip = (t.numpy() for t in before(x))

    def logit(features):
        return float((tf.matmul(rest([features, skip]), dense.kernel) + dense.bias)[0, 285])

    y = logit(A)
    weights = []
    for k in range(A.shape[-1]):
        ablated = A.copy()
        ablated[..., k] = 0.0
        weights.append((y - logit(ablated)) / y)
    expected = np.maximum((A[0] * np.array(weights)).sum(-1), 0)

    explanation = gradcam.explain(lite0, cat, target=285, layer="block14_project_bn", method="ablationcam")
    assert expected.max() > 0
    assert correlation(explanation.raw, expected) > 0.999


def test_ablationcam_at_the_last_layer(lite0, coffee):
    keras_model = lite0.keras
    A = keras.Model(keras_model.inputs, keras_model.get_layer("top_activation").output)(lite0.prepare(coffee))[0]
    A = A.numpy().astype(np.float64)
    dense = keras_model.layers[-1]
    kernel, bias = dense.kernel.numpy()[:, 967], float(dense.bias.numpy()[967])  # espresso
    y = A.mean(axis=(0, 1)) @ kernel + bias
    weights = [(y - ((A.mean(axis=(0, 1)) * (np.arange(1280) != k)) @ kernel + bias)) / y for k in range(1280)]
    expected = np.maximum((A * np.array(weights)).sum(-1), 0)
    explanation = gradcam.explain(lite0, coffee, target=967, method="ablationcam")
    assert correlation(explanation.raw, expected) > 0.999


# --- guided backpropagation ---------------------------------------------------------


def test_guided_backprop_differs_from_the_gradient_exactly_where_the_rule_applies():
    """x -> 1x1 conv (3 channels, ReLU) -> mean -> dense, worked out by hand. The guided
    rule passes the gradient through a unit only where the unit is active AND the
    gradient arriving at it is positive; the plain gradient only asks the first."""
    conv_w = np.array([[1.0, -2.0, 0.5]], np.float32)  # (in 1, out 3)
    conv_b = np.array([0.1, 0.3, -0.2], np.float32)
    dense_w = np.array([[2.0], [1.5], [-3.0]], np.float32)  # channel 2 speaks against the class
    inputs = keras.Input((4, 4, 1))
    hidden = keras.layers.Conv2D(3, 1, activation="relu", name="hidden")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, name="score")(pooled))
    model.get_layer("hidden").set_weights([conv_w.reshape(1, 1, 1, 3), conv_b])
    model.get_layer("score").set_weights([dense_w, np.zeros(1, np.float32)])
    wrapped = Model(name="toy", keras=model, input_size=(4, 4), labels=["score"], preprocessing="none", channels=1)

    pixels = np.array([[0, 40, 0, 200], [10, 0, 90, 0], [0, 0, 0, 255], [30, 60, 0, 0]], np.uint8)
    image = Image.fromarray(pixels, "L")
    x = wrapped.prepare(image)[0, :, :, 0].astype(np.float64)  # the network sees each pixel's value
    z = x[..., None] * conv_w[0] + conv_b  # (4, 4, 3)
    arriving = np.broadcast_to(dense_w[:, 0] / 16.0, z.shape)  # d score / d hidden
    plain = ((arriving * (z > 0)) * conv_w[0]).sum(-1)
    guided = ((arriving * (arriving > 0) * (z > 0)) * conv_w[0]).sum(-1)
    differs = ((z > 0) & (arriving < 0)).any(-1)
    assert differs.any() and (~differs).any()  # the example exercises both cases

    explanation = gradcam.explain(wrapped, image, target=0, method="guided-backprop")
    got = explanation.pixels[..., 0]
    assert np.allclose(got, guided, atol=1e-6)
    assert np.allclose(got[~differs], plain[~differs], atol=1e-6)
    assert not np.allclose(got[differs], plain[differs], atol=1e-6)
    with tf.GradientTape() as tape:  # the model's own gradient is still the plain one afterwards
        tensor = tf.constant(wrapped.prepare(image))
        tape.watch(tensor)
        score = model(tensor)[0, 0]
    assert np.allclose(tape.gradient(score, tensor).numpy()[0, :, :, 0], plain, atol=1e-6)


def test_guided_backprop_applies_its_rule_inside_a_nested_model():
    """A base network nested in a model (transfer learning): the guided rule reaches its ReLUs as
    it does in the same layers wired flat (until issue 28's item 3 it stopped at the nested model,
    and gave the plain gradient there)."""
    keras.utils.set_random_seed(4)
    image_in = keras.Input((8, 8, 3))
    first = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="first")
    second = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="second")
    pool, dense = keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="score")
    base = keras.Model(image_in, second(first(image_in)), name="base")
    outer_in = keras.Input((8, 8, 3))
    nested = keras.Model(outer_in, dense(pool(base(outer_in))))
    flat_in = keras.Input((8, 8, 3))
    flat = keras.Model(flat_in, dense(pool(second(first(flat_in)))))  # the very same layers and weights
    image = Image.fromarray(np.random.default_rng(4).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    maps = {}
    for name, network in (("nested", nested), ("flat", flat)):
        wrapped = Model(name=name, keras=network, input_size=(8, 8), labels=["a", "b", "c"], preprocessing="0..1")
        maps[name] = gradcam.explain(wrapped, image, target=2, method="guided-backprop").pixels
    x = tf.constant(np.asarray(image, np.float32)[None] / 255)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = flat(x)[0, 2]
    plain = tape.gradient(score, x)[0].numpy()
    assert np.allclose(maps["nested"], maps["flat"], atol=1e-6)
    assert not np.allclose(maps["flat"], plain, atol=1e-4)  # the rule changed something here


def test_guided_gradcam_is_gradcam_upsampled_times_guided_backprop(lite0, cat):
    guided = gradcam.explain(lite0, cat, target=285, method="guided-backprop")
    combined = gradcam.explain(lite0, cat, target=285, method="guided-gradcam")
    cam = gradcam.explain(lite0, cat, target=285).raw
    upsampled = tf.image.resize(cam[None, :, :, None], (224, 224), method="bilinear").numpy()[0]
    assert guided.raw.shape == combined.raw.shape == (224, 224)
    assert guided.layer == "input pixels" and combined.layer == "top_activation"
    assert correlation(combined.pixels, guided.pixels * upsampled) > 0.9999
    assert correlation(combined.raw, np.abs(guided.pixels * upsampled).max(-1)) > 0.9999
    assert combined.heatmap.shape == (cat.height, cat.width) and 0 <= combined.heatmap.min()
    assert combined.heatmap.max() == pytest.approx(1.0)


# --- a nested transfer-learning model --------------------------------------------------


@pytest.fixture(scope="module")
def nested(lite0):
    """The real Lite0 without its classifier, nested and frozen under a new head."""
    return nested_lite0(lite0)


@pytest.mark.parametrize("method", [*GRADIENT_METHODS, "eigencam", "scorecam", "ablationcam"])
def test_every_method_on_a_nested_frozen_model(nested, cat, method):
    wrapped, base = nested
    x = wrapped.prepare(cat)
    dense = wrapped.keras.layers[-1]
    with tf.GradientTape() as tape:
        features = base(x)
        tape.watch(features)
        logits = tf.matmul(tf.reduce_mean(features, axis=(1, 2)), dense.kernel) + dense.bias
        logit = logits[0, 1]
    G = tape.gradient(logit, features)[0].numpy().astype(np.float64)
    A = features[0].numpy().astype(np.float64)
    kernel, bias = dense.kernel.numpy()[:, 1].astype(np.float64), float(dense.bias.numpy()[1])
    if method == "ablationcam":
        y = A.mean(axis=(0, 1)) @ kernel + bias
        weights = np.array([(y - (A.mean(axis=(0, 1)) * (np.arange(1280) != k)) @ kernel - bias) / y
                            for k in range(1280)])
        expected = np.maximum((A * weights).sum(-1), 0)
    elif method == "scorecam":
        channels = sorted(np.argsort(-A.reshape(-1, 1280).var(axis=0))[:12])
        scores = []
        for k in channels:
            mask = aligned_corners_bilinear(A[:, :, k], 224, 224)
            mask = (mask - mask.min()) / (mask.max() - mask.min() + 1e-8)
            masked = (x * mask[None, :, :, None]).astype(np.float32)
            scores.append(float((tf.reduce_mean(base(masked), axis=(1, 2)) @ dense.kernel + dense.bias)[0, 1]))
        weights = np.exp(np.array(scores) - max(scores))
        expected = np.maximum((A[:, :, channels] * weights / weights.sum()).sum(-1), 0)
    else:
        expected = np.maximum(reference_map(method, A, G), 0)
    explanation = gradcam.explain(wrapped, cat, target=1, method=method,
                                  max_channels=12 if method == "scorecam" else None)
    assert explanation.layer == "pretrained/top_activation" and explanation.raw.shape == (7, 7)
    assert expected.max() > 0
    assert correlation(explanation.raw, expected) > 0.999


def test_guided_methods_on_a_nested_frozen_model(nested, cat):
    wrapped, _ = nested
    for method in ("guided-backprop", "guided-gradcam"):
        explanation = gradcam.explain(wrapped, cat, target=1, method=method)
        assert explanation.raw.shape == (224, 224) and explanation.raw.max() > 0


# --- the pipeline's promises, for every method ------------------------------------------

CHEAP = {"max_channels": 8}  # Score-CAM's options in tests that are about something else
CHEAP_PATCHES = {"window": 112, "stride": 56}  # Occlusion's: 9 positions instead of 169


CHEAP_SCALES = {"scales": 1}  # SESS's: one window instead of 122


def options_for(method):
    return {"scorecam": CHEAP, "occlusion": CHEAP_PATCHES, "sess": CHEAP_SCALES}.get(method, {})


def test_registry_records_say_what_each_method_is():
    assert list(METHODS) == ["gradcam", "gradcam++", "xgradcam", "hirescam", "gradcam-elementwise", "layercam",
                             "eigencam", "eigengradcam", "scorecam", "ablationcam", "occlusion",
                             "guided-backprop", "guided-gradcam", "fem", "kpca-cam", "shapleycam", "finercam",
                             "seg-eigencam", "fullgrad", "refinecam", "sess", "randomcam",
                             "attention-rollout", "gradient-rollout"]
    assert gradcam.METHODS is METHODS
    for key, record in METHODS.items():
        assert record.name == key and record.display_name
        assert record.paper and record.description and record.kind in (
            "gradient", "activation", "perturbation", "pixel-gradient", "attention", "full-gradient", "combined")
    assert [k for k, m in METHODS.items() if not m.class_specific] == ["eigencam", "fem", "kpca-cam", "randomcam",
                                                                       "attention-rollout"]
    assert {k for k, m in METHODS.items() if not m.needs_gradients} == {"eigencam", "scorecam", "ablationcam",
                                                                        "occlusion", "fem", "kpca-cam", "randomcam",
                                                                        "attention-rollout"}
    assert [k for k, m in METHODS.items() if m.layer_free] == ["occlusion", "guided-backprop", "fullgrad",
                                                                "attention-rollout", "gradient-rollout"]
    assert {m.combines for m in METHODS.values() if m.kind == "combined"} <= set(METHODS)


def test_no_method_retraces_for_a_new_photo_or_class(lite0, cat, coffee):
    for method in gradcam.methods_for(lite0):
        gradcam.explain(lite0, cat, method=method, **options_for(method))
    traced = {key: f.experimental_get_tracing_count() for key, f in lite0._compiled.items()
              if hasattr(f, "experimental_get_tracing_count")}
    for method in gradcam.methods_for(lite0):
        gradcam.explain(lite0, coffee, method=method, **options_for(method))
        gradcam.explain(lite0, cat, target=7, method=method, **options_for(method))
        gradcam.explain_many(lite0, coffee, top=5, method=method, **options_for(method))
    after = {key: lite0._compiled[key].experimental_get_tracing_count() for key in traced}
    assert after == traced


def test_the_cached_model_is_unchanged_by_every_method(lite0, cat):
    weights = [w.copy() for w in lite0.keras.get_weights()]
    x = lite0.prepare(cat)
    with tf.GradientTape() as tape:
        tensor = tf.constant(x)
        tape.watch(tensor)
        output = lite0.keras(tensor, training=False)
        top = output[0, 285]
    gradient = tape.gradient(top, tensor).numpy()
    for method in gradcam.methods_for(lite0):
        gradcam.explain(lite0, cat, target=285, method=method, **options_for(method))
    assert all(np.array_equal(a, b) for a, b in zip(weights, lite0.keras.get_weights()))
    with tf.GradientTape() as tape:  # no guided gradient left behind
        tensor = tf.constant(x)
        tape.watch(tensor)
        after = lite0.keras(tensor, training=False)
        top = after[0, 285]
    assert np.array_equal(output.numpy(), after.numpy())
    assert np.allclose(tape.gradient(top, tensor).numpy(), gradient, rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_eight_threads_running_different_methods_agree_with_each_alone(lite0, cat, coffee):
    jobs = [(method, photo) for method in ("gradcam", "layercam", "eigencam", "scorecam", "ablationcam",
                                           "guided-backprop", "hirescam", "guided-gradcam")
            for photo in (cat, coffee)]
    alone = [gradcam.explain(lite0, photo, method=method, **options_for(method)).raw for method, photo in jobs]
    results = [None] * len(jobs)
    barrier = threading.Barrier(8)

    def worker(indices):
        barrier.wait()
        for i in indices:
            method, photo = jobs[i]
            results[i] = gradcam.explain(lite0, photo, method=method, **options_for(method)).raw

    threads = [threading.Thread(target=worker, args=(range(n, len(jobs), 8),)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for (method, _), expected, got in zip(jobs, alone, results):
        assert got is not None, method
        assert np.allclose(got, expected, rtol=1e-4, atol=1e-6 * max(expected.max(), 1e-12)), method


def test_top5_in_one_pass_equals_each_class_alone_for_perturbation_methods(lite0, coffee):
    for method in ("scorecam", "ablationcam", "occlusion"):
        together = gradcam.explain_many(lite0, coffee, top=5, method=method, **options_for(method))
        for e in together[:2]:
            alone = gradcam.explain(lite0, coffee, target=e.target, method=method, **options_for(method))
            assert np.allclose(e.raw, alone.raw, rtol=1e-3, atol=1e-5 * alone.raw.max())


def test_methods_say_plainly_where_a_comparison_makes_no_sense(lite0, cat):
    with pytest.raises(ValueError, match="same map for every class"):
        gradcam.explain_contrast(lite0, cat, "tabby", "tiger cat", method="eigencam")
    with pytest.raises(ValueError, match="same map for every class"):
        gradcam.explain_counterfactual(lite0, cat, method="eigencam")
    with pytest.raises(ValueError, match="negates gradients"):
        gradcam.explain_counterfactual(lite0, cat, method="scorecam")
    with pytest.raises(ValueError, match="input pixels"):
        gradcam.explain_layers(lite0, cat, method="guided-backprop")
    with pytest.raises(ValueError, match='Unknown method "gradcam2"'):
        gradcam.explain(lite0, cat, method="gradcam2")
    # Where it does make sense, every kind of method answers.
    assert gradcam.explain_contrast(lite0, cat, "tabby", "tiger cat", method="ablationcam").raw.shape == (7, 7)
    assert gradcam.explain_counterfactual(lite0, cat, method="layercam").raw.shape == (7, 7)
    strip = gradcam.explain_layers(lite0, cat, layers=["block10_add", "top_activation"], method="eigencam")
    assert [e.raw.shape for e in strip] == [(14, 14), (7, 7)]
    alone = gradcam.explain(lite0, cat, layer="block10_add", method="eigencam")
    assert correlation(strip[0].raw, alone.raw) > 0.9999


def test_progress_is_reported_and_a_stop_ends_a_long_method(lite0, cat):
    seen = []
    gradcam.explain(lite0, cat, method="scorecam", max_channels=70, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(32, 70), (64, 70), (70, 70)]

    stop = threading.Event()

    def stop_after_first_batch(done, total):
        stop.set()

    with pytest.raises(gradcam.ExplanationStopped):
        gradcam.explain(lite0, cat, method="ablationcam", progress=stop_after_first_batch, stop=stop)
    assert gradcam.explain(lite0, cat, method="ablationcam").raw.max() > 0  # and the model still serves


def test_smoothing_averages_flips_and_scalings_brought_back_to_the_photo(lite0, cat):
    from gradcam.engine.cam import compute_prepared

    x = lite0.prepare(cat)
    maps = []
    for flip in (False, True):
        for factor in (1.0, 0.9, 1.1):
            augmented = x * np.float32(factor)
            augmented = augmented[:, :, ::-1] if flip else augmented
            m = np.maximum(compute_prepared(lite0, np.ascontiguousarray(augmented), [285], "block10_add",
                                            "layercam").before_relu[0], 0)
            m = m[:, ::-1] if flip else m
            maps.append(m / m.max())
    smoothed = gradcam.explain(lite0, cat, target=285, layer="block10_add", method="layercam", smooth=True)
    assert np.allclose(smoothed.raw, np.mean(maps, axis=0), atol=1e-5)
    plain = gradcam.explain(lite0, cat, target=285, layer="block10_add", method="layercam")
    assert not np.allclose(smoothed.raw / smoothed.raw.max(), plain.raw / plain.raw.max(), atol=1e-3)


@pytest.mark.slow
def test_the_default_scorecam_budget_agrees_with_the_full_method(lite0):
    """The dashboard's Faster Score-CAM budget (the benchmark measures every sample
    photo; this checks one): the map still agrees with all 1280 channels."""
    photo = gradcam.load_image("samples/cat-and-coffee.jpg")
    full = gradcam.explain(lite0, photo, method="scorecam")
    fast = gradcam.explain(lite0, photo, method="scorecam", max_channels=SCORECAM_DEFAULT_CHANNELS)
    assert np.count_nonzero(full.channel_weights) == 1280
    assert correlation(full.raw, fast.raw) >= 0.9
