"""pytorch-grad-cam 1.5.7's newer methods (FEM, KPCA-CAM, ShapleyCAM, Finer-CAM,
Seg-Eigen-CAM, FullGrad, RefineCAM, SESS, RandomCAM), each against its formula
written out plainly here: on the real Lite0 weights at two layers, and on small
models built here where the method differs from Grad-CAM (a curved head for
ShapleyCAM, folded BatchNorm for FullGrad)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy.ndimage import gaussian_filter

import gradcam
from gradcam.engine.cam import compute_prepared
from gradcam.engine.combined import planned_passes, refine_layers
from gradcam.engine.graph import resolve_layer
from gradcam.engine.methods import METHODS
from gradcam.engine.passes import bias_layers, effective_bias
from helpers import own_model
from tests.engine.test_methods import correlation, lite0_features_and_gradients, lite0_logits

TWO_LAYERS = ["top_activation", "block10_add"]


def centred_projection(values):
    """(h, w, k) -> the values centred per channel, projected on their first right
    singular vector (pytorch-grad-cam's get_2d_projection), sign as the SVD gives it."""
    flat = values.reshape(-1, values.shape[-1])
    centred = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[0]).reshape(values.shape[:2])


# --- activation methods -----------------------------------------------------------------


@pytest.mark.parametrize("layer", TWO_LAYERS)
def test_fem_weights_each_channel_by_its_share_above_mean_plus_two_std(lite0, cat, layer):
    A, _ = lite0_features_and_gradients(lite0, cat, layer, 285)
    weights = []
    for k in range(A.shape[-1]):  # channel by channel, as the paper describes it
        channel = A[:, :, k]
        weights.append((channel > channel.mean() + 2 * channel.std()).mean())
    expected = np.maximum((A * np.array(weights)).sum(-1), 0)
    got = gradcam.explain(lite0, cat, target=285, layer=layer, method="fem")
    assert expected.max() > 0 and 0 < np.count_nonzero(weights) < A.shape[-1]
    assert correlation(got.raw, expected) > 0.999
    assert np.allclose(got.channel_weights, weights, atol=1e-6)
    # The same map for every class: it never looks at a gradient.
    assert np.array_equal(gradcam.explain(lite0, cat, target=7, layer=layer, method="fem").raw, got.raw)


@pytest.mark.parametrize("layer", TWO_LAYERS)
def test_kpca_cam_is_the_first_sigmoid_kernel_component_of_the_centred_activations(lite0, cat, layer):
    A, _ = lite0_features_and_gradients(lite0, cat, layer, 285)
    X = A.reshape(-1, A.shape[-1]).astype(np.float32).astype(np.float64)
    X = X - X.mean(axis=0)
    K = np.tanh(X @ X.T / X.shape[1] + 1.0)  # sigmoid kernel, gamma 1 / channels, coef0 1
    n = len(K)
    ones = np.full((n, n), 1.0 / n)
    centred = K - ones @ K - K @ ones + ones @ K @ ones
    values, vectors = np.linalg.eigh(centred)
    v = vectors[:, -1]
    v = v if v[np.argmax(np.abs(v))] > 0 else -v  # scikit-learn's svd_flip: the largest entry positive
    expected = np.maximum(v * np.sqrt(values[-1]), 0).reshape(A.shape[:2])
    got = gradcam.explain(lite0, cat, target=285, layer=layer, method="kpca-cam")
    assert expected.max() > 0
    assert correlation(got.raw, expected) > 0.999
    # It is not Eigen-CAM with a new name: the kernel changes the map.
    assert correlation(got.raw, np.maximum(centred_projection(A), 0)) < 0.999


def test_randomcam_weights_channels_uniformly_in_minus_one_to_one(lite0, cat):
    A, _ = lite0_features_and_gradients(lite0, cat, "top_activation", 285)
    first = gradcam.explain(lite0, cat, target=285, method="randomcam")
    second = gradcam.explain(lite0, cat, target=285, method="randomcam")
    w = first.channel_weights
    assert w.shape == (1280,) and -1 <= w.min() < -0.9 and 0.9 < w.max() <= 1
    assert abs(w.mean()) < 0.1  # uniform on [-1, 1]: centred
    assert np.allclose(first.before_relu, (A * w).sum(-1), rtol=1e-4, atol=1e-4)
    assert not np.allclose(first.channel_weights, second.channel_weights)


