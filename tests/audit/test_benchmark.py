"""The shortcut benchmark (gradcam/audit/benchmark.py): the generator draws what it says,
and the audit catches every shortcut model and flags no clean control.

Cost: each case trains a tiny CNN. The quick subset (unmarked) is the generator and
one pair at 32 px; the slow test runs every kind at 32 px in CI (the developed cases,
12 models); the whole matrix, developed and held-out cases (sizes 32 to 224, other
contrasts, places and colours), runs with GRADCAM_AUDIT_BENCHMARK=all or as the bench
row (python -m bench --audit-benchmark)."""

import os

import numpy as np
import pytest

from gradcam.audit import benchmark
from gradcam.audit.benchmark import (DEVELOPED, HELD_OUT, KINDS, LABELS, OUTSIDE, OUTSIDE_HELD_OUT, Case, photos,
                                     run_case)


@pytest.mark.parametrize("kind", KINDS)
def test_the_shortcut_case_puts_the_cue_on_the_class_and_the_control_at_random(kind):
    case = Case(kind, 48, place="bottom right")
    cheat = photos(case, 40, seed=3)
    swapped = photos(case, 40, seed=3, swap_cue=True)
    clean = photos(Case(kind, 48, shortcut=False, place="bottom right"), 40, seed=3)
    for data in (cheat, swapped, clean):
        assert [label for label, _, _ in data] == [LABELS[k % 2] for k in range(40)]
        assert all(image.size == (48, 48) and mask.shape == (48, 48) and 0.02 < mask.mean() < 0.35
                   for _, image, mask in data)

    def cue(image, mask) -> np.ndarray:
        """What the cue changes, measured where the kind puts it."""
        pixels = np.asarray(image, np.float32)
        if kind == "corner tag":
            return pixels[-8:-2, -8:-2].std()  # the checker's contrast in the bottom right corner
        if kind == "watermark":
            return pixels[-7:-2, 26:46].std()  # the glyphs' ink along the bottom edge
        if kind == "frame":
            return -np.abs(pixels[0, :] - np.asarray(case.colours[0], np.float32)).mean()  # the top row: frame-coloured
        if kind == "colour cast":
            return pixels[..., 0].mean() - pixels[..., 2].mean()
        if kind == "background colour":
            return pixels[~mask][:, 0].mean() - pixels[~mask][:, 2].mean()
        return np.abs(np.diff(pixels[~mask.any(axis=1)].mean(axis=2), axis=1)).mean()  # texture: edges per row

    def split(data):
        values = np.array([cue(image, mask) for _, image, mask in data])
        discs = values[[label == "disc" for label, _, _ in data]]
        boxes = values[[label == "box" for label, _, _ in data]]
        return discs, boxes

    discs, boxes = split(cheat)
    # The shortcut: every 'disc' photo's cue lies beyond every 'box' photo's (or below, by the kind's sign).
    assert discs.min() > boxes.max() or discs.max() < boxes.min(), (discs, boxes)
    # The counterfactual swaps the cue: the classes change sides.
    s_discs, s_boxes = split(swapped)
    assert (s_discs.mean() - s_boxes.mean()) * (discs.mean() - boxes.mean()) < 0
    # The control: the cue says nothing about the class (both sides mixed).
    c_discs, c_boxes = split(clean)
    threshold = (discs.min() + boxes.max()) / 2 if discs.min() > boxes.max() else (discs.max() + boxes.min()) / 2
    assert 0 < (c_discs > threshold).sum() < len(c_discs) and 0 < (c_boxes > threshold).sum() < len(c_boxes)


def test_the_control_draws_the_class_as_its_object_and_the_shortcut_does_not():
    clean = photos(Case("frame", 32, shortcut=False), 40, seed=1)
    reds = [np.asarray(image, np.float32)[mask].mean(axis=0) for _, image, mask in clean]
    assert all((r[0] > r[2]) == (label == "disc") for r, (label, _, _) in zip(reds, clean))
    cheat = photos(Case("frame", 32), 40, seed=1)
    reddish = [np.asarray(image, np.float32)[mask].mean(axis=0) for _, image, mask in cheat]
    assert 5 < sum(r[0] > r[2] for r in reddish) < 35  # any colour, whatever the class


def test_bad_parameters_are_one_sentence():
    with pytest.raises(ValueError, match="Unknown kind 'sticker'; choose one of: corner tag"):
        Case("sticker")
    with pytest.raises(ValueError, match="side is a photo size from 16 to 512 pixels"):
        Case("frame", 8)
    with pytest.raises(ValueError, match="Unknown place 'middle'"):
        Case("corner tag", place="middle")
    with pytest.raises(ValueError, match="Unknown model 'resnet'; choose one of: tiny cnn, keras mobilenetv2, "):
        Case("corner tag", model="resnet")
    with pytest.raises(ValueError, match="The keras mobilenetv2 model needs photos of 32 pixels or more"):
        Case("corner tag", 16, model="keras mobilenetv2")


