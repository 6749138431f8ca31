"""Occlusion (Zeiler & Fergus 2014): a patch slid over the input, the drop of the
target's probability as the map. Checked against a literal loop, and on a CNN
trained here to rely on a planted tag."""

import threading

import keras
import numpy as np
import pytest
from PIL import Image, ImageFilter

import gradcam
from helpers import own_model

HEIGHT, WIDTH = 24, 28


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(11)
    network = keras.Sequential([
        keras.Input((HEIGHT, WIDTH, 3)),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(4),
    ])
    return own_model(network, ["a", "b", "c", "d"])


@pytest.fixture(scope="module")
def photo_at_input():
    return Image.fromarray(np.random.default_rng(2).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))


def softmax(logits):
    e = np.exp(logits - logits.max())
    return e / e.sum()


@pytest.mark.parametrize("fill, window, stride", [("blur", 8, 4), ("mean", 6, 5), ("black", 10, 7)])
def test_occlusion_equals_a_literal_loop(small_model, photo_at_input, fill, window, stride):
    pixels = np.asarray(photo_at_input, np.float32)
    if fill == "blur":
        cover = np.asarray(photo_at_input.filter(ImageFilter.GaussianBlur(0.05 * WIDTH)), np.float32)
    elif fill == "mean":
        cover = np.broadcast_to(pixels.mean(axis=(0, 1)), pixels.shape)
    else:
        cover = np.zeros_like(pixels)

    def probability(p, target):  # the model's input is pixels / 255 ("0..1")
        return softmax(np.asarray(small_model.keras(p[None] / 255.0))[0])[target]

    target = 2
    p0 = probability(pixels, target)
    # Start every stride, plus one flush with the far edge.
    ys = list(range(0, HEIGHT - window + 1, stride))
    xs = list(range(0, WIDTH - window + 1, stride))
    ys += [HEIGHT - window] if ys[-1] != HEIGHT - window else []
    xs += [WIDTH - window] if xs[-1] != WIDTH - window else []
    total, count = np.zeros((HEIGHT, WIDTH)), np.zeros((HEIGHT, WIDTH))
    for y in ys:
        for x in xs:
            edited = pixels.copy()
            edited[y:y + window, x:x + window] = cover[y:y + window, x:x + window]
            total[y:y + window, x:x + window] += p0 - probability(edited, target)
            count[y:y + window, x:x + window] += 1
    expected = total / count

    seen = []
    e = gradcam.explain(small_model, photo_at_input, target, method="occlusion", window=window, stride=stride,
                        fill=fill, progress=lambda done, of: seen.append((done, of)))
    assert e.before_relu.shape == (HEIGHT, WIDTH) and e.layer == "input pixels"
    assert np.allclose(e.before_relu, expected, atol=1e-5)
    assert np.abs(expected).max() > 1e-3, "the patches changed nothing, so this test would say nothing"
    assert seen[-1] == (len(ys) * len(xs), len(ys) * len(xs))


def test_occlusion_defaults_are_sized_to_the_input_and_bad_options_are_one_sentence(small_model, photo_at_input):
    from gradcam.engine.methods import occlusion_window

    assert occlusion_window(224, 224) == (32, 16)
    assert occlusion_window(HEIGHT, WIDTH) == (3, 1)
    for bad in ({"window": 0}, {"window": 100}, {"stride": 2.5}, {"fill": "sepia"}):
        with pytest.raises(ValueError, match="Occlusion's|Unknown fill"):
            gradcam.explain(small_model, photo_at_input, method="occlusion", **bad)


def test_occlusion_stops_when_asked(small_model, photo_at_input):
    stop = threading.Event()
    stop.set()
    with pytest.raises(gradcam.ExplanationStopped):
        gradcam.explain(small_model, photo_at_input, method="occlusion", stop=stop)


# --- a CNN trained here to rely on a planted tag ------------------------------

SIDE = 32
TAG = (slice(3, 9), slice(22, 28))  # rows, columns: a red square near the top-right corner


def tagged_photos(count, rng):
    """Noisy photos with a random grey blob; class 1 ("tagged") carries the red tag,
    class 0 does not. The blob says nothing: only the tag decides."""
    photos = rng.integers(60, 180, (count, SIDE, SIDE, 3)).astype(np.float32)
    labels = rng.integers(0, 2, count)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    for photo, label in zip(photos, labels):
        cy, cx = rng.integers(8, 24, 2)
        photo[np.hypot(yy - cy, xx - cx) < 5] = 220.0
        if label:
            photo[TAG] = (230.0, 20.0, 20.0)
    return photos, labels


@pytest.fixture(scope="module")
def tag_model():
    keras.utils.set_random_seed(21)
    rng = np.random.default_rng(21)
    x, y = tagged_photos(600, rng)
    network = keras.Sequential([
        keras.Input((SIDE, SIDE, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(2),
    ])
    network.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    network.fit(x / 255.0, y, epochs=8, batch_size=32, verbose=0)
    test_x, test_y = tagged_photos(60, rng)
    assert network.evaluate(test_x / 255.0, test_y, verbose=0)[1] > 0.95, "the CNN did not learn the tag"
    return own_model(network, ["plain", "tagged"]), test_x[test_y == 1]


def test_covering_the_tag_flips_the_class_and_the_occlusion_map_sits_on_the_tag(tag_model):
    model, tagged = tag_model
    box = (22 / SIDE, 3 / SIDE, 28 / SIDE, 9 / SIDE)  # the tag as fractions (x0, y0, x1, y1)
    flipped = on_tag = 0
    for pixels in tagged[:8]:
        photo = Image.fromarray(pixels.astype(np.uint8))
        assert gradcam.predict(model, photo, top=1)[0].label == "tagged"
        result = gradcam.what_if(model, photo, box, fill="mean")
        flipped += result.predictions[0].label == "plain"
        heatmap = gradcam.explain(model, photo, "tagged", method="occlusion", window=6, stride=2).heatmap
        py, px = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        on_tag += 3 - 3 <= py < 9 + 3 and 22 - 3 <= px < 28 + 3  # the peak within 3 px of the tag
    assert flipped >= 7
    assert on_tag >= 7
