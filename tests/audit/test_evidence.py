"""The audit's evidence (gradcam/audit/evidence.py) on hand-built models whose answers
are known exactly, and each flag rule written out plainly. No training: seconds."""

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import own_model

from gradcam.audit.dataset_audit import (
    FLIP_GAP, MIN_RECIPIENTS, RELIANCE_GAP, RELIANCE_RATIO, SWAP_GAP, background_verdict, core_passes, removal_passes,
    transplant_passes, verdict)
from gradcam.audit.evidence import (CORE, CoreTest, SwapTest, alike_pixels, background_test, colour_test, core_test,
                                    patch_test, with_colours)
from gradcam.audit.spray import Region

SIDE = 64
TAG = (2, 2, 14, 14)  # x0, y0, x1, y1: a solid white square in the top left corner


def tag_reader():
    """'disc' exactly when the tag's box is bright: logit = 0.2 x (mean grey level in the
    box - 190), 'box' 0. A white tag gives +13; the photo's grey ~128 gives -12."""
    inputs = keras.Input((SIDE, SIDE, 3))
    grey = keras.layers.Conv2D(1, 1, use_bias=False, name="grey")(keras.layers.Rescaling(255.0)(inputs))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(grey))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    model.get_layer("grey").set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32)])
    x0, y0, x1, y1 = TAG
    box = np.zeros((SIDE, SIDE), np.float32)
    box[y0:y1, x0:x1] = 1 / ((x1 - x0) * (y1 - y0))
    kernel = np.zeros((SIDE * SIDE, 2), np.float32)
    kernel[:, 0] = 0.2 * box.reshape(-1)
    model.get_layer("logits").set_weights([kernel, np.array([-0.2 * 190, 0.0], np.float32)])
    return own_model(model, ["disc", "box"])


def tagged_photos(seed: int, count: int, tagged: bool) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        pixels = np.clip(rng.uniform(100, 150) + rng.normal(0, 8, (SIDE, SIDE, 3)), 0, 255)
        cx, cy = rng.uniform(30, 50, 2)
        ys, xs = np.mgrid[0:SIDE, 0:SIDE]
        pixels[(xs - cx) ** 2 + (ys - cy) ** 2 <= 64] = rng.uniform(0, 255, 3)
        if tagged:
            x0, y0, x1, y1 = TAG
            pixels[y0:y1, x0:x1] = 255
        out.append(Image.fromarray(pixels.astype(np.uint8)))
    return out


@pytest.fixture(scope="module")
def tag_model():
    return tag_reader()


def test_a_saturated_tag_survives_the_blur_but_not_the_other_infills_and_the_transplant_flips(tag_model):
    members = tagged_photos(1, 8, tagged=True)
    others = [(image, "box") for image in tagged_photos(2, 8, tagged=False)]
    region = Region(0, 0, 2, 2, 8, 8)  # the top left 16 x 16 pixels: the tag's box and a rim
    test = patch_test(tag_model, "disc", 0, members, others, region)
    assert test.before > 0.99
    # The blur baseline (radius 5% of 64 px) leaves the tag bright enough: the old false all-clear.
    assert test.drops["blur"][0] < 0.2
    # Filled with the photo's mean colour or with the same corner of 'box' photos, the answer goes.
    assert test.drops["mean"][0] > 0.95 and test.drops["other classes"][0] > 0.95
    assert test.infill in ("mean", "other classes") and test.reliance > 0.95
    # A box of the same size elsewhere changes nothing, whatever the infill.
    assert all(abs(random_drop) < 0.01 for _, random_drop in test.drops.values())
    # The transplant: the corner pasted into the 8 'box' photos makes every one 'disc'; a random
    # 16-pixel box of a 'disc' photo pasted at its own place makes none.
    assert (test.recipients, test.flips, test.random_flips) == (8, 8, 0)
    assert len(test.examples) == 3 and all(e.before_answer == "box" and e.after_answer == "disc"
                                           for e in test.examples)
    assert Image.open(__import__("io").BytesIO(test.examples[0].after)).size == (64, 64)  # a JPEG picture
    # The verdict on the blur alone (what the audit said before) clears the tag; with every
    # infill and the transplant it flags it, and names the infill that showed it.
    blur_only = verdict("disc", 8, 8, 0.0625, "top left", test.drops["blur"][0], test.drops["blur"][1],
                        test.before, None, 0.9, 0.1, None)
    assert not blur_only.flagged
    full = verdict("disc", 8, 8, 0.0625, "top left", None, None, test.before, None, 0.9, 0.1, None,
                   drops=test.drops, recipients=test.recipients, flips=test.flips, random_flips=test.random_flips)
    assert full.flagged and full.infill != "blur"
    assert "pasted into 8 photos of other classes, the patch made 8 of them 'disc'" in full.reason


