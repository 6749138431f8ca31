import numpy as np
import pytest

from gradcam.trust.pointing import judge_guess


def test_a_guess_on_the_hot_spot_hits_and_one_far_away_misses():
    heatmap = np.zeros((100, 200), np.float32)  # wide: the distance must weigh x and y by pixels
    heatmap[10:30, 150:190] = 1.0  # the hot spot, top right
    heatmap[20, 170] = 1.0
    near = judge_guess(heatmap, 0.85, 0.2)
    assert near.hit
    far = judge_guess(heatmap, 0.1, 0.9)
    assert not far.hit
    # The peak is the first maximum: row 10, column 150 -> (150.5/200, 10.5/100).
    assert far.peak == pytest.approx((150.5 / 200, 10.5 / 100))
    expected = np.hypot(0.1 * 200 - 150.5, 0.9 * 100 - 10.5) / np.hypot(200, 100)
    assert far.distance == pytest.approx(expected)


def test_an_empty_map_has_no_hit_and_a_bad_guess_is_one_sentence():
    assert not judge_guess(np.zeros((8, 8)), 0.5, 0.5).hit
    with pytest.raises(ValueError, match="finite"):
        judge_guess(np.ones((8, 8)), float("nan"), 0.5)
