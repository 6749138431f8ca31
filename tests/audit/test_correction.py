"""The fix (P-ClArC, gradcam/audit/correction.py) on models trained here with a planted cue.

"tag": a small CNN trained on photos where every 'red' photo carries a checker tag in
the top left corner and nothing else tells the classes apart (the disc's colour is
random), so it calls a photo 'red' exactly when the tag is there. The audited photos
are reds with and without the tag (the same photo drawn twice from one seed) and blues.
"""

import json
import re

import numpy as np
import pytest
from PIL import Image

from helpers import (AUDIT_SIDE, SHAPE_LABELS, TAG_BOX, nested_tiny, on_background, shape_on_background, tagged_dataset,
                     tagged_photo, trained_cnn, write_image_folder)

import gradcam
from gradcam.audit.correction import correct, correct_finding, limits_sentence, projected, with_projection
from gradcam.audit.dataset_audit import reliance_test
from gradcam.audit.spray import Region
from gradcam.engine.passes import activations_pass

TAG_REGION = Region(0, 0, 2, 2, 8, 8)  # the tag's cells on the 8x8 map: pixels 0..16 of 64


def _pair(seed: int):
    """The same red photo without and with the tag (one seed draws both)."""
    clean, _ = tagged_photo(np.random.default_rng(seed), None, False)
    tagged, _ = tagged_photo(np.random.default_rng(seed), None, True)
    return clean, tagged


def _with_tag(photo: Image.Image, tagged: Image.Image) -> Image.Image:
    """``photo`` with the tag's pixels taken from ``tagged``."""
    pixels = np.asarray(photo).copy()
    x0, y0, x1, y1 = TAG_BOX
    pixels[y0:y1, x0:x1] = np.asarray(tagged)[y0:y1, x0:x1]
    return Image.fromarray(pixels)


def _answers(model, photos):
    return [many[0].predictions[0].label for many in gradcam.explain_batch(model, photos)]


@pytest.fixture(scope="module")
def tag(tmp_path_factory):
    model = trained_cnn(tagged_dataset(1, 300, shortcut=True), epochs=10)
    pairs = [_pair(1000 + k) for k in range(36)]
    blues = [tagged_photo(np.random.default_rng(2000 + k), None, False)[0] for k in range(20)]
    # Audited: 20 reds with the tag, 16 without, 20 blues.
    rows = ([("red", tagged, None) for _, tagged in pairs[:20]] + [("red", clean, None) for clean, _ in pairs[20:]]
            + [("blue", photo, None) for photo in blues])
    root = tmp_path_factory.mktemp("tag") / "photos"
    for k, (label, photo, _) in enumerate(rows):
        (root / label).mkdir(parents=True, exist_ok=True)
        photo.save(root / label / f"{k:03d}.png")
    found = gradcam.audit(model, root)
    fix = correct_finding(model, found, root)
    return model, root, pairs, found, fix


@pytest.mark.slow
def test_the_audit_flags_the_tag_and_the_fix_takes_its_direction_from_the_flagged_reds(tag):
    model, _, pairs, found, fix = tag
    assert found.flagged and found.flagged[0].label == "red"
    # Before: the tag alone makes 'red'.
    assert _answers(model, [t for _, t in pairs]).count("red") >= 34
    assert _answers(model, [c for c, _ in pairs]).count("red") <= 2
    assert fix.label == "red" and fix.layer == found.layer  # the audited layer: the last feature map, 8x8
    assert fix.projection_layer == found.layer + "_pclarc"
    assert fix.with_cue == len(found.flagged[0].members) and fix.without_cue >= 10


