"""The audit's sources and masks read without a model: bad input is one sentence."""

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.audit.dataset_audit import random_boxes, sameness_of
from gradcam.audit.sources import mask_at, read_masks, read_source
from gradcam.audit.spray import Region


def test_a_source_that_cannot_be_read_is_one_sentence(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        gradcam.audit(None, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        gradcam.audit(None, tmp_path / "empty")
    with pytest.raises(ValueError, match="is not a readable .zip archive"):
        gradcam.audit(None, ("photos.zip", b"PK\x03\x04 not really"))
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    with pytest.raises(ValueError, match="needs a model"):
        gradcam.audit(None, tmp_path)


def test_class_folders_give_true_labels_only_when_they_name_the_models_classes(tmp_path):
    for name in ("Red_Disc", "blue", "other"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / "a.png")
    source = read_source(tmp_path, ["red disc", "blue"])
    assert {e.path: e.true_label for e in source.entries} == {"Red_Disc/a.png": "red disc", "blue/a.png": "blue",
                                                              "other/a.png": None}
    assert "'other'" in source.problems[0]
    flat = read_source(tmp_path, ["cat", "dog"])
    assert all(e.true_label is None for e in flat.entries) and "not the model's class names" in flat.problems[0]


def test_boxes_csv_become_masks_and_a_bad_line_is_one_sentence(tmp_path):
    (tmp_path / "boxes.csv").write_text("path,x0,y0,x1,y1\nred/1.png,2,3,6,5\nred/1.png,0,0,1,1\n")
    masks, _ = read_masks(tmp_path / "boxes.csv")
    inside = mask_at(masks["red/1"], (8, 8))
    assert inside.sum() == 4 * 2 + 1 and inside[3:5, 2:6].all() and inside[0, 0]
    (tmp_path / "bad.csv").write_text("red/1.png,2,3,1,5\n")
    with pytest.raises(ValueError, match="Line 1 of the boxes CSV is not a box"):
        read_masks(tmp_path / "bad.csv")


def test_random_boxes_have_the_regions_size_and_lie_elsewhere():
    region = Region(0, 0, 2, 2, 7, 7)
    boxes = random_boxes(region, 16)
    assert len(set(boxes)) == 16  # a different place for each member
    for x0, y0, x1, y1 in boxes:
        assert (x1 - x0, y1 - y0) == pytest.approx((2 / 7, 2 / 7))
        assert x0 >= 2 / 7 - 1e-9 or y0 >= 2 / 7 - 1e-9  # no overlap with the region


def test_sameness_is_high_for_a_mark_that_stays_and_low_for_content_that_changes():
    rng = np.random.default_rng(0)
    looks = rng.random((10, 32, 32, 3)).astype(np.float32)
    looks[:, :8, :8] = 0.5  # the same in every photo
    same, variety = sameness_of(looks, (0, 0, 0.25, 0.25))
    assert same > 0.95 and variety > 0.2
    changing, _ = sameness_of(looks, (0.5, 0.5, 0.75, 0.75))
    assert changing < 0.1
