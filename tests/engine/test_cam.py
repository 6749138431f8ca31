"""Grad-CAM maps that a person would accept: on the object, for the right class,
equal to the textbook computation, and robust to how the model was built."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import gradcam
from helpers import nested_lite0, own_model
from gradcam.engine.model import Model


def mass_share(heatmap: np.ndarray, region: tuple) -> float:
    """The share of the map's total mass that falls inside region (a numpy index)."""
    return float(heatmap[region].sum() / heatmap.sum())


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# --- real weights, real photos -------------------------------------------------


def test_the_cat_map_sits_on_the_cat(lite0, cat):
    explanation = gradcam.explain(lite0, cat)
    assert explanation.label in {"Egyptian cat", "tabby", "tiger cat"}
    assert explanation.heatmap.shape == (cat.height, cat.width)
    assert 0.0 <= explanation.heatmap.min() and explanation.heatmap.max() == pytest.approx(1.0, abs=1e-6)
    # Chelsea's face fills the middle of the photo; the border is fur and background.
    heat = explanation.heatmap
    h, w = heat.shape
    face = np.zeros_like(heat, bool)
    face[h // 6: 5 * h // 6, w // 6: 5 * w // 6] = True
    peak = np.unravel_index(np.argmax(heat), heat.shape)
    assert face[peak]
    assert heat[face].mean() > 2 * heat[~face].mean()


@pytest.fixture(scope="module")
def side_by_side(lite0, cat, coffee):
    """The cat on the left, the coffee on the right, in one 2:1 image."""
    size = 224
    image = Image.new("RGB", (2 * size, size))
    image.paste(cat.resize((size, size)), (0, 0))
    image.paste(coffee.resize((size, size)), (size, 0))
    return image


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])  # the other methods: tests/engine/test_methods.py
def test_maps_are_class_discriminative(lite0, cat, coffee, side_by_side, method):
    cat_class = gradcam.predict(lite0, cat)[0].index
    coffee_class = gradcam.predict(lite0, coffee)[0].index
    cat_map, coffee_map = gradcam.explain_many(lite0, side_by_side, [cat_class, coffee_class], method=method)
    left, right = (slice(None), slice(0, 224)), (slice(None), slice(224, None))
    for heatmap, own_half in ((cat_map.heatmap, left), (coffee_map.heatmap, right)):
        peak_column = np.unravel_index(np.argmax(heatmap), heatmap.shape)[1]
        assert peak_column in range(448)[own_half[1]]
        # Grad-CAM++ is known to be less class-discriminative than Grad-CAM (it
        # spreads onto other objects; seen here: 54% vs 73% for the coffee), so it
        # gets the looser bound.
        assert mass_share(heatmap, own_half) > (0.7 if method == "gradcam" else 0.5)


def test_target_by_label_matches_target_by_index(lite0, coffee):
    by_label = gradcam.explain(lite0, coffee, target="espresso")
    by_index = gradcam.explain(lite0, coffee, target=by_label.target)
    assert by_label.label == "espresso"
    assert np.array_equal(by_label.heatmap, by_index.heatmap)
    assert gradcam.explain(lite0, coffee, target="Egyptian_cat").label == "Egyptian cat"  # Keras-style name
    with pytest.raises(ValueError, match="No class is called"):
        gradcam.explain(lite0, coffee, target="spaceship")


# --- agreement with the obvious implementation ----------------------------------


def reference_gradcam(keras_model, x, layer_name, class_index, plus_plus=False):
    """Grad-CAM as a textbook writes it: a sub-model to (A, pre-softmax input of the
    classifier), then logits by hand so the softmax never enters the gradient."""
    dense = keras_model.layers[-1]
    sub = keras.Model(keras_model.inputs, [keras_model.get_layer(layer_name).output, dense.input])
    with tf.GradientTape() as tape:
        features, pooled = sub(x)
        logit = (tf.matmul(pooled, dense.kernel) + dense.bias)[0, class_index]
    grads = tape.gradient(logit, features)[0].numpy().astype(np.float64)
    features = features[0].numpy().astype(np.float64)
    if plus_plus:
        g2, g3 = grads**2, grads**3
        denominator = 2 * g2 + features.sum(axis=(0, 1)) * g3
        alpha = np.where(np.abs(denominator) > 1e-12, g2 / np.where(denominator == 0, 1, denominator), 0)
        weights = (alpha * np.maximum(grads, 0)).sum(axis=(0, 1))
    else:
        weights = grads.mean(axis=(0, 1))
    return np.maximum((features * weights).sum(axis=-1), 0)


