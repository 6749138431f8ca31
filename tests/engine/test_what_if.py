"""What if part of the photo were covered? ``gradcam.what_if`` against the edit done by hand."""

import keras
import numpy as np
import pytest
from PIL import Image, ImageFilter

import gradcam
from helpers import own_model

HEIGHT, WIDTH = 32, 40  # not square, so a transposed box would fail


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(3)
    network = keras.Sequential([
        keras.Input((HEIGHT, WIDTH, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),  # position-sensitive: covering any part changes the answer
        keras.layers.Dense(5),
    ])
    return own_model(network, ["a", "b", "c", "d", "e"])


@pytest.fixture(scope="module")
def photo_at_input():
    rng = np.random.default_rng(5)
    return Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))


def probabilities_by_hand(model, image):
    return {p.index: p.probability for p in gradcam.predict(model, image, top=len(model.labels))}


@pytest.mark.parametrize("fill", ["blur", "mean", "black"])
def test_what_if_equals_covering_the_box_by_hand_then_predict(small_model, photo_at_input, fill):
    pixels = np.asarray(photo_at_input, np.float32)
    if fill == "blur":  # radius 5% of the longer side, as the deletion curves
        cover = np.asarray(photo_at_input.filter(ImageFilter.GaussianBlur(0.05 * WIDTH)), np.float32)
    elif fill == "mean":
        cover = np.broadcast_to(pixels.mean(axis=(0, 1)), pixels.shape)
    else:
        cover = np.zeros_like(pixels)
    # The box (0.25, 0.5, 0.75, 1.0): columns whose centre is in [10, 30), rows in [16, 32).
    edited = pixels.copy()
    edited[16:32, 10:30] = cover[16:32, 10:30]
    edited_photo = Image.fromarray(np.round(edited).astype(np.uint8))

    result = gradcam.what_if(small_model, photo_at_input, (0.25, 0.5, 0.75, 1.0), fill=fill)

    assert np.array_equal(np.asarray(result.image), np.asarray(edited_photo))
    expected = gradcam.predict(small_model, edited_photo, top=5)
    assert [p.index for p in result.predictions] == [p.index for p in expected]
    for got, want in zip(result.predictions, expected):
        assert got.probability == pytest.approx(want.probability, abs=1e-5)
    before = probabilities_by_hand(small_model, photo_at_input)
    after = probabilities_by_hand(small_model, edited_photo)
    for index in range(5):
        assert result.change(index) == pytest.approx(after[index] - before[index], abs=1e-5)
    assert abs(result.changes).sum() > 1e-3, "the cover changed nothing, so this test would say nothing"


def test_a_mask_at_any_resolution_covers_what_it_says(small_model, photo_at_input):
    nothing = gradcam.what_if(small_model, photo_at_input, np.zeros((7, 9)))
    assert np.array_equal(np.asarray(nothing.image), np.asarray(photo_at_input))
    assert np.abs(nothing.changes).max() < 1e-6

    everything = gradcam.what_if(small_model, photo_at_input, np.ones((300, 11), bool), fill="black")
    assert np.asarray(everything.image).max() == 0
    black = Image.new("RGB", (WIDTH, HEIGHT))
    assert everything.predictions[0].index == gradcam.predict(small_model, black, top=1)[0].index

    # A mask at the input's size is taken pixel for pixel: the same as the box.
    mask = np.zeros((HEIGHT, WIDTH))
    mask[16:32, 10:30] = 1
    by_mask = gradcam.what_if(small_model, photo_at_input, mask)
    by_box = gradcam.what_if(small_model, photo_at_input, (0.25, 0.5, 0.75, 1.0))
    assert np.array_equal(np.asarray(by_mask.image), np.asarray(by_box.image))


def test_several_boxes_cover_their_union(small_model, photo_at_input):
    both = gradcam.what_if(small_model, photo_at_input, [(0.0, 0.0, 0.5, 0.5), (0.5, 0.5, 1.0, 1.0)], fill="black")
    covered = np.asarray(both.image).max(axis=-1) == 0
    expected = np.zeros((HEIGHT, WIDTH), bool)
    expected[:16, :20] = expected[16:, 20:] = True  # the top-left and bottom-right quarters
    assert np.array_equal(covered, expected)


