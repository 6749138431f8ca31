"""SpRAy on maps whose groups are known: built in code, checked by eye-level facts."""

import numpy as np
import pytest

from gradcam.audit.spray import downsampled, eigengap, normalised, region_of, spray


def blob(size, row, col, width=1.0):
    ys, xs = np.mgrid[0:size, 0:size]
    return np.exp(-((ys - row) ** 2 + (xs - col) ** 2) / (2 * width ** 2)).astype(np.float32)


def test_area_downsampling_keeps_each_cells_mean():
    maps = np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16)
    small = downsampled(maps, 8)
    # 16 -> 8: every cell is the plain mean of a 2 x 2 block.
    expected = maps.reshape(2, 8, 2, 8, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(small, expected, rtol=1e-6)
    # 7 -> 7: left alone; 14 -> 8: weights overlap but mass is preserved.
    odd = np.random.default_rng(0).random((3, 14, 14)).astype(np.float32)
    np.testing.assert_allclose(downsampled(odd, 8).sum(axis=(1, 2)) * (14 * 14) / 64, odd.sum(axis=(1, 2)), rtol=1e-5)


def test_normalised_maps_sum_to_one_and_empty_maps_are_marked():
    maps = np.stack([blob(7, 2, 2) * 5, -np.ones((7, 7), np.float32), np.full((7, 7), np.nan, np.float32)])
    normal, empty = normalised(maps)
    assert normal[0].sum() == pytest.approx(1.0)
    assert empty.tolist() == [False, True, True]
    assert not normal[1:].any()


def test_region_is_the_box_around_the_peak_holding_half_the_mass():
    mean = np.zeros((8, 8))
    mean[0:2, 6:8] = 1.0  # a 2 x 2 patch at the top right
    mean[5, 1] = 0.5  # a weaker spot elsewhere
    region = region_of(mean / mean.sum())
    # Half of 4.5 is 2.25: the box must be 3 of the patch's cells at least, and only there.
    assert region.row0 >= 0 and region.row1 <= 2 and region.col0 >= 6 and region.col1 <= 8
    assert mean[region.row0:region.row1, region.col0:region.col1].sum() >= 0.5 * mean.sum()
    x0, y0, x1, y1 = region.box
    assert x0 >= 0.75 and y1 <= 0.25


def test_three_places_give_three_clusters_each_with_its_region():
    rng = np.random.default_rng(1)
    places = [(1, 1), (1, 5), (5, 3)]
    maps, truth = [], []
    for i in range(90):
        group = i % 3
        row, col = places[group]
        maps.append(blob(7, row + rng.normal(0, 0.3), col + rng.normal(0, 0.3)) + rng.random((7, 7)) * 0.05)
        truth.append(group)
    result = spray(np.stack(maps))
    assert result.count == 3
    truth = np.array(truth)
    for cluster in result.clusters:
        groups = truth[cluster.members]
        assert (groups == groups[0]).all()  # each cluster is one place, whole
        row, col = places[groups[0]]
        x0, y0, x1, y1 = cluster.region.box
        assert x0 <= (col + 0.5) / 7 <= x1 and y0 <= (row + 0.5) / 7 <= y1
        assert cluster.consistency > 0.5
    assert sorted(len(c.members) for c in result.clusters) == [30, 30, 30]


def test_one_place_is_one_cluster():
    rng = np.random.default_rng(2)
    maps = np.stack([blob(7, 0.5, 0.5) + rng.random((7, 7)) * 0.1 for _ in range(60)])
    result = spray(maps)
    assert result.count == 1
    assert len(result.clusters[0].members) == 60


def test_a_map_unlike_its_cluster_is_an_outlier():
    rng = np.random.default_rng(3)
    maps = [blob(7, 1, 1) + rng.random((7, 7)) * 0.05 for _ in range(40)]
    maps.append(blob(7, 6, 6, 0.7))  # one map somewhere else entirely
    maps.append(np.zeros((7, 7), np.float32))  # one without positive evidence
    result = spray(np.stack(maps))
    assert 40 in result.outliers.tolist()
    assert result.empty.tolist() == [41] and result.labels[41] == -1
    assert len(set(result.outliers.tolist()) & set(range(40))) <= 1


def test_eigengap_picks_the_jump():
    assert eigengap(np.array([0.0, 0.0, 0.01, 0.6, 0.7, 0.8])) == 3
    assert eigengap(np.array([0.0, 0.9, 0.95])) == 1


def test_a_large_class_takes_the_sparse_path_and_still_finds_its_places():
    # 6,000 maps: past LARGE_CLASS (neighbours in principal directions) and past the
    # dense solve (ARPACK on the sparse graph).
    rng = np.random.default_rng(4)
    places = [(1, 1), (1, 5), (5, 3)]
    group = rng.integers(0, 3, 6000)
    maps = np.stack([blob(7, places[g][0] + rng.normal(0, 0.3), places[g][1] + rng.normal(0, 0.3))
                     + rng.random((7, 7)) * 0.05 for g in group])
    result = spray(maps)
    assert result.count == 3
    for cluster in result.clusters:
        groups = group[cluster.members]
        assert (groups == groups[0]).mean() > 0.99