def test_the_removal_rule_written_out():
    # Flag evidence: the drop is at least RELIANCE_GAP above a random box's, and at least RELIANCE_RATIO times it.
    assert (RELIANCE_GAP, RELIANCE_RATIO) == (0.2, 2.0)
    for drop, random_drop in [(0.9, 0.0), (0.5, 0.25), (0.3, 0.1), (0.25, 0.3), (0.6, 0.35), (0.2, -0.1)]:
        expected = drop - random_drop >= 0.2 and drop >= 2.0 * max(random_drop, 0.0)
        assert removal_passes(drop, random_drop) == expected, (drop, random_drop)
    assert removal_passes(0.5, 0.25) and not removal_passes(0.6, 0.35) and not removal_passes(0.3, 0.15)


def test_the_transplant_rule_written_out():
    # Flag evidence: the region turns at least FLIP_GAP more of the recipients than a random box
    # does, over at least MIN_RECIPIENTS photos of other classes.
    assert (FLIP_GAP, MIN_RECIPIENTS) == (0.5, 4)
    for recipients, flips, random_flips in [(16, 15, 0), (16, 8, 0), (16, 9, 2), (16, 12, 5), (3, 3, 0), (0, 0, 0)]:
        expected = recipients >= 4 and (flips - random_flips) / recipients >= 0.5
        assert transplant_passes(recipients, flips, random_flips) == expected
    assert transplant_passes(16, 8, 0) and not transplant_passes(16, 12, 5) and not transplant_passes(3, 3, 0)


def test_a_flag_needs_the_region_not_to_be_the_object():
    strong = dict(drops={"blur": (0.9, 0.0)}, recipients=16, flips=16, random_flips=0)
    # Without masks: the region must look alike across the members (sameness >= 0.35).
    assert verdict("disc", 10, 20, 0.06, "top left", None, None, 1.0, None, 0.9, 0.1, None, **strong).flagged
    differs = verdict("disc", 10, 20, 0.06, "top left", None, None, 1.0, None, 0.2, 0.1, None, **strong)
    assert not differs.flagged and "differs from photo to photo" in differs.reason
    # With masks: in at least half the members the map's peak lies off the photo's own object.
    on = verdict("disc", 10, 20, 0.06, "top left", None, None, 1.0, None, 0.9, 0.1, 0.3, **strong)
    assert not on.flagged and "on the object" in on.reason
    assert verdict("disc", 10, 20, 0.06, "top left", None, None, 1.0, None, 0.9, 0.1, 0.5, **strong).flagged
    # And a small region (<= 20% of the photo), 4 or more photos that differ.
    assert not verdict("disc", 10, 20, 0.25, "top left", 0.9, 0.0, 1.0, None, 0.9, 0.1, None, **strong).flagged
    assert not verdict("disc", 3, 20, 0.06, "top left", 0.9, 0.0, 1.0, None, 0.9, 0.1, None, **strong).flagged
    assert not verdict("disc", 10, 20, 0.06, "top left", 0.9, 0.0, 1.0, None, 0.9, 0.01, None, **strong).flagged