def test_editing_again_with_the_known_unedited_answer_gives_the_same_result(small_model, photo_at_input):
    first = gradcam.what_if(small_model, photo_at_input, (0.0, 0.0, 0.5, 0.5))
    again = gradcam.what_if(small_model, photo_at_input, (0.5, 0.5, 1.0, 1.0))
    reused = gradcam.what_if(small_model, photo_at_input, (0.5, 0.5, 1.0, 1.0), unedited=first.unedited_logits)
    assert np.allclose(again.changes, reused.changes, atol=1e-5)
    assert [p.index for p in again.predictions] == [p.index for p in reused.predictions]


@pytest.mark.parametrize("region, fill, words", [
    ((0.1, float("nan"), 0.5, 0.5), "blur", "finite"),
    (("a", 0, 1, 1), "blur", "four numbers"),
    (np.zeros((2, 3, 4)), "blur", "two-dimensional"),
    (np.full((4, 4), np.inf), "blur", "not NaN"),
    (np.zeros((10_000, 2)), "blur", "at most"),
    ((0, 0, 1, 1), "sepia", "Unknown fill"),
    ("the cup", "blur", "a box"),
])
def test_a_bad_region_or_fill_is_one_sentence(small_model, photo_at_input, region, fill, words):
    with pytest.raises(ValueError, match=words):
        gradcam.what_if(small_model, photo_at_input, region, fill=fill)


def test_covering_the_cup_lowers_espresso_more_than_covering_the_cat(lite0):
    sample = Image.open("samples/cat-and-coffee.jpg")  # the cat on the left, the cup on the right
    espresso = lite0.labels.index("espresso")
    cup = gradcam.what_if(lite0, sample, (0.5, 0.0, 1.0, 1.0))
    cat = gradcam.what_if(lite0, sample, (0.0, 0.0, 0.5, 1.0), unedited=cup.unedited_logits)
    before = cup.probabilities[espresso] - cup.change(espresso)
    assert cup.change(espresso) < cat.change(espresso)
    assert cup.change(espresso) < -0.5 * before  # most of espresso's probability goes with the cup
    # Covering the cat takes the cat classes down instead.
    assert cat.change(cat.original[0].index) < -0.2


def nested(box, depth: int):
    for _ in range(depth):
        box = [box]
    return box


@pytest.mark.parametrize("region", [
    pytest.param([[[[0.1, 0.1, 0.5, 0.5]] * 64] * 64] * 64, id="64^3-boxes-nested-in-lists"),
    pytest.param(nested([0.1, 0.1, 0.5, 0.5], 5000), id="5000-levels-of-nesting"),
    pytest.param([[0.1, 0.1, 0.5, 0.5], [[0.2, 0.2, 0.3, 0.3]]], id="a-box-and-a-list-of-boxes"),
])
def test_boxes_nested_in_lists_are_one_sentence_at_once(small_model, photo_at_input, region):
    # Issue 30: 64^3 nested boxes took 47 s; 5000 levels raised RecursionError.
    import time

    started = time.monotonic()
    with pytest.raises(ValueError) as refused:
        gradcam.what_if(small_model, photo_at_input, region)
    assert time.monotonic() - started < 2
    assert str(refused.value) == ("A region is a box (x0, y0, x1, y1) as fractions of the image, a list of at most "
                                  "64 such boxes, or a mask array (height, width).")
    # The same call with a flat list of boxes still works, and so does a box.
    flat = gradcam.what_if(small_model, photo_at_input, [[0.1, 0.1, 0.5, 0.5], (0.6, 0.6, 0.9, 0.9)])
    assert flat.mask.sum() > 0 and gradcam.what_if(small_model, photo_at_input, (0.1, 0.1, 0.5, 0.5)).mask.sum() > 0