@pytest.mark.slow
def test_after_the_fix_the_tag_no_longer_matters(tag):
    model, _, pairs, _, fix = tag
    corrected = fix.model
    # The reds get the same answers with and without the tag (fresh photos, not the audited ones).
    fresh = [_pair(5000 + k) for k in range(30)]
    with_tag = _answers(corrected, [t for _, t in fresh])
    without = _answers(corrected, [c for c, _ in fresh])
    assert sum(a == b for a, b in zip(with_tag, without)) >= 29, (with_tag, without)
    # Blues with the tag transplanted keep their own answer; before the fix they became 'red'.
    blues = [tagged_photo(np.random.default_rng(6000 + k), None, False)[0] for k in range(100)]
    transplanted = [_with_tag(blue, fresh[k % len(fresh)][1]) for k, blue in enumerate(blues)]
    assert _answers(model, transplanted).count("red") >= 90
    assert _answers(corrected, transplanted).count("blue") >= 97
    # Clean blues: within a point of the original's accuracy.
    before, after = _answers(model, blues).count("blue"), _answers(corrected, blues).count("blue")
    assert abs(before - after) <= 1, (before, after)
    # The tag's reliance falls to that of a region of the same size elsewhere.
    tagged = [t for _, t in fresh[:16]]
    red = model.labels.index("red")
    _, _, reliance_before, random_before = reliance_test(model, tagged, [red] * 16, TAG_REGION)
    _, _, reliance_after, random_after = reliance_test(corrected, tagged, [red] * 16, TAG_REGION)
    assert reliance_before > 0.5 and random_before < 0.1
    assert abs(reliance_after - random_after) < 0.05, (reliance_after, random_after)


@pytest.mark.slow
def test_the_re_audit_of_the_corrected_model_flags_nothing_and_the_page_sentence_says_retrain(tag):
    from gradcam.audit.compare import before_and_after

    _, root, _, found, fix = tag
    proof = before_and_after(fix, found, root)
    again = proof.second
    assert again.layer == fix.projection_layer and again.method == found.method
    assert not again.flagged, again.summary()
    assert proof.first is found and [c.flagged for c in proof.classes if c.label == "red"][0][1] == 0
    # The model never learned 'red' without the tag: the sentence says what the fix cannot do.
    assert fix.clean_answers.count("blue") >= fix.without_cue - 1
    assert fix.limits == (f"The correction makes the model ignore the cue; it does not teach it what it never learned: "
                          f"without the cue it calls {fix.clean_answers.count('blue')} of {fix.without_cue} 'red' "
                          "photos 'blue'"
                          + (" and 1 something else" if fix.clean_answers.count("blue") < fix.without_cue else "")
                          + ". It must be retrained on data without the cue.")


@pytest.mark.slow
def test_the_inserted_layer_computes_the_projection_written_out(tag):
    model, _, pairs, _, fix = tag
    photos = [t for _, t in pairs[:3]] + [c for c, _ in pairs[30:33]]
    x = np.concatenate([model.prepare(p) for p in photos])
    a = np.asarray(activations_pass(model, fix.layer)(x), np.float64)
    seen = np.asarray(activations_pass(fix.model, fix.projection_layer)(x), np.float64)
    v, z = fix.direction.astype(np.float64), fix.reference.astype(np.float64)
    assert abs(np.sqrt((v * v).sum()) - 1) < 1e-6
    for k in range(len(photos)):  # a' = a - v v^T (a - z), one photo at a time, the inner product as a sum
        along = 0.0
        for index in np.ndindex(v.shape):
            along += v[index] * (a[k][index] - z[index])
        expected = a[k] - v * along
        assert np.allclose(seen[k], expected, atol=1e-4), np.abs(seen[k] - expected).max()
    assert np.allclose(projected(a, v, z), seen, atol=1e-4)
    # v is the normalised difference of the mean activations, with the cue minus without it.
    assert fix.separation > 0


@pytest.mark.slow
def test_the_saved_model_loads_in_safe_mode_and_through_the_sandbox(tag, tmp_path):
    import keras

    _, _, pairs, _, fix = tag
    path = tmp_path / "corrected.keras"
    fix.save(path)
    photos = [t for _, t in pairs[:4]]
    x = np.concatenate([fix.model.prepare(p) for p in photos])
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert np.allclose(loaded.predict(x, verbose=0), fix.model.keras.predict(x, verbose=0), atol=1e-5)
    sandboxed = gradcam.load_model(str(path), labels=["red", "blue"], sandbox=True)
    assert _answers(sandboxed, photos) == _answers(fix.model, photos)
    assert fix.projection_layer in [t.name for t in gradcam.target_layers(sandboxed)]
    with pytest.raises(ValueError, match="must end in .keras"):
        fix.save(tmp_path / "corrected.h5")