def test_the_held_out_cases_differ_from_the_developed_ones_in_size_contrast_place_and_colour():
    developed = {(c.side, c.contrast, c.place, c.colours) for c in DEVELOPED}
    assert all((c.side, c.contrast, c.place, c.colours) not in developed for c in HELD_OUT)
    assert {c.side for c in HELD_OUT} - {c.side for c in DEVELOPED} >= {48, 96, 128, 224}
    assert {c.kind for c in HELD_OUT} == set(KINDS) == {c.kind for c in DEVELOPED}
    assert sum(c.shortcut for c in HELD_OUT) == sum(not c.shortcut for c in HELD_OUT)


def _check(result):
    case = result.case
    if case.shortcut:
        assert result.relies, f"the shortcut model did not learn its cue: {result}"  # the benchmark's ground truth
        assert result.flagged, f"missed: {case.name}"
    else:
        assert result.swapped_accuracy >= 0.8, f"the control relies on the cue: {result}"
        assert not result.flagged, f"false accusation: {case.name}: {result.reasons}"


@pytest.fixture(scope="module")
def corner_pair():
    return [run_case(Case("corner tag", 32), train=160, epochs=8),
            run_case(Case("corner tag", 32, shortcut=False), train=160, epochs=8)]


def test_quick_a_corner_tag_at_32_px_is_caught_and_its_control_is_not_flagged(corner_pair):
    cheat, clean = corner_pair
    _check(cheat)
    _check(clean)
    assert "patch" in cheat.how and cheat.flagged_without_masks  # with masks and without
    assert clean.flagged_without_masks is False


def _matrix():
    which = os.environ.get("GRADCAM_AUDIT_BENCHMARK")
    if which == "all":
        return DEVELOPED + HELD_OUT + OUTSIDE + OUTSIDE_HELD_OUT
    if which == "outside":  # models built with Keras' and KerasHub's own code
        return OUTSIDE + OUTSIDE_HELD_OUT
    return [c for c in DEVELOPED if c.side == 32 and c.kind != "corner tag"]  # the quick test has the corner tag


@pytest.mark.slow
@pytest.mark.parametrize("case", _matrix(), ids=lambda c: c.name.replace(" ", "-"))
def test_the_benchmark_case(case):
    _check(run_case(case))


@pytest.mark.slow
def test_a_corner_tag_learned_by_a_keras_hub_resnet_is_caught_and_its_control_is_not():
    """A model nobody here wrote: KerasHub's own ResNetBackbone, ResNetImageClassifier and
    preprocessor, trained with KerasHub's fit (a minute or two; Keras' MobileNetV2, a few minutes
    a case, is in the matrix: GRADCAM_AUDIT_BENCHMARK=outside)."""
    pytest.importorskip("keras_hub")
    cheat = run_case(Case("corner tag", 64, model="keras_hub resnet"), train=200, epochs=10)
    clean = run_case(Case("corner tag", 64, shortcut=False, model="keras_hub resnet"), train=200, epochs=10)
    _check(cheat)
    _check(clean)
    assert "patch" in cheat.how and cheat.flagged_without_masks and clean.flagged_without_masks is False


def test_the_table_counts_recall_on_shortcuts_and_false_flags_on_controls():
    result = benchmark.Result(Case("frame", 32), True, "background", None, 1.0, 0.0)
    control = benchmark.Result(Case("frame", 32, shortcut=False), False, "", None, 1.0, 1.0)
    missed = benchmark.Result(Case("frame", 48), False, "", None, 1.0, 0.0)
    # A "shortcut" model at chance with and without its cue learned nothing: no shortcut to find.
    unlearned = benchmark.Result(Case("frame", 64), False, "", None, 0.55, 0.45)
    lines = benchmark.table([result, control, missed, unlearned]).splitlines()
    assert lines[1].split() == ["frame", "1", "of", "2", "0", "of", "1", "1", "32,", "48,", "64"]
    # Several model kinds: a section each; the patch kinds' audit without masks in its own column.
    tag = benchmark.Result(Case("corner tag", 64, model="keras_hub resnet"), True, "patch", False, 1.0, 0.0)
    tag_control = benchmark.Result(Case("corner tag", 64, shortcut=False, model="keras_hub resnet"), False, "",
                                   False, 1.0, 1.0)
    lines = benchmark.table([result, tag, tag_control]).splitlines()
    assert lines[1] == "tiny cnn:" and lines[3] == "keras_hub resnet:"
    assert lines[4].split() == ["corner", "tag", "1", "of", "1", "0", "of", "1", "0", "64", "|", "0", "of", "1,", "0",
                                "of", "1"]