@pytest.mark.parametrize("layer", ["top_activation", "block10_add", "block3_project_bn"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])  # the other methods: tests/engine/test_methods.py
def test_engine_equals_the_reference_implementation(lite0, cat, layer, method):
    explanation = gradcam.explain(lite0, cat, target=285, layer=layer, method=method)
    expected = reference_gradcam(lite0.keras, lite0.prepare(cat), layer, 285, plus_plus=method == "gradcam++")
    assert explanation.raw.shape == expected.shape
    assert correlation(explanation.raw, expected) > 0.999


def test_top5_in_one_pass_equals_each_class_alone(lite0, coffee):
    together = gradcam.explain_many(lite0, coffee, top=5)
    assert [e.target for e in together] == [p.index for p in gradcam.predict(lite0, coffee)]
    for e in together:
        alone = gradcam.explain(lite0, coffee, target=e.target)
        assert np.allclose(e.raw, alone.raw, rtol=1e-4, atol=1e-6 * alone.raw.max())


def test_new_images_classes_and_top5_never_retrace(lite0, cat, coffee):
    gradcam.explain(lite0, cat)
    compiled = [f for key, f in lite0._compiled.items() if key[:2] == ("cam", "top_activation")]
    traced_before = sum(f.experimental_get_tracing_count() for f in compiled)
    gradcam.explain(lite0, coffee)
    gradcam.explain(lite0, cat, target=7)
    gradcam.explain_many(lite0, coffee, top=5)
    gradcam.explain_many(lite0, coffee, targets=[1, 2, 3])
    assert sum(f.experimental_get_tracing_count() for f in compiled) == traced_before


# --- how the model was built ----------------------------------------------------


def test_softmax_and_logits_models_give_the_same_map(noise_image):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits_model = keras.Model(inputs, keras.layers.Dense(5, name="scores")(x))
    softmax_model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="scores")(x))
    softmax_model.get_layer("scores").set_weights(logits_model.get_layer("scores").get_weights())
    softmax_model.get_layer("conv").set_weights(logits_model.get_layer("conv").get_weights())
    labels = list("abcde")
    a = gradcam.explain(own_model(logits_model, labels), noise_image, target=2)
    b = gradcam.explain(own_model(softmax_model, labels), noise_image, target=2)
    assert np.allclose(a.raw, b.raw, rtol=1e-4, atol=1e-7)
    assert a.probability == pytest.approx(b.probability, rel=1e-4)
    # The cached model was not changed to get its logits.
    assert softmax_model.get_layer("scores").activation.__name__ == "softmax"
    assert float(softmax_model(np.zeros((1, 32, 32, 3))).numpy().sum()) == pytest.approx(1.0, abs=1e-5)


def test_nested_frozen_base_model_works_where_the_tutorial_fails(lite0, cat):
    """Transfer learning as people do it: a pretrained network (here the real
    EfficientNet-Lite0 without its classifier) nested, frozen, under a new head."""
    wrapped, base = nested_lite0(lite0)
    model = wrapped.keras

    names = [t.name for t in gradcam.target_layers(wrapped)]
    assert names[-1] == "pretrained/top_activation" and gradcam.default_layer(wrapped).name == names[-1]
    with pytest.raises(ValueError, match="(?i)connected"):  # the Keras tutorial's way ("Graph disconnected")
        keras.Model(model.inputs, [base.get_layer("top_activation").output, model.output])

    explanation = gradcam.explain(wrapped, cat, target=1)
    x = wrapped.prepare(cat)
    with tf.GradientTape() as tape:
        features = base(tf.constant(x))  # a tensor, as Keras expects: no inputs-structure warning
        tape.watch(features)
        dense = model.layers[-1]
        logit = (tf.matmul(tf.reduce_mean(features, axis=(1, 2)), dense.kernel) + dense.bias)[0, 1]
    grads = tape.gradient(logit, features)[0].numpy()
    expected = np.maximum((features[0].numpy() * grads.mean(axis=(0, 1))).sum(-1), 0)
    assert explanation.raw.shape == (7, 7)
    assert expected.max() > 1e-3 and np.count_nonzero(expected) >= 5
    assert correlation(explanation.raw, expected) > 0.999
    # An inner layer of the nested base, by its short name too.
    inner = gradcam.explain(wrapped, cat, layer="block10_add")
    assert inner.layer == "pretrained/block10_add" and inner.raw.shape == (14, 14)
    assert inner.raw.max() > 0


