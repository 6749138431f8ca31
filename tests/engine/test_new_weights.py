"""A model whose weights change after it explained something (issue 32, item 2): fine-tuning
in a notebook, ``set_weights``, zeroing the classifier. The compiled passes must answer with
the weights as they are now, never with the ones they were traced with."""

import keras
import numpy as np
from PIL import Image

import gradcam
from helpers import own_model

ESPRESSO, TABBY = 967, 281


def test_a_new_classifier_is_seen_by_predict_and_explain(lite0, coffee):
    before = gradcam.predict(lite0, coffee, top=1)[0]
    assert before.label == "espresso" and before.probability > 0.8
    espresso_map = gradcam.explain(lite0, coffee, target=ESPRESSO).heatmap
    tabby_map = gradcam.explain(lite0, coffee, target=TABBY).heatmap
    assert np.corrcoef(espresso_map.ravel(), tabby_map.ravel())[0, 1] < 0.9  # two different maps to tell apart

    classifier = lite0.keras.get_layer("predictions")
    kernel, bias = classifier.get_weights()
    swapped_kernel, swapped_bias = kernel.copy(), bias.copy()
    swapped_kernel[:, [ESPRESSO, TABBY]] = kernel[:, [TABBY, ESPRESSO]]
    swapped_bias[[ESPRESSO, TABBY]] = bias[[TABBY, ESPRESSO]]
    try:
        classifier.set_weights([swapped_kernel, swapped_bias])  # the espresso and tabby columns trade places
        keras_says = lite0.keras.predict(lite0.prepare(coffee), verbose=0)[0]
        after = gradcam.predict(lite0, coffee, top=1)[0]
        assert after.label == "tabby" and int(np.argmax(keras_says)) == TABBY
        assert abs(after.probability - keras_says[TABBY]) < 1e-5
        # The class "tabby" now scores with espresso's old weights: its map is espresso's old map.
        now_tabby = gradcam.explain(lite0, coffee, target=TABBY)
        assert now_tabby.probability > 0.8
        np.testing.assert_allclose(now_tabby.heatmap, espresso_map, atol=1e-4)
        np.testing.assert_allclose(gradcam.explain(lite0, coffee, target=ESPRESSO).heatmap, tabby_map, atol=1e-4)
    finally:
        classifier.set_weights([kernel, bias])
    assert gradcam.predict(lite0, coffee, top=1)[0] == before


def test_fine_tuning_after_an_explanation_changes_what_the_passes_answer():
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    inputs = keras.Input((20, 20, 3))
    features = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    network = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="classes")(pooled))
    model = own_model(network, ["dark", "bright"])
    bright = np.full((20, 20, 3), 230, np.uint8)
    photo = Image.fromarray(bright)
    first = gradcam.predict(model, photo, top=2)
    gradcam.explain(model, photo, target="bright")  # traces and keeps every pass

    # One round of fine-tuning in a notebook: teach it that bright photos are "dark".
    x = np.concatenate([np.full((16, 20, 20, 3), 0.9), rng.uniform(0, 1, (16, 20, 20, 3))]).astype(np.float32)
    network.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    network.fit(x, np.zeros(32), epochs=15, verbose=0)

    # The logits written out with the weights as they are now: pooled features times the kernel plus the bias.
    pooled_now = keras.Model(inputs, pooled).predict(model.prepare(photo), verbose=0)[0]
    kernel, bias = network.get_layer("classes").get_weights()
    expected = pooled_now @ kernel + bias
    now = {p.label: p.logit for p in gradcam.predict(model, photo, top=2)}
    np.testing.assert_allclose([now["dark"], now["bright"]], expected, atol=1e-4)
    assert abs(now["dark"] - {p.label: p.logit for p in first}["dark"]) > 1.0  # the answer really moved
    explanation = gradcam.explain(model, photo, target="dark")
    assert abs(explanation.probability - network.predict(model.prepare(photo), verbose=0)[0][0]) < 1e-5
    assert explanation.predictions[0].label == "dark"