# --- gradient methods on Lite0 ----------------------------------------------------------


@pytest.mark.parametrize("layer", TWO_LAYERS)
def test_seg_eigencam_is_the_component_of_abs_gradient_times_activation_with_its_sign_rule(lite0, cat, layer):
    A, G = lite0_features_and_gradients(lite0, cat, layer, 285)
    p = centred_projection(np.abs(G) * A)
    if abs(p.min()) > abs(p.max()):  # the paper's Eq. 13
        p = -p
    got = gradcam.explain(lite0, cat, target=285, layer=layer, method="seg-eigencam")
    assert np.maximum(p, 0).max() > 0
    assert correlation(got.before_relu, p) > 0.999


@pytest.mark.parametrize("layer", TWO_LAYERS)
def test_shapleycam_equals_gradcam_where_the_score_is_piecewise_linear_in_the_layer(lite0, cat, layer):
    """Lite0 is ReLU6, BatchNorm, convolutions, pooling and a dense logit: piecewise
    linear after any layer, so the Hessian-vector product is zero and the two agree."""
    shapley = gradcam.explain(lite0, cat, target=285, layer=layer, method="shapleycam")
    plain = gradcam.explain(lite0, cat, target=285, layer=layer, method="gradcam")
    assert np.allclose(shapley.channel_weights, plain.channel_weights, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("layer", TWO_LAYERS)
def test_finercam_is_gradcam_of_the_class_against_its_three_nearest(lite0, cat, layer):
    keras_model = lite0.keras
    dense = keras_model.layers[-1]
    sub = keras.Model(keras_model.inputs, [keras_model.get_layer(layer).output, dense.input])
    with tf.GradientTape() as tape:
        features, pooled = sub(lite0.prepare(cat))
        logits = (tf.matmul(pooled, dense.kernel) + dense.bias)[0]
        y = logits.numpy()
        nearest = [j for j in np.argsort(np.abs(y - y[285])) if j != 285][:3]
        p = tf.nn.softmax(logits)
        score = sum(p[j] * (logits[285] - logits[j]) for j in nearest) / (sum(p[j] for j in nearest) + 1e-9)
    G = tape.gradient(score, features)[0].numpy()
    A = features[0].numpy()
    expected = np.maximum((A * G.mean(axis=(0, 1))).sum(-1), 0)
    got = gradcam.explain(lite0, cat, target=285, layer=layer, method="finercam")
    assert expected.max() > 0
    assert correlation(got.raw, expected) > 0.999
    plain = gradcam.explain(lite0, cat, target=285, layer=layer, method="gradcam")
    assert correlation(got.raw, plain.raw) < 0.99  # the look-alikes' shared evidence is taken out


def test_finercam_says_it_has_its_own_contrast(lite0, cat):
    with pytest.raises(ValueError, match="nearest classes"):
        gradcam.explain_contrast(lite0, cat, "tabby", "tiger cat", method="finercam")


# --- ShapleyCAM where it differs: a curved head -------------------------------------------


@pytest.fixture(scope="module")
def curved():
    """conv (ReLU) -> conv (tanh) -> mean -> dense (tanh) -> dense: the score is curved in
    both convolutions' outputs, so the Hessian-vector product is not zero."""
    keras.utils.set_random_seed(11)
    inputs = keras.Input((12, 12, 3))
    first = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="first")(inputs)
    second = keras.layers.Conv2D(5, 3, padding="same", activation="tanh", name="second")(first)
    pooled = keras.layers.GlobalAveragePooling2D()(second)
    hidden = keras.layers.Dense(7, activation="tanh")(pooled)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden))
    for layer in model.layers[-2:]:  # strong weights: the tanh units work on their bend, not their straight middle
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 8.0, bias])
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    return own_model(model, ["a", "b", "c"]), photo