def test_the_background_rule_written_out():
    # Flag: taken - taken_control >= SWAP_GAP: this class's backgrounds make other classes'
    # objects this class beyond what cutting and pasting alone does. Its own objects losing
    # their class on other backgrounds (kept) is reported, not judged: those backgrounds may
    # carry another class's cue (the Clever Hans demo's tagged discs made triangles 'disc').
    assert SWAP_GAP == 0.5
    cases = [((0.0, 1.0, 1.0, 0.0), True), ((0.5, 1.0, 0.0, 0.0), False), ((0.75, 1.0, 0.25, 0.0), False),
             ((1.0, 1.0, 0.0, 0.0), False), ((0.25, 0.5, 0.5, 0.25), False), ((0.9, 1.0, 0.6, 0.0), True),
             ((0.1, 0.6, 0.25, 0.12), False)]
    for (kept, kept_control, taken, taken_control), expected in cases:
        swap = SwapTest(8, kept, kept_control, taken, taken_control)
        assert swap.reliance == taken - taken_control
        flagged, reason = background_verdict("disc", swap, 0.05, 0.1, 0.6)
        assert flagged == expected == (taken - taken_control >= 0.5)
        assert reason.startswith("Background swap: 'disc' objects pasted on other classes' backgrounds")
        assert "0.05 of their mass on the object, which covers 0.10 of the photo (other classes' maps: 0.60)" in reason



def test_without_masks_the_alike_pixels_of_a_region_that_differs_are_transplanted_alone(tag_model):
    """The tag in a region three times its size whose background differs from photo to photo:
    the region as a whole is not "the same" (its sameness is low), but its pixels that are the
    same in every member are exactly the tag's, and pasted alone they make 'box' photos 'disc'."""
    members = tagged_photos(1, 8, tagged=True)
    others = [(image, "box") for image in tagged_photos(2, 8, tagged=False)]
    region = Region(0, 0, 3, 3, 8, 8)  # the top left 24 x 24 pixels: the tag (12 x 12) and a wide rim
    pixels = [np.asarray(image) for image in members]
    alike = alike_pixels(pixels, (0, 0, 24, 24))
    assert alike[2:14, 2:14].all()  # every pixel of the tag: the same white in all eight
    # The rim varies like the rest of the photos (grey levels 100-150): at most a few of its 432
    # pixels vary less than half as much by chance.
    assert alike.sum() - 144 <= 25 and not alike[24:].any() and not alike[:, 24:].any()
    # Written out: a pixel is alike when its spread across the members (mean over channels) is at
    # most CORE times the mean spread outside the box.
    spread = np.stack(pixels).astype(np.float32).std(axis=0).mean(axis=-1)
    outside = np.ones((SIDE, SIDE), bool)
    outside[:24, :24] = False
    assert CORE == 0.5 and (alike[:24, :24] == (spread[:24, :24] <= 0.5 * spread[outside].mean())).all()
    test = patch_test(tag_model, "disc", 0, members, others, region, core=True)
    assert test.core.share == pytest.approx(alike.sum() / 576)
    # Pasted alone, the alike pixels turn all 8 'box' photos; the same shape of pixels from another
    # place of the members (grey background), pasted at that place, none.
    assert (test.core.recipients, test.core.flips, test.core.random_flips) == (8, 8, 0) and core_passes(test.core)
    sameness = 0.2  # the region differs as a whole (below SAMENESS): before, this was not flagged
    judged = verdict("disc", 8, 8, 0.14, "top left", None, None, test.before, None, sameness, 0.1, None,
                     drops=test.drops, recipients=test.recipients, flips=test.flips, random_flips=test.random_flips,
                     core=test.core)
    assert judged.flagged
    assert (f"the pixels of it that are the same in all these photos ({test.core.share:.0%} of it), pasted alone "
            "into 8 photos of other classes, made 8 of them 'disc' (the same shape of pixels from elsewhere: 0)"
            in judged.reason)
    assert not patch_test(tag_model, "disc", 0, members, others, region).core  # only when asked


def with_a_black_square(photos: list[Image.Image]) -> list[Image.Image]:
    """The photos with the same black square in their bottom right corner, where the tag reader
    never looks: pixels alike in every photo that no answer depends on."""
    out = []
    for image in photos:
        pixels = np.asarray(image).copy()
        pixels[50:60, 50:60] = 0
        out.append(Image.fromarray(pixels))
    return out