def test_augmentation_layers_are_off_when_explaining(noise_image):
    """RandomFlip and friends default to training mode when called directly; the
    engine must run them as Keras' predict does: off, so results are repeatable."""
    keras.utils.set_random_seed(8)
    inputs = keras.Input((32, 32, 3))
    x = keras.Sequential([keras.layers.RandomFlip(), keras.layers.RandomRotation(0.3)])(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    wrapped = own_model(model, list("abcd"))
    expected = model.predict(wrapped.prepare(noise_image), verbose=0)[0]
    for _ in range(3):
        assert np.allclose([p.probability for p in sorted(gradcam.predict(wrapped, noise_image, top=4),
                                                          key=lambda p: p.index)], expected, atol=1e-5)
    maps = [gradcam.explain(wrapped, noise_image, target=0).raw for _ in range(3)]
    assert all(np.array_equal(maps[0], m) for m in maps[1:])


def test_a_softmax_inside_a_nested_head_is_still_removed(noise_image):
    keras.utils.set_random_seed(9)
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    head = keras.Sequential([keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")])
    model = keras.Model(inputs, head(features))
    wrapped = own_model(model, list("abcd"))
    expected = model.predict(wrapped.prepare(noise_image), verbose=0)[0]
    got = {p.index: p.probability for p in gradcam.predict(wrapped, noise_image, top=4)}
    assert np.allclose([got[i] for i in range(4)], expected, atol=1e-5)  # softmax applied once, not twice


def test_a_softmax_built_into_another_layer_type_gives_the_logit_map(noise_image):
    """An EinsumDense(activation="softmax") head: the map must be the logit's,
    exactly as for the same head without the softmax."""
    keras.utils.set_random_seed(10)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    with_softmax = keras.Model(inputs, keras.layers.EinsumDense("ab,bc->ac", output_shape=4, activation="softmax",
                                                                name="head")(x))
    logits_only = keras.Model(inputs, keras.layers.EinsumDense("ab,bc->ac", output_shape=4, name="head")(x))
    logits_only.set_weights(with_softmax.get_weights())
    for target in range(4):
        a = gradcam.explain(own_model(with_softmax, list("abcd")), noise_image, target=target).raw
        b = gradcam.explain(own_model(logits_only, list("abcd")), noise_image, target=target).raw
        assert np.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_sequential_models_work(noise_image):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, activation="relu", name="first"),
        keras.layers.Conv2D(8, 3, activation="relu", name="second"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ])
    wrapped = own_model(model, list("abcd"))
    assert [t.name for t in gradcam.target_layers(wrapped)] == ["first", "second"]
    maps = gradcam.explain_many(wrapped, noise_image, top=4)
    assert sorted(e.target for e in maps) == [0, 1, 2, 3]
    assert maps[0].raw.shape == (28, 28) and maps[0].heatmap.shape == (120, 160)


def test_no_positive_evidence_gives_zeros_and_a_flag_never_nan(noise_image):
    """Positive activations and a class whose weights are all negative: every
    channel speaks against the class, so the map is empty."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv",
                            kernel_initializer="ones", bias_initializer="ones")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.Constant(-1.0))(x)
    wrapped = own_model(keras.Model(inputs, outputs), ["against", "also against"])
    # Every method that can say "nothing here": those that keep only positive evidence
    # per channel or per position (Eigen-CAM has no class, and Score-CAM's softmax
    # weights and Ablation-CAM's ratio of two negative scores are positive).
    for method in ("gradcam", "gradcam++", "xgradcam", "hirescam", "gradcam-elementwise", "layercam"):
        explanation = gradcam.explain(wrapped, noise_image, target=0, method=method)
        assert explanation.no_positive_evidence
        assert not np.isnan(explanation.heatmap).any() and explanation.heatmap.max() == 0.0
        assert explanation.heatmap.shape == (120, 160)


# --- the pointing game: a CNN that we train, on images whose answer we know -----


def synthetic_shapes(count: int, rng: np.random.Generator):
    """48x48 noisy images with one bright shape: a filled square (class 0) or a
    ring (class 1), at a random place. Returns images, labels and shape centres."""
    images = rng.normal(0.2, 0.08, (count, 48, 48, 1)).astype(np.float32)
    labels = rng.integers(0, 2, count)
    centres = rng.integers(8, 40, (count, 2))
    yy, xx = np.mgrid[:48, :48]
    for image, label, (cy, cx) in zip(images, labels, centres):
        distance = np.hypot(yy - cy, xx - cx)
        if label == 0:
            mask = (np.abs(yy - cy) <= 4) & (np.abs(xx - cx) <= 4)
        else:
            mask = (distance >= 3) & (distance <= 6)
        image[mask, 0] = 0.9
    return np.clip(images, 0, 1), labels, centres


def test_pointing_game_on_a_cnn_trained_here():
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    train_x, train_y, _ = synthetic_shapes(1500, rng)
    model = keras.Sequential([
        keras.Input((48, 48, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(train_x, train_y, epochs=6, batch_size=32, verbose=0)

    test_x, test_y, centres = synthetic_shapes(40, rng)
    accuracy = model.evaluate(test_x, test_y, verbose=0)[1]
    assert accuracy > 0.9, "the little CNN did not learn the shapes, so the game says nothing"

    wrapped = Model(name="shapes", keras=model, input_size=(48, 48), labels=["square", "ring"],
                    preprocessing="0..1", channels=1)
    hits = 0
    for image, label, (cy, cx) in zip(test_x, test_y, centres):
        picture = Image.fromarray((image[..., 0] * 255).astype(np.uint8), "L")
        heatmap = gradcam.explain(wrapped, picture, target=int(label)).heatmap
        py, px = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        hits += abs(py - cy) <= 7 and abs(px - cx) <= 7
    assert hits / len(test_x) >= 0.8


# --- comparisons from the Grad-CAM paper, and layers in one pass ----------------


def test_all_stages_from_one_pass_equal_each_layer_alone(lite0, side_by_side):
    stages = gradcam.stage_layers(lite0)
    assert [t.shape[0] for t in stages] == [112, 56, 28, 14, 7]  # early to late
    strip = gradcam.explain_layers(lite0, side_by_side, target="espresso")
    assert [e.layer for e in strip] == [t.name for t in stages]
    for e in strip:
        alone = gradcam.explain(lite0, side_by_side, target="espresso", layer=e.layer)
        assert e.label == "espresso" and correlation(e.raw, alone.raw) > 0.9999


def test_why_espresso_rather_than_cat_points_at_the_cup(lite0, side_by_side):
    contrast = gradcam.explain_contrast(lite0, side_by_side, "espresso", "tiger cat")
    assert contrast.label == "espresso rather than tiger cat"
    assert mass_share(contrast.heatmap, (slice(None), slice(224, None))) > 0.8


def test_counterfactual_shows_what_speaks_against_the_class(lite0, side_by_side):
    against = gradcam.explain_counterfactual(lite0, side_by_side, "espresso")
    assert against.label == "against espresso" and not against.no_positive_evidence
    # What argues against "espresso" in this picture is the cat, not the cup.
    assert mass_share(against.heatmap, (slice(None), slice(0, 224))) > 0.7


def test_layer_sets_compiled_for_comparison_are_bounded(lite0, cat):
    names = [t.name for t in gradcam.target_layers(lite0)][-12:]
    for i in range(12):
        gradcam.explain_layers(lite0, cat, layers=[names[i]], target=285)
    kept = [k for k in lite0._compiled if isinstance(k, tuple) and k[0] == "layers"]
    assert len(kept) <= 8 and ("layers", (names[-1],), "gradcam") in kept


def test_padding_rescaling_and_dropout_are_not_stages_or_defaults_and_are_marked():
    """A nested MobileNetV2 under a Rescaling layer (as Keras' transfer-learning guide
    builds it): its ZeroPadding layers and the input scaling compute no features."""
    keras.utils.set_random_seed(5)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
    inputs = keras.Input((96, 96, 3))
    x = base(keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs))
    x = keras.layers.SpatialDropout2D(0.2, name="drop")(x)  # after the last feature map: must not be the default
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = own_model(keras.Model(inputs, outputs), ["a", "b", "c"], "none")

    listed = {t.name: t for t in gradcam.target_layers(model)}
    kinds = {name: t.kind for name, t in listed.items() if not t.is_feature_layer}
    assert kinds["rescale"] == "rescaling" and kinds["drop"] == "dropout"
    assert kinds["mobilenetv2_1.00_96/block_1_pad"] == "padding"
    assert str(listed["rescale"]) == "rescale  (96x96x3)  · rescaling, not a feature layer"
    assert str(listed["mobilenetv2_1.00_96/out_relu"]) == "mobilenetv2_1.00_96/out_relu  (3x3x1280)"
    stages = [t.name for t in gradcam.stage_layers(model)]
    assert stages and not set(stages) & set(kinds)
    assert stages[-1] == gradcam.default_layer(model).name == "mobilenetv2_1.00_96/out_relu"
    # Still targetable by name, for whoever asks on purpose.
    assert gradcam.explain(model, Image.new("RGB", (96, 96), "white"), layer="rescale").raw.shape == (96, 96)