@pytest.mark.parametrize("layer", ["first", "second"])
def test_shapleycam_on_a_curved_head_follows_the_hessian_vector_product(curved, layer):
    wrapped, photo = curved
    keras_model = wrapped.keras
    cut = keras_model.get_layer(layer).output
    before = keras.Model(keras_model.inputs, cut)
    after = keras.Model(cut, keras_model.output)
    A = before(wrapped.prepare(photo)).numpy().astype(np.float64)

    def gradient(features):
        tensor = tf.constant(features, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            score = after(tensor)[0, 1]
        return tape.gradient(score, tensor).numpy()[0].astype(np.float64)

    G = gradient(A)
    step = 1e-3  # H A by central differences of the gradient along A itself
    hessian_times_a = (gradient(A * (1 + step)) - gradient(A * (1 - step))) / (2 * step)
    A = A[0]
    expected = (A * (G - 0.5 * hessian_times_a).mean(axis=(0, 1))).sum(-1)
    got = gradcam.explain(wrapped, photo, target=1, layer=layer, method="shapleycam")
    plain = gradcam.explain(wrapped, photo, target=1, layer=layer, method="gradcam")
    assert np.abs(hessian_times_a).max() > 1e-3 * np.abs(G).max()
    assert correlation(got.before_relu, expected) > 0.999
    assert not np.allclose(got.channel_weights, plain.channel_weights, rtol=0.05)


# --- FullGrad: the input's term and every bias's, BatchNorm folded --------------------------


@pytest.fixture(scope="module")
def with_batchnorm():
    """conv (bias) -> ReLU -> conv (no bias) -> BatchNorm with moving statistics of its
    own -> ReLU -> mean -> dense."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((16, 16, 3))
    first = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="first")(inputs)
    second = keras.layers.Conv2D(6, 3, strides=2, padding="same", use_bias=False, name="second")(first)
    norm = keras.layers.BatchNormalization(name="norm")(second)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(norm))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(pooled))
    rng = np.random.default_rng(8)
    bn = model.get_layer("norm")
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(0, 0.5, 6), rng.normal(0, 1, 6), rng.uniform(0.2, 3, 6)])
    model.get_layer("first").set_weights([rng.normal(0, 0.5, (3, 3, 3, 4)), rng.normal(0, 0.3, 4)])
    photo = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return own_model(model, ["a", "b"]), photo


def test_batchnorm_folds_into_an_effective_bias(with_batchnorm):
    wrapped, photo = with_batchnorm
    bn = wrapped.keras.get_layer("norm")
    gamma, beta, mean, variance = (w.astype(np.float64) for w in bn.get_weights())
    assert bn.epsilon == 1e-3  # Keras' default; PyTorch's is 1e-5
    scale = gamma / np.sqrt(variance + 1e-3)
    folded_bias = beta - mean * scale
    assert np.allclose(effective_bias(bn), folded_bias)
    # The folded layer really is the BatchNorm in inference: conv * scale + bias.
    conv_out = keras.Model(wrapped.keras.inputs, wrapped.keras.get_layer("second").output)(wrapped.prepare(photo))
    assert np.allclose(bn(conv_out, training=False).numpy(), conv_out.numpy() * scale + folded_bias, atol=1e-5)
    assert [path for path, _ in bias_layers(wrapped.keras)] == ["first", "norm"]  # "second" has no bias


def test_fullgrad_sums_the_input_term_and_every_bias_term(with_batchnorm):
    wrapped, photo = with_batchnorm
    keras_model = wrapped.keras
    x = tf.constant(wrapped.prepare(photo))
    probe = keras.Model(keras_model.inputs, [keras_model.get_layer("first").output,
                                             keras_model.get_layer("norm").output])
    rest_first = keras.Model(keras_model.get_layer("first").output, keras_model.output)
    rest_norm = keras.Model(keras_model.get_layer("norm").output, keras_model.output)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = keras_model(x)[0, 1]
    gx = tape.gradient(score, x).numpy()[0]
    first_out, norm_out = probe(x)
    grads = []
    for rest, value in ((rest_first, first_out), (rest_norm, norm_out)):
        with tf.GradientTape() as tape:
            tape.watch(value)
            s = rest(value)[0, 1]
        grads.append(tape.gradient(s, value).numpy()[0])
    bn = keras_model.get_layer("norm")
    gamma, beta, mean, variance = bn.get_weights()
    biases = [keras_model.get_layer("first").get_weights()[1], beta - mean * gamma / np.sqrt(variance + 1e-3)]

    def scaled(m):
        m = m - m.min()
        return m / (1e-7 + m.max())

    total = sum(scaled(np.abs(gx[:, :, c] * x.numpy()[0, :, :, c])) for c in range(3))
    for bias, g in zip(biases, grads):
        layer_sum = sum(scaled(np.abs(bias[c] * g[:, :, c])) for c in range(g.shape[-1]))
        total = total + tf.image.resize(layer_sum[None, :, :, None], (16, 16), method="bilinear").numpy()[0, :, :, 0]
    expected = scaled(total)
    got = gradcam.explain(wrapped, photo, target=1, method="fullgrad")
    assert got.layer == "input pixels and every bias" and got.raw.shape == (16, 16)
    assert np.allclose(got.raw, expected, atol=1e-4)
    # The layer picker plays no part, as the registry says.
    assert METHODS["fullgrad"].layer_free
    assert np.allclose(gradcam.explain(wrapped, photo, target=1, layer="first", method="fullgrad").raw, got.raw)


def test_fullgrads_bias_term_is_each_channel_scaled_then_summed_even_a_flat_channel():
    """The pass sums |b g| scaled per channel by a weighted sum; written out here channel by
    channel, with a channel whose gradient is the same everywhere (it feeds a global pooling)
    and a zero bias: both must give 0, not the noise of a huge weight."""
    from gradcam.engine.passes import _bias_term

    rng = np.random.default_rng(4)
    gradient = rng.normal(0, 1e-3, (2, 5, 6, 4))
    gradient[:, :, :, 1] = 3e-4  # flat
    bias = np.array([0.5, -2.0, 0.0, 1e-3])

    def scaled(m):
        m = m - m.min()
        return m / (1e-7 + m.max())

    expected = np.stack([sum(scaled(np.abs(bias[c] * gradient[k, :, :, c])) for c in range(4)) for k in range(2)])
    got = _bias_term(tf.constant(bias, tf.float32), tf.constant(gradient, tf.float32)).numpy()
    assert np.allclose(got, expected, atol=1e-5)
    assert np.abs(expected).max() > 1


def test_fullgrad_on_lite0_sits_on_the_cat(lite0, cat):
    heat = gradcam.explain(lite0, cat, target=285, method="fullgrad").heatmap
    h, w = heat.shape
    middle = np.zeros_like(heat, bool)
    middle[h // 6: 5 * h // 6, w // 6: 5 * w // 6] = True
    assert heat[middle].mean() > 1.5 * heat[~middle].mean()


# --- meta-methods: RefineCAM and SESS, literal loops ------------------------------------------


def at_input(before_relu, size):
    """BaseCAM's per-layer map: ReLU, scaled, upsampled (bilinear), scaled."""
    def scaled(m):
        m = m - m.min()
        return m / (1e-7 + m.max())

    m = scaled(np.maximum(before_relu, 0))
    return scaled(tf.image.resize(m[None, :, :, None], size, method="bilinear").numpy()[0, :, :, 0])


def test_refinecam_multiplies_gradcam_plus_plus_over_the_later_stages(lite0, cat):
    chosen = [t.name for t in refine_layers(lite0, resolve_layer(lite0, "block10_add"))]
    product = np.ones((224, 224))
    for name in chosen:
        product = product * at_input(gradcam.explain(lite0, cat, target=285, layer=name, method="gradcam++").before_relu,
                                     (224, 224))
    expected = (product - product.min()) / (1e-7 + (product - product.min()).max())
    got = gradcam.explain(lite0, cat, target=285, layer="block10_add", method="refinecam")
    assert chosen[0] == "block10_add" and chosen[-1] == "top_activation" and len(chosen) >= 2
    assert got.raw.shape == (224, 224)
    assert np.allclose(got.raw, expected, atol=1e-4)
    # At the last layer there is nothing deeper: it is Grad-CAM++ alone, upsampled.
    last = gradcam.explain(lite0, cat, target=285, method="refinecam")
    alone = at_input(gradcam.explain(lite0, cat, target=285, method="gradcam++").before_relu, (224, 224))
    assert correlation(last.raw, alone) > 0.9999


def test_sess_is_a_weighted_average_of_window_maps_over_scales(lite0, cat):
    """Two scales of a 224 px input: 224 (one window) and 288 (four windows of 224 at
    0 and 64 on each axis), each window's Grad-CAM weighted by its probability."""
    x = lite0.prepare(cat)
    target = 285
    windows = [(224, 0, 0)] + [(288, y, x0) for y in (0, 64) for x0 in (0, 64)]
    scores, cams = [], []
    for scale, y, x0 in windows:
        big = tf.image.resize(x, (scale, scale), method="bilinear", antialias=True).numpy()
        patch = np.ascontiguousarray(big[:, y:y + 224, x0:x0 + 224])
        logits = lite0_logits(lite0, patch)[0].astype(np.float64)
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        scores.append(probabilities[target])
        cams.append(at_input(compute_prepared(lite0, patch, [target], None, "gradcam").before_relu[0], (224, 224)))
    weights = np.array(scores) / max(scores)
    total, count = np.zeros((224, 224)), np.zeros((224, 224))
    for (scale, y, x0), cam, weight in zip(windows, cams, weights):
        canvas = np.zeros((scale, scale), np.float32)
        canvas[y:y + 224, x0:x0 + 224] = cam * weight
        back = tf.image.resize(canvas[None, :, :, None], (224, 224), method="bilinear").numpy()[0, :, :, 0]
        total += np.where(back > 0, back, 0)
        count += back > 0
    mean = np.where(count > 0, total / np.maximum(count, 1), 0)
    blurred = gaussian_filter(mean, sigma=5.0, truncate=1.0, mode="mirror")  # 11 taps, cv2's border
    expected = (blurred - blurred.min()) / (1e-7 + (blurred - blurred.min()).max())

    seen = []
    got = gradcam.explain(lite0, cat, target=target, method="sess", scales=2,
                          progress=lambda done, total: seen.append((done, total)))
    assert got.raw.shape == (224, 224)
    assert np.allclose(got.raw, expected, atol=2e-3)
    planned = planned_passes(lite0, METHODS["sess"], resolve_layer(lite0, None), 2)
    assert planned == 7 and seen[-1] == (7, 7) and len(seen) == 7  # the first pass, one scoring batch, 5 windows


def test_sess_and_refinecam_say_their_cost_and_stop(lite0, cat):
    import threading

    layer = resolve_layer(lite0, None)
    # Twelve scales of a 224 px input (224, 288, ..., 928): 1 + 3 x 4 + 4 x 9 + 3 x 16 + 25 windows,
    # plus the first pass and four batches of 32 windows scored.
    assert planned_passes(lite0, METHODS["sess"], layer) == 1 + 122 + 4
    assert planned_passes(lite0, METHODS["refinecam"], resolve_layer(lite0, "block10_add")) >= 2
    stop = threading.Event()
    with pytest.raises(gradcam.ExplanationStopped, match="SESS was stopped early"):
        gradcam.explain(lite0, cat, method="sess", progress=lambda done, total: stop.set(), stop=stop)
    assert gradcam.explain(lite0, cat, method="sess", scales=1).raw.max() > 0  # and the model still serves


def test_planned_passes_are_public_and_count_what_progress_counts(lite0):
    assert gradcam.planned_passes(lite0, "gradcam") == 1
    assert gradcam.planned_passes(lite0, "sess", scales=2) == 7
    assert gradcam.planned_passes(lite0, "refinecam", "block10_add") == len(
        refine_layers(lite0, resolve_layer(lite0, "block10_add")))
    assert gradcam.planned_passes(lite0, "scorecam", max_channels=70) == 1 + 3