def test_alike_pixels_the_model_ignores_do_not_flag_a_region():
    """The same black square in every member's bottom right corner, which the tag reader never
    looks at: alike pixels, but pasted alone they turn no photo, so a region there whose maps
    agree and whose removal seemed to matter is still not flagged without masks."""
    model = tag_reader()
    members = with_a_black_square(tagged_photos(3, 8, tagged=True))
    others = [(image, "box") for image in tagged_photos(4, 8, tagged=False)]
    test = patch_test(model, "disc", 0, members, others, Region(5, 5, 8, 8, 8, 8), core=True)
    assert test.core.share >= 100 / 576 and (test.core.flips, test.core.random_flips) == (0, 0)
    assert not core_passes(test.core)
    strong = dict(drops={"mean": (0.9, 0.0)}, recipients=8, flips=8, random_flips=0)  # as if the region mattered
    judged = verdict("disc", 8, 8, 0.14, "bottom right", None, None, 1.0, None, 0.2, 0.1, None, core=test.core,
                     **strong)
    assert not judged.flagged and "differs from photo to photo" in judged.reason


def test_a_large_region_is_flagged_without_masks_only_by_its_alike_pixels(tag_model):
    """Maps spread over 56% of the photo around a 12 px tag (as a from-scratch MobileNetV2's did):
    no patch test, but its alike pixels alone (the tag, 4% of the photo) turn the other classes."""
    members = tagged_photos(1, 8, tagged=True)
    others = [(image, "box") for image in tagged_photos(2, 8, tagged=False)]
    region = Region(0, 0, 6, 6, 8, 8)  # 48 x 48 pixels of 64 x 64: 56%
    core = core_test(tag_model, "disc", 0, members, others, region)
    assert (core.recipients, core.flips, core.random_flips) == (8, 8, 0)
    assert core.share * region.area <= 0.2  # the alike pixels: the tag and a few by chance
    judged = verdict("disc", 8, 8, region.area, "top left", None, None, None, None, 0.1, 0.1, None, core=core)
    assert judged.flagged and "on 56% of the photo around the top left, and the pixels in and around it that " \
        "are the same in all these photos" in judged.reason \
        and "made 8 of them 'disc' (the same shape of pixels from elsewhere: 0)" in judged.reason
    # Not without that evidence: no alike pixels that turn anything, photos that look alike, or
    # alike pixels that cover more than a small patch of the photo.
    for failing in (CoreTest(core.share, 8, 2, 0), CoreTest(0.5, 8, 8, 0)):
        assert not verdict("disc", 8, 8, region.area, "top left", None, None, None, None, 0.1, 0.1, None,
                           core=failing).flagged
    assert not verdict("disc", 8, 8, region.area, "top left", None, None, None, None, 0.1, 0.01, None,
                       core=core).flagged
    assert not verdict("disc", 8, 8, region.area, "top left", None, None, None, None, 0.1, 0.1, None).flagged


def test_the_core_rule_written_out():
    # The transplant's rule on the alike pixels: at least FLIP_GAP more of at least MIN_RECIPIENTS.
    for recipients, flips, random_flips in [(16, 12, 0), (16, 8, 0), (16, 9, 2), (3, 3, 0)]:
        core = CoreTest(0.3, recipients, flips, random_flips)
        assert core_passes(core) == (recipients >= 4 and (flips - random_flips) / recipients >= 0.5)

# --- the background swap, on a model that reads the background and one that reads the object ---


def background_reader():
    """'disc' by the whole photo's mean red minus mean blue: the background decides."""
    inputs = keras.Input((SIDE, SIDE, 3))
    warmth = keras.layers.Conv2D(1, 1, use_bias=False, name="warmth")(keras.layers.Rescaling(255.0)(inputs))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(warmth))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    model.get_layer("warmth").set_weights([np.array([1, 0, -1], np.float32).reshape(1, 1, 3, 1)])
    model.get_layer("logits").set_weights([np.array([[0.1, 0.0]], np.float32), np.zeros(2, np.float32)])
    return own_model(model, ["disc", "box"])


