import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.engine.overlay import colorize


@pytest.fixture
def gradient_map():
    return np.tile(np.linspace(0, 1, 200, dtype=np.float32), (100, 1))


def test_alpha_zero_is_the_photo_and_one_is_the_heatmap(cat):
    heatmap = np.random.default_rng(1).random((cat.height, cat.width)).astype(np.float32)
    assert np.array_equal(np.asarray(gradcam.overlay(cat, heatmap, alpha=0.0)), np.asarray(cat))
    assert np.array_equal(np.asarray(gradcam.overlay(cat, heatmap, alpha=1.0)), colorize(heatmap))


def test_half_alpha_is_the_mean_of_photo_and_heatmap(cat):
    heatmap = np.full((cat.height, cat.width), 0.5, np.float32)
    blended = np.asarray(gradcam.overlay(cat, heatmap, alpha=0.5)).astype(int)
    expected = (np.asarray(cat).astype(int) + colorize(heatmap).astype(int)) / 2
    assert np.abs(blended - expected).max() <= 1


def test_overlay_keeps_the_photos_full_resolution_and_resizes_the_map(gradient_map):
    photo = Image.new("RGB", (1024, 768), "white")
    out = gradcam.overlay(photo, gradient_map, alpha=1.0, colormap="viridis")
    assert out.size == (1024, 768)
    left, right = np.asarray(out)[384, 5], np.asarray(out)[384, 1018]
    assert left.tolist() != right.tolist()  # the map's left-to-right ramp survives the resize


@pytest.mark.parametrize("colormap", gradcam.COLORMAPS)
def test_every_offered_colormap_works(colormap, gradient_map):
    photo = Image.new("RGB", (200, 100), "gray")
    assert gradcam.overlay(photo, gradient_map, 0.7, colormap).size == (200, 100)


def test_jet_runs_from_blue_to_red():
    blue, red = colorize(np.array([[0.0, 1.0]]), "jet")[0]
    assert blue[2] > 100 and blue[0] < 50 and red[0] > 100 and red[2] < 50


def test_bad_arguments_say_what_is_wrong(gradient_map):
    photo = Image.new("RGB", (200, 100))
    with pytest.raises(ValueError, match="colormap"):
        gradcam.overlay(photo, gradient_map, 0.5, "no-such-map")
    with pytest.raises(ValueError, match="alpha"):
        gradcam.overlay(photo, gradient_map, 1.5)