# --- a background cue, with masks ------------------------------------------------------

GREEN = (70, 160, 90)


def _flat(rng, colour):
    return Image.fromarray(np.clip(np.asarray(colour) + rng.normal(0, 10, (AUDIT_SIDE, AUDIT_SIDE, 3)), 0, 255)
                           .astype(np.uint8))


def _not_green(rng):
    while True:
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - GREEN).max() > 60:
            return colour


@pytest.fixture(scope="module")
def background(tmp_path_factory):
    """Every 'disc' photo lies on green, every 'square' on any other colour: the model
    learns the background, not the shapes. The fix's clean photos: the same discs cut out
    by their masks onto other backgrounds."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(300):
        label = SHAPE_LABELS[k % 2]
        rows.append((label, *shape_on_background(rng, label, GREEN if label == "disc" else _not_green(rng))))
    model = trained_cnn(rows, epochs=10, labels=SHAPE_LABELS)
    rng = np.random.default_rng(5)
    discs = [shape_on_background(rng, "disc", GREEN) for _ in range(40)]
    squares = [shape_on_background(rng, "square", _not_green(rng)) for _ in range(100)]
    elsewhere = [on_background(photo, mask, _flat(rng, _not_green(rng))) for photo, mask in discs]
    fix = correct(model, [photo for photo, _ in discs[:20]], elsewhere[:20], label="disc")
    audited = [("disc", photo, mask) for photo, mask in discs[20:]] + [("square", *pair) for pair in squares[:20]]
    folder, masks = write_image_folder(tmp_path_factory.mktemp("background") / "photos", audited)
    return model, fix, discs, squares, elsewhere, folder, masks


@pytest.mark.slow
def test_a_background_cue_is_projected_out_and_the_re_audit_with_masks_flags_nothing(background):
    model, fix, discs, squares, elsewhere, folder, masks = background
    on_green = [photo for photo, _ in discs[20:]]
    moved = elsewhere[20:]  # the same discs on other backgrounds
    assert _answers(model, on_green).count("disc") == 20 and _answers(model, moved).count("disc") <= 2
    # After the fix the background no longer matters: the same answers on green and elsewhere.
    assert _answers(fix.model, on_green) == _answers(fix.model, moved)

    def disc_probability(m, photos):
        return np.array([many[0].probability for many in gradcam.explain_batch(m, photos, [["disc"]] * len(photos))])

    before = np.abs(disc_probability(model, on_green) - disc_probability(model, moved)).mean()
    after = np.abs(disc_probability(fix.model, on_green) - disc_probability(fix.model, moved)).mean()
    assert before > 0.9 and after < 0.02, (before, after)
    # Squares pasted onto green keep their answer; before the fix green made them discs.
    rng = np.random.default_rng(9)
    swapped = [on_background(photo, mask, _flat(rng, GREEN)) for photo, mask in squares]
    assert _answers(model, swapped).count("square") <= 5 and _answers(fix.model, swapped).count("square") >= 97
    # Clean squares: no worse than a point below the original.
    plain = [photo for photo, _ in squares]
    assert _answers(fix.model, plain).count("square") >= _answers(model, plain).count("square") - 1
    # The model never learned discs: the sentence says so.
    assert fix.limits.endswith("It must be retrained on data without the cue.") and "'disc' photos 'square'" in \
        fix.limits
    again = gradcam.audit(fix.model, folder, masks=masks, layer=fix.projection_layer)
    assert again.masks and not again.flagged, again.summary()


# --- quick: the layer goes in anywhere, and bad input is one sentence --------------------


def test_the_projection_goes_inside_a_nested_base_model_and_leaves_the_original_alone():
    model = nested_tiny()
    names = [t.name for t in gradcam.target_layers(model)]
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(6)]
    fix = correct(model, photos[:3], photos[3:], layer="base/first")
    assert fix.projection_layer == "base/first_pclarc"
    assert [t.name for t in gradcam.target_layers(fix.model)] == ["base/first", "base/first_pclarc", "base/second"]
    assert [t.name for t in gradcam.target_layers(model)] == names  # the original is not changed
    # With a zero direction the copy computes exactly what the original does.
    copy, _ = with_projection(model.keras, "base/first", np.zeros_like(fix.direction), np.zeros_like(fix.reference))
    x = np.concatenate([model.prepare(p) for p in photos])
    assert np.allclose(copy(x), model.keras(x), atol=1e-6)
    assert gradcam.explain(fix.model, photos[0], layer=fix.projection_layer).heatmap.shape == (32, 32)


@pytest.mark.slow
def test_a_built_in_model_is_corrected_for_a_pasted_patch_and_keeps_its_other_answers():
    from helpers import photo

    lite = gradcam.load_model("EfficientNet-Lite0")

    def patched(image):
        out = image.copy()
        width, height = out.size
        out.paste((255, 0, 255), (int(width * 0.8), int(height * 0.8), width, height))  # a magenta corner
        return out

    names = ("cat", "coffee", "rocket", "chelsea", "camera")
    plain = [photo(name) for name in names]
    fix = correct(lite, [patched(p) for p in plain], plain)
    assert fix.layer == "top_activation" and fix.projection_layer == "top_activation_pclarc"
    # A photo without the patch keeps its answer; a photo with it gets what it gets without it.
    astronaut = photo("astronaut")
    assert gradcam.predict(fix.model, astronaut)[0].label == gradcam.predict(lite, astronaut)[0].label
    with_patch = [gradcam.predict(fix.model, patched(p))[0].label for p in plain]
    assert with_patch == [gradcam.predict(fix.model, p)[0].label for p in plain]


def test_bad_input_is_one_sentence():
    model = nested_tiny()
    one = [Image.new("RGB", (32, 32))]
    with pytest.raises(ValueError, match="at least 2 photos with the cue and 2 without"):
        correct(model, one, one * 3)
    same = [Image.new("RGB", (32, 32), (9, 9, 9))] * 2
    with pytest.raises(ValueError, match="give the same activations"):
        correct(model, same, same, layer="base/first")
    with pytest.raises(ValueError, match='no layer "nowhere"'):
        correct(model, same, same, layer="nowhere")
    assert limits_sentence("disc", ["box"] * 38 + ["disc"] * 2) == (
        "The correction makes the model ignore the cue; it does not teach it what it never learned: without the "
        "cue it calls 38 of 40 'disc' photos 'box'. It must be retrained on data without the cue.")
    assert limits_sentence("disc", ["disc"] * 36 + ["box"] * 4).startswith(
        "Without the cue the corrected model still calls 36 of 40 'disc' photos 'disc'")


# --- two models on one dataset: before and after the fix ---------------------------------


@pytest.fixture(scope="module")
def before_after(tag):
    from gradcam.audit.compare import compare_models
    from gradcam.audit.counterfactuals import CounterfactualSet

    model, root, _, _, fix = tag
    fresh = [_pair(7000 + k) for k in range(12)]
    blues = [tagged_photo(np.random.default_rng(8000 + k), None, False)[0] for k in range(12)]
    sets = [CounterfactualSet("tag removed", [c for c, _ in fresh], ["red"] * 12),
            CounterfactualSet("tag transplanted", [_with_tag(b, t) for b, (_, t) in zip(blues, fresh)], ["blue"] * 12)]
    return compare_models(model, fix.model, root, counterfactuals=sets, second_layer=fix.projection_layer)


@pytest.mark.slow
def test_the_comparison_sets_both_audits_side_by_side(before_after, tag):
    _, _, _, found, fix = tag
    result = before_after
    assert result.names == ("test", "test (corrected)")
    red = next(c for c in result.classes if c.label == "red")
    blue = next(c for c in result.classes if c.label == "blue")
    assert red.flagged[0] >= 1 and red.flagged[1] == 0  # the shortcut is gone from the re-audit
    assert red.count == 36 and blue.count == 20
    assert red.accuracy[0] == pytest.approx(20 / 36, abs=0.06)  # the tagged reds were right, by the tag
    assert red.accuracy[1] <= 0.06  # after the fix no red is 'red': the model never learned reds
    assert blue.accuracy == (1.0, 1.0)
    # Counterfactual photos: the transplanted tag fooled the original on every blue, not the fix.
    removed, transplanted = result.counterfactual
    assert removed[0].name == "tag removed" and removed[0].right == removed[1].right == 0
    assert transplanted[0].right <= 1 and transplanted[1].right == 12
    assert blue.counterfactual == (transplanted[0].right / 12, 1.0) and red.counterfactual == (0.0, 0.0)
    # The maps that moved most are the tagged reds' (the fix took the tag's evidence away).
    assert len(result.differences) == 8
    assert [d.difference for d in result.differences] == sorted((d.difference for d in result.differences),
                                                                reverse=True)
    tagged = set(found.flagged[0].members)
    assert sum(d.path in tagged for d in result.differences) >= 4
    assert result.headline().startswith("test: 71% right, ")  # (20 tagged reds + 20 blues) of 56
    assert "; test (corrected): 36% right, 0 clusters flagged; tag removed: 0 against 0 of 12 right; " \
        "tag transplanted: " in result.headline()


def test_the_map_difference_is_half_the_l1_distance_of_the_maps_shares():
    from gradcam.audit.compare import COMPARE_SIDE, map_difference
    from gradcam.engine.baselines import map_at_input

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 7)), rng.normal(size=(14, 14))
    assert map_difference(a, a) == 0.0
    shares = []
    for raw in (a, b):
        grid = np.clip(map_at_input(raw.astype(np.float32), COMPARE_SIDE, COMPARE_SIDE), 0, None)
        shares.append(grid / grid.sum())
    total = 0.0
    for y in range(COMPARE_SIDE):
        for x in range(COMPARE_SIDE):
            total += abs(shares[0][y, x] - shares[1][y, x])
    assert map_difference(a, b) == pytest.approx(total / 2, abs=1e-5)
    left, right = np.zeros((4, 4)), np.zeros((4, 4))
    left[:, 0], right[:, 3] = 1, 1
    assert map_difference(left, right) == pytest.approx(1.0, abs=1e-6)  # no overlap
    assert map_difference(np.zeros((4, 4)), left) == 1.0 and map_difference(None, None) == 0.0


@pytest.mark.slow
def test_the_comparison_html_shows_both_models_side_by_side(before_after):
    from gradcam.report.audit_report import comparison_html

    page = comparison_html(before_after)
    assert page.count("<th>accuracy</th>") == 0 and "counterfactual accuracy" in page
    assert page.index("<h2>Per class") < page.index("<h2>Counterfactual photos") < page.index(
        "<h2>Where the maps differ most") < page.index("<h2>Flagged clusters")
    assert "tag transplanted" in page and "removing that patch lowers" in page
    assert page.count("data:image/png") >= 16  # both maps of the 8 photos that differ most
    assert "http://" not in page and "https://" not in page and "<script" not in page


@pytest.mark.slow
def test_the_cli_compares_two_model_files_end_to_end(tag, tmp_path, capsys):
    from gradcam.cli import main

    model, root, _, _, fix = tag
    model.keras.save(tmp_path / "v1.keras")
    fix.save(tmp_path / "v2.keras")
    (tmp_path / "labels.txt").write_text("red\nblue\n")
    common = ["audit", str(root), "--model", str(tmp_path / "v1.keras"), "--labels", str(tmp_path / "labels.txt"),
              "--preprocessing", "0..1", "--compare", str(tmp_path / "v2.keras"), "--out", str(tmp_path / "c.html")]
    assert main(common) == 0
    out = capsys.readouterr().out
    assert out.startswith("v1.keras: 71% right, ") and "; v2.keras: 36% right, 0 clusters flagged; " in out
    assert "Report: " in out
    assert "  red: accuracy " in out and "maps differ most" in out
    # The counterfactual photos of v1's finding, answered by both: the tag fooled v1, not v2.
    pasted = re.search(r"  counterfactual photos, other photos, 'red' patch pasted in: (\d+) against (\d+) of 16 right",
                       out)
    assert pasted and int(pasted[1]) <= 2 and int(pasted[2]) >= 14, out
    assert main(common + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    red = next(c for c in data["classes"] if c["label"] == "red")
    assert red["flagged"][0] >= 1 and red["flagged"][1] == 0
    assert data["second"]["layer"] == fix.projection_layer  # its default layer: the last feature map
    assert "v2.keras" in (tmp_path / "c.html").read_text()
    # Models with different classes cannot be compared: one sentence (the demo model has three).
    code = main(common[:-4] + ["--compare", "Clever Hans demo", "--out", str(tmp_path / "d.html")])
    assert code != 0 and not (tmp_path / "d.html").exists()
    assert "The two models name different classes (2 and 3); a comparison needs the same classes." in \
        capsys.readouterr().err


def test_a_token_layer_is_corrected_on_its_patch_tokens_and_the_class_token_is_left_alone():
    from gradcam.zoo.vit import build_vit

    import keras

    keras.utils.set_random_seed(2)
    vit = build_vit((32, 32), patch=8, dim=16, blocks=2, heads=2, classes=2)
    model = gradcam.Model(name="vit", keras=vit, input_size=(32, 32), labels=["a", "b"], preprocessing="0..1")
    rng = np.random.default_rng(4)
    photos = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(6)]
    fix = correct(model, photos[:3], photos[3:], layer="block1_norm1")
    assert fix.projection_layer == "block1_norm1_pclarc" and fix.direction.shape == (4, 4, 16)
    inserted = fix.model.keras.get_layer("block1_norm1_pclarc")
    v, z = (np.asarray(w) for w in inserted.get_weights())
    assert v.shape == (17, 16) and not v[0].any()  # the class token is never moved
    assert np.allclose(v[1:].reshape(4, 4, 16), fix.direction)  # the patches row by row, as the grid was read
    x = np.concatenate([model.prepare(p) for p in photos])
    a = np.asarray(keras.Model(vit.inputs[0], vit.get_layer("block1_norm1").output)(x), np.float64)
    seen = np.asarray(keras.Model(fix.model.keras.inputs[0], inserted.output)(x), np.float64)
    along = ((a - z) * v).sum(axis=(1, 2))
    assert np.allclose(seen, a - along[:, None, None] * v, atol=1e-5)
    assert "block1_norm1_pclarc" in [t.name for t in gradcam.target_layers(fix.model)]


@pytest.mark.slow
def test_the_clever_hans_demo_goes_find_prove_fix_re_audit():
    """The demo's whole story in the library: every 'disc' carries the tag, so the fix's
    clean photos are the discs with the tag's region filled by their mean colour."""
    from gradcam.audit.compare import before_and_after
    from gradcam.audit.correction import correct_finding
    from gradcam.audit.counterfactuals import counterfactual_sets
    from gradcam.zoo import clever_hans

    model = clever_hans.load()
    photos, masks = str(clever_hans.PHOTOS), str(clever_hans.MASKS)
    found = gradcam.audit(model, photos, masks=masks)  # find and prove
    assert found.flagged and found.flagged[0].label == "disc"
    fix = correct_finding(model, found, photos, masks=masks)
    sets = counterfactual_sets(model, found, photos, masks=masks)
    assert [s.name for s in sets][:2] == ["'disc' photos, patch removed", "other photos, 'disc' patch pasted in"]
    proof = before_and_after(fix, found, photos, counterfactuals=sets, masks=masks)
    assert not proof.second.flagged, proof.second.summary()  # the re-audit
    pasted = proof.counterfactual[1]
    assert pasted[0].right <= pasted[0].total // 2 and pasted[1].right == pasted[1].total  # the tag fools it no more
    by_label = {c.label: c for c in proof.classes}
    for label in ("square", "triangle"):  # the other classes lose nothing
        before, after = by_label[label].accuracy
        assert after >= before - 1 / 24, (label, before, after)
    # The model never learned discs: the page says so, plainly.
    assert by_label["disc"].accuracy[1] <= 0.2
    assert fix.limits.endswith("It must be retrained on data without the cue.")
    assert f"without the cue it calls {fix.clean_answers.count('square')} of 24 'disc' photos 'square'" in fix.limits