def object_reader():
    """'disc' by the reddest spot, 'box' by the bluest: max over pixels of relu(R - B - 100)
    and relu(B - R - 100). A warm or cool background (|R - B| <= 80) never gets there."""
    inputs = keras.Input((SIDE, SIDE, 3))
    spots = keras.layers.Conv2D(2, 1, activation="relu", name="spots")(keras.layers.Rescaling(255.0)(inputs))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalMaxPooling2D()(spots))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    kernel = np.array([[1, -1], [0, 0], [-1, 1]], np.float32).reshape(1, 1, 3, 2)
    model.get_layer("spots").set_weights([kernel, np.array([-100, -100], np.float32)])
    model.get_layer("logits").set_weights([np.eye(2, dtype=np.float32) * 0.1, np.zeros(2, np.float32)])
    return own_model(model, ["disc", "box"])


def swap_photos(seed: int, count: int, warm: bool, red: bool | None):
    """(photo, mask, answer) with a warm or cool background and a red, blue or (None) grey
    object of radius 10 anywhere."""
    rng = np.random.default_rng(seed)
    out = []
    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    for _ in range(count):
        back = np.array([170, 120, 90] if warm else [90, 120, 170], np.float32)
        pixels = np.clip(back + rng.normal(0, 8, (SIDE, SIDE, 3)), 0, 255)
        cx, cy = rng.uniform(12, 52, 2)
        mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= 100
        pixels[mask] = [128, 128, 128] if red is None else ([240, 30, 30] if red else [30, 30, 240])
        out.append((Image.fromarray(pixels.astype(np.uint8)), mask, "disc" if warm else "box"))
    return out


def test_the_background_swap_catches_a_background_reader_and_clears_an_object_reader():
    # The shortcut data: grey objects, 'disc' on warm backgrounds, 'box' on cool ones.
    reader = background_reader()
    swap = background_test(reader, "disc", 0, swap_photos(1, 6, True, None), swap_photos(2, 6, False, None))
    assert (swap.kept, swap.kept_control, swap.taken, swap.taken_control) == (0.0, 1.0, 1.0, 0.0)
    assert swap.reliance == 1.0 and background_verdict("disc", swap, None, None, None)[0]
    assert [e.after_answer for e in swap.examples] == ["box", "box", "disc"]
    # The clean data: red discs and blue boxes, each on warm and cool backgrounds alike.
    honest = object_reader()
    own = swap_photos(3, 3, True, True) + swap_photos(4, 3, False, True)
    others = swap_photos(5, 3, True, False) + swap_photos(6, 3, False, False)
    swap = background_test(honest, "disc", 0, [(i, m, "disc") for i, m, _ in own],
                           [(i, m, "box") for i, m, _ in others])
    assert (swap.kept, swap.kept_control, swap.taken, swap.taken_control) == (1.0, 1.0, 0.0, 0.0)
    assert not background_verdict("disc", swap, None, None, None)[0]


def test_the_colour_swap_moves_each_channel_to_the_other_class_and_reports_what_followed():
    pixels = np.random.default_rng(0).uniform(0, 255, (SIDE, SIDE, 3)).astype(np.float32)
    moved = with_colours(pixels, np.array([200.0, 100.0, 50.0]), np.array([10.0, 20.0, 5.0]))
    # The colour transfer written out: (x - mean_x) / std_x * std + mean, per channel, clipped.
    expected = np.clip((pixels - pixels.mean(axis=(0, 1))) / pixels.std(axis=(0, 1)) * [10, 20, 5] + [200, 100, 50],
                       0, 255)
    assert np.allclose(moved, expected, atol=1e-3)
    reader = background_reader()
    warm = [(image, "disc") for image, _, _ in swap_photos(7, 4, True, None)]
    cool = np.stack([np.asarray(image, np.float32) for image, _, _ in swap_photos(8, 4, False, None)])
    test = colour_test(reader, "disc", 0, warm, [("box", cool.mean(axis=(0, 1, 2)), cool.std(axis=(1, 2)).mean(0))])
    assert (test.tested, test.followed, test.changed) == (4, 1.0, 1.0)


def test_a_large_region_whose_alike_pixels_turn_none_of_the_first_photos_stops_there():
    """The large region's alike-pixel transplant pastes into FIRST_RECIPIENTS photos first,
    without its control: a black square the tag reader never looks at turns none of them, so
    nothing more is run (the control is None: not needed) and the region is not flagged."""
    from gradcam.audit.evidence import FIRST_RECIPIENTS

    model = tag_reader()
    members = with_a_black_square(tagged_photos(3, 8, tagged=True))
    others = [(image, "box") for image in tagged_photos(4, 8, tagged=False)]
    core = core_test(model, "disc", 0, members, others, Region(3, 3, 8, 8, 8, 8))
    assert (core.recipients, core.flips, core.random_flips) == (FIRST_RECIPIENTS, 0, None)
    assert not core_passes(core)


def test_the_alike_pixels_are_looked_for_one_cell_beyond_a_large_region():
    """A coarse map's region can end beside its cue (a from-scratch MobileNetV2's, at 96 px, ended
    a cell short of its bottom-right tag). Here the region starts one cell (8 px) into the tag
    reader's 12 px tag: inside it lies only a sliver of the tag, which reads as no tag; one cell
    wider, the whole tag is alike in every member and, pasted alone, turns every 'box' photo."""
    members = tagged_photos(1, 8, tagged=True)
    others = [(image, "box") for image in tagged_photos(2, 8, tagged=False)]
    region = Region(1, 1, 6, 6, 8, 8)  # pixels 8-48 of 64; the tag covers 2-14
    core = core_test(tag_reader(), "disc", 0, members, others, region)
    assert (core.recipients, core.flips, core.random_flips) == (8, 8, 0) and core_passes(core)
    assert core.share * region.area <= 0.2  # of the photo: the tag and a few pixels alike by chance
    judged = verdict("disc", 8, 8, region.area, "top left", None, None, None, None, 0.1, 0.1, None, core=core)
    assert judged.flagged



def test_the_edited_photos_get_the_answers_their_explanations_would_give(tag_model):
    """The evidence answers edited photos with a forward pass (no map): each photo's probability
    and top class are the ones explain_batch gives it, for any number of photos (5 and 21 are
    no bucket's size)."""
    import gradcam
    from gradcam.audit.evidence import answers

    photos = tagged_photos(7, 11, tagged=True) + tagged_photos(8, 10, tagged=False)
    pixels = [np.asarray(photo, np.uint8) for photo in photos]
    for count in (5, 21):
        probabilities, top = answers(tag_model, pixels[-count:], 0)
        explained = gradcam.explain_batch(tag_model, photos[-count:], [0])
        assert top == [many[0].predictions[0].label for many in explained]
        assert np.allclose(probabilities, [many[0].probability for many in explained], atol=1e-5)
    assert top.count("disc") == 11 and top.count("box") == 10


def test_the_answers_run_in_smaller_batches_under_a_low_memory_budget_and_refuse_past_it(tag_model, monkeypatch):
    from gradcam import ExplanationTooCostly
    from gradcam.audit import evidence
    from gradcam.engine import cost

    pixels = [np.asarray(photo, np.uint8) for photo in tagged_photos(9, 9, tagged=True)]
    sizes = []
    run = evidence.batch_forward_pass(tag_model)
    monkeypatch.setattr(evidence, "batch_forward_pass", lambda model: lambda x: sizes.append(len(x)) or run(x))
    per_photo = cost.forward_batch_bytes(tag_model, 1)  # the budget is in MB: this model needs far less

    def budget(photos: float) -> None:
        for module in (evidence, cost):
            monkeypatch.setattr(module, "memory_budget_bytes", lambda: int(per_photo * photos))

    budget(3)  # three photos fit, four do not
    assert evidence.answers(tag_model, pixels, 0)[1] == ["disc"] * 9
    assert sizes == [3, 3, 3]
    budget(0.5)
    with pytest.raises(ExplanationTooCostly, match="would need about"):
        evidence.answers(tag_model, pixels, 0)
