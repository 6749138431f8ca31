"""Evidence that a model relies on a cue, built so that the test itself cannot fake it.

Removing a region with one baseline measures the baseline as much as the model: a
small saturated tag survives a blur of 5% of a 64 px photo. So each test asks the
model about edited photos in more than one way, and always next to the same edit
somewhere that should not matter:

- ``patch_test``: a cluster's region (a box) in its members is filled three ways
  (INFILLS: the blur baseline, the photo's mean colour, and the same box taken from
  photos of other classes, which is what the model considers "normal" there), and a
  box of the same size elsewhere the same three ways; then the reverse, the
  **transplant**: the region pasted into photos of other classes at the same place,
  counting how many the model now calls this class, against a random box of the same
  size pasted the same way.
- ``background_test`` (needs object masks): the class's objects, cut out by their
  masks, pasted onto other classes' backgrounds and the other classes' objects onto
  this class's backgrounds; the same swap within a class is the control (what the
  cutting and pasting alone does).
- ``colour_test`` (what can be tried without masks): the class's photos given the
  colour statistics (per-channel mean and spread) of another class's photos.

Every edited photo is answered by a forward pass (``logits_of``: the explanations' own
graph walk, compiled, in batches checked against the memory budget before they run);
the edits are made at the network's input size (``network_pixels``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..engine.baselines import baseline_pixels, network_pixels, prepared_pixels
from ..engine.cam import to_probabilities
from ..engine.cost import check_forward_batch, forward_batch_bytes, memory_budget_bytes
from ..engine.passes import batch_forward_pass
from .spray import Region

INFILLS = ("blur", "mean", "other classes")
# A pixel of the region is "the same in every member" when it varies across them at most this
# share of how much the photos vary outside the region (a tag's or a watermark's ink, not the
# background around it, which varies as the rest of the photo does).
CORE = 0.5
MIN_CORE_PIXELS = 4
# A large region's alike-pixel transplant (``core_test``) pastes into this many photos first,
# and runs its control and the rest only if one of them turned. A cue the model follows turns
# most photos (13-16 of 16 in the shortcut benchmark): at a rate of 0.8 it turns none of 4 once
# in 625 audits.
FIRST_RECIPIENTS = 4
EXAMPLES = 3  # before/after pictures kept per test
EXAMPLE_SIDE = 96  # their side in pixels (JPEG)


@dataclass(frozen=True)
class Example:
    """One edited photo, before and after, with the model's answer to each."""

    caption: str
    before: bytes = field(repr=False)  # JPEG
    after: bytes = field(repr=False)
    before_answer: str
    after_answer: str


@dataclass(frozen=True)
class PatchTest:
    before: float  # the members' mean probability of the class, as they are
    drops: dict  # infill -> (drop with the region filled, drop with a box elsewhere filled), mean over members
    tested: int  # members edited
    recipients: int  # other classes' photos the region was pasted into (none answered this class before)
    flips: int  # of them, now answered this class
    random_flips: int  # the same with a random box of the members pasted instead
    examples: list = field(default_factory=list, repr=False)
    core: "CoreTest | None" = None  # the region's alike pixels transplanted alone (when asked)

    @property
    def infill(self) -> str:
        """The infill with the strongest drop."""
        return max(self.drops, key=lambda name: self.drops[name][0])

    @property
    def reliance(self) -> float:
        return self.drops[self.infill][0]

    @property
    def random_reliance(self) -> float:
        return self.drops[self.infill][1]


@dataclass(frozen=True)
class CoreTest:
    """The transplant of the region's *alike* pixels alone: those that vary across the members
    at most CORE times as much as the photos vary outside the region. A tag or a watermark is
    the same in every photo while the background around it is not; the model's objects, placed
    there, differ. The control pastes the same shape of pixels from elsewhere in the members."""

    share: float  # the alike pixels' share of the region
    recipients: int
    flips: int  # other classes' photos now answered this class
    random_flips: int | None  # the same shape from a random place of the members, pasted at that place
    #                           (None: not run, since no photo turned with the alike pixels pasted)


@dataclass(frozen=True)
class SwapTest:
    """The background swap of one class (fractions of the swapped photos)."""

    tested: int  # the class's photos whose objects were moved (and backgrounds used)
    kept: float  # its objects on other classes' backgrounds still answered this class
    kept_control: float  # its objects on its own class's other backgrounds answered this class
    taken: float  # other classes' objects on its backgrounds answered this class
    taken_control: float  # other classes' objects on their own classes' other backgrounds answered this class
    examples: list = field(default_factory=list, repr=False)

    @property
    def reliance(self) -> float:
        """How far this class's backgrounds make other classes' objects this class, beyond
        what the swap's cutting and pasting does (their own classes' backgrounds). The other
        direction (``kept``) is reported, not judged: its objects lose their class on
        backgrounds that carry *another* class's cue (a tagged class's backgrounds), which
        is that class's shortcut, not this one's."""
        return self.taken - self.taken_control


@dataclass(frozen=True)
class ColourTest:
    tested: int
    followed: float  # share of the class's photos answered as the class whose colours they were given
    changed: float  # share no longer answered this class
    examples: list = field(default_factory=list, repr=False)


# --- small helpers ---------------------------------------------------------------------


def box_pixels(region: tuple[float, float, float, float], height: int, width: int) -> tuple[int, int, int, int]:
    """(row0, col0, row1, col1) of a box given as fractions (x0, y0, x1, y1), at least one pixel."""
    x0, y0, x1, y1 = region
    return (int(round(y0 * height)), int(round(x0 * width)),
            max(int(round(y1 * height)), int(round(y0 * height)) + 1),
            max(int(round(x1 * width)), int(round(x0 * width)) + 1))


def random_boxes(region: Region, count: int, seed: int = 0) -> list[tuple[float, float, float, float]]:
    """``count`` boxes of the region's size on its grid, elsewhere: not overlapping the
    region where the grid leaves room for that (else overlapping it least), spread
    over the places there are (a different place for each member where possible)."""
    rows, cols = region.rows, region.cols
    h, w = region.row1 - region.row0, region.col1 - region.col0
    places = []
    for r in range(rows - h + 1):
        for c in range(cols - w + 1):
            overlap = max(0, min(r + h, region.row1) - max(r, region.row0)) * \
                max(0, min(c + w, region.col1) - max(c, region.col0))
            places.append((overlap, r, c))
    least = min(p[0] for p in places)
    free = [(r, c) for overlap, r, c in places if overlap == least and (r, c) != (region.row0, region.col0)]
    if not free:
        free = [(r, c) for _, r, c in places]
    order = np.random.default_rng(seed).permutation(len(free))
    chosen = [free[order[k % len(free)]] for k in range(count)]
    return [(c / cols, r / rows, (c + w) / cols, (r + h) / rows) for r, c in chosen]


def _bytes(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _image(pixels: np.ndarray) -> Image.Image:
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return Image.fromarray(np.squeeze(pixels, axis=-1) if pixels.shape[2] == 1 else pixels)


def _jpeg(pixels: np.ndarray) -> bytes:
    small = _image(pixels).convert("RGB")
    small.thumbnail((EXAMPLE_SIDE, EXAMPLE_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


# Photos per forward pass of the answers: on EfficientNet-Lite0 a pass of 16 took 10.7 ms a photo,
# of 32 11.8 and of 4 14.7 (quiet, 2 CPUs); a bigger model takes fewer at a time (its memory).
ANSWERED_AT_ONCE = 16


def logits_of(model, pixels: list[np.ndarray]) -> np.ndarray:
    """The model's logits (n, classes) for photos already at its input size (0..255): a forward
    pass without a tape, in batches of their own size (no padding photos), at most as many at
    once as the memory budget holds (ExplanationTooCostly, one sentence, if not even one). It
    shares the explanations' graph walk, so these logits are the ones the maps were made with;
    the edited photos need only the answer, not a map (10-15% less time than the map's pass,
    and no bucket's padding: 24 photos had run as 32)."""
    classes = len(model.labels)
    if not pixels:
        return np.zeros((0, classes), np.float64)
    per_photo = forward_batch_bytes(model, 1)
    at_once = max(1, min(ANSWERED_AT_ONCE, memory_budget_bytes() // per_photo))
    check_forward_batch(model, at_once)
    run = batch_forward_pass(model)
    height, width = model.input_size
    out = []
    for start in range(0, len(pixels), at_once):
        # 8-bit first, as any photo the model is shown (a mean infill's fractions were cut before too).
        x = np.stack([prepared_pixels(model, np.clip(p, 0, 255).astype(np.uint8).reshape(height, width, model.channels))
                      for p in pixels[start:start + at_once]])
        out.append(np.asarray(run(x), np.float64).reshape(len(x), classes))
    return np.concatenate(out)


def answers(model, pixels: list[np.ndarray], target) -> tuple[np.ndarray, list[str]]:
    """(probability of ``target``, top-1 label) of each photo (network-size pixels); ``target``
    one class index for all, or one per photo."""
    logits = logits_of(model, pixels)
    if not len(logits):
        return np.zeros(0), []
    targets = np.broadcast_to(np.asarray(target, int), (len(logits),))
    probabilities = [to_probabilities(model, row) for row in logits]
    chosen = np.asarray([p[t] for p, t in zip(probabilities, targets)], np.float64)
    return chosen, [model.labels[int(np.argmax(row))] for row in logits]


def network_mask(model, mask: np.ndarray) -> np.ndarray:
    """A photo's object mask (its own size) at the network's input size."""
    height, width = model.input_size
    if mask.shape == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) > 127


# --- the patch: infills and the transplant ---------------------------------------------


def reliance_test(model, images: list[Image.Image], targets: list[int], region: Region, before=None,
                  baseline: str = "blur") -> tuple[float, float, float, float]:
    """One infill's removal test, each photo with its own target: (before, after, reliance,
    random_reliance), the mean probability of each photo's target as it is and with
    ``region`` filled by ``baseline`` (the engine's: blur, mean, black); reliance = before
    - after; random_reliance = the mean drop for one box of the same size elsewhere per
    photo. ``patch_test`` runs every infill and the transplant; this is the single-infill
    measure other code (the fix's proof) compares before and after."""
    height, width = model.input_size
    edits, kept_targets = [], []
    elsewhere = random_boxes(region, len(images))
    for image, target, other in zip(images, targets, elsewhere):
        pixels = network_pixels(model, image)
        fill = baseline_pixels(pixels, baseline)
        photo_edits = [pixels] if before is None else []
        for place in (region.box, other):
            r0, c0, r1, c1 = box_pixels(place, height, width)
            copy = pixels.copy()
            copy[r0:r1, c0:c1] = fill[r0:r1, c0:c1]
            photo_edits.append(copy)
        edits.extend(photo_edits)
        kept_targets.extend([int(target)] * len(photo_edits))
    p = answers(model, edits, kept_targets)[0].reshape(len(images), -1)
    if before is None:
        original, p = p[:, 0], p[:, 1:]
    else:
        original = np.asarray(before, np.float64)
    after, other = p[:, 0], p[:, 1]
    return float(original.mean()), float(after.mean()), float((original - after).mean()), \
        float((original - other).mean())


def alike_pixels(member_pixels: list[np.ndarray], box: tuple[int, int, int, int],
                 search: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(height, width) bool: the pixels of ``search`` (row0, col0, row1, col1; default ``box``)
    that vary across the members (network-size pixels) at most CORE times the mean spread
    outside ``box``."""
    stack = np.stack([np.asarray(p, np.float32) for p in member_pixels])
    spread = stack.std(axis=0).mean(axis=-1)
    inside = np.zeros(spread.shape, bool)
    r0, c0, r1, c1 = box
    inside[r0:r1, c0:c1] = True
    if len(member_pixels) < 2 or inside.all():
        return np.zeros(spread.shape, bool)
    variety = float(spread[~inside].mean())
    candidates = inside
    if search is not None:
        candidates = np.zeros(spread.shape, bool)
        s0, s1, s2, s3 = search
        candidates[s0:s2, s1:s3] = True
    return candidates & (spread <= CORE * variety) if variety > 0 else np.zeros(spread.shape, bool)


def _core_alike(model, member_pixels: list[np.ndarray], region: Region, search: Region | None = None
                ) -> np.ndarray | None:
    """The members' alike pixels (``alike_pixels``) looked for in ``search`` (default the region;
    the photos' variety is always measured outside the region); None when fewer than
    MIN_CORE_PIXELS."""
    height, width = model.input_size
    alike = alike_pixels(member_pixels, box_pixels(region.box, height, width),
                         None if search is None else box_pixels(search.box, height, width))
    return None if alike.sum() < MIN_CORE_PIXELS else alike


def _core_edits(model, member_pixels: list[np.ndarray], recipients: list[np.ndarray], region: Region,
                alike: np.ndarray, first: int = 0, total: int | None = None) -> list[np.ndarray]:
    """The edited recipients: for recipient j, member j's ``alike`` pixels pasted in, then the
    same shape moved to a random box's place, taken from member j there and pasted there.
    ``first``, ``total``: these recipients are numbers first.. of ``total`` (a later slice)."""
    height, width = model.input_size
    r0, c0, _, _ = box_pixels(region.box, height, width)
    edits = []
    rows, cols = np.nonzero(alike)
    places = random_boxes(region, total or len(recipients), seed=2)[first:]
    for j, (pixels, place) in enumerate(zip(recipients, places), start=first):
        source = member_pixels[j % len(member_pixels)]
        copy = pixels.copy()
        copy[alike] = source[alike]
        edits.append(copy)
        m0, m1, _, _ = box_pixels(place, height, width)
        moved_rows, moved_cols = rows - r0 + m0, cols - c0 + m1
        keep = (moved_rows >= 0) & (moved_rows < height) & (moved_cols >= 0) & (moved_cols < width)
        shifted = np.zeros_like(alike)
        shifted[moved_rows[keep], moved_cols[keep]] = True
        copy = pixels.copy()
        copy[shifted] = source[shifted]
        edits.append(copy)
    return edits


def _core_share(alike: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The alike pixels' share of the region's ``box`` (row0, col0, row1, col1): the verdict
    multiplies it by the region's area to get their share of the photo."""
    r0, c0, r1, c1 = box
    return float(alike.sum() / max(1, (r1 - r0) * (c1 - c0)))


def _core_result(alike: np.ndarray, box: tuple[int, int, int, int], said: list[str], label: str) -> CoreTest:
    count = len(said) // 2
    return CoreTest(share=_core_share(alike, box), recipients=count,
                    flips=int(sum(said[2 * j] == label for j in range(count))),
                    random_flips=int(sum(said[2 * j + 1] == label for j in range(count))))


def grown(region: Region) -> Region:
    """The region with one more cell of the map's grid on every side (within the grid)."""
    return Region(max(0, region.row0 - 1), max(0, region.col0 - 1), min(region.rows, region.row1 + 1),
                  min(region.cols, region.col1 + 1), region.rows, region.cols)


def core_test(model, label: str, target: int, members: list[Image.Image], others: list[tuple[Image.Image, str]],
              region: Region) -> CoreTest | None:
    """The alike-pixel transplant alone (``CoreTest``), for a region too large to be a patch
    itself: the maps may spread over much of the photo around a small cue that is the same in
    every photo. None when there are no alike pixels (or no photo to paste into).

    The alike pixels are looked for in the region grown by one cell of the map's grid (the
    photos' variety still measured outside the region itself): a coarse map's region can end
    beside its cue (a from-scratch MobileNetV2's, at 96 px, ended a cell short of its
    bottom-right tag, which pasted alone then made 16 of 16 photos of the other class its own;
    at 64 px its 4 x 4 grid's region grown by a cell was the whole photo). They are pasted
    alone into FIRST_RECIPIENTS photos first, without the control; only if one of those
    turned, the control is run for them and both for the rest
    (``random_flips`` is None when no pasted photo turned: the control was not needed)."""
    member_pixels = [_bytes(network_pixels(model, image)) for image in members]
    recipients = [image for image, answer in others if answer != label]
    alike = _core_alike(model, member_pixels, region, search=grown(region)) if recipients else None
    if alike is None:
        return None
    first = [_bytes(network_pixels(model, image)) for image in recipients[:FIRST_RECIPIENTS]]
    edits = _core_edits(model, member_pixels, first, region, alike, total=len(recipients))
    height, width = model.input_size
    box = box_pixels(region.box, height, width)  # the share is of the region itself, as the verdict reads it
    # Most large regions hold no cue (on the bench's 128 photos, 10 clusters' alike pixels turned
    # 0-3 of 16 photos, as the random shape did), and the whole test was 3.6 s of the audit's 6.4 s.
    _, pasted = answers(model, edits[0::2], target)
    if not any(answer == label for answer in pasted):
        return CoreTest(share=_core_share(alike, box), recipients=len(first), flips=0, random_flips=None)
    _, controls = answers(model, edits[1::2], target)
    said = [answer for pair in zip(pasted, controls) for answer in pair]
    if len(recipients) > len(first):
        rest = [_bytes(network_pixels(model, image)) for image in recipients[len(first):]]
        more = _core_edits(model, member_pixels, rest, region, alike, first=len(first), total=len(recipients))
        said = said + answers(model, more, target)[1]
    return _core_result(alike, box, said, label)


def patch_test(model, label: str, target: int, members: list[Image.Image], others: list[tuple[Image.Image, str]],
               region: Region, before=None, core: bool = False) -> PatchTest:
    """The region's reliance under every infill, against a box of the same size
    elsewhere, and the transplant into ``others`` (photos of other classes with the
    model's answer to each; those already answered ``label`` are left out).
    ``before``: the members' probabilities when already known (their explanations').
    ``core``: also transplant the region's alike pixels alone (``CoreTest``): the test
    of "the same thing in every photo" where no masks say what the object is."""
    height, width = model.input_size
    box = region.box
    r0, c0, r1, c1 = box_pixels(box, height, width)
    # 8-bit copies: up to 16 x 6 + 16 x 2 edited photos are held at once (a quarter of float32's memory).
    member_pixels = [_bytes(network_pixels(model, image)) for image in members]
    recipients = [(_bytes(network_pixels(model, image)), answer) for image, answer in others if answer != label]
    donors = [p for p, _ in recipients] or [_bytes(network_pixels(model, image)) for image, _ in others]
    elsewhere = random_boxes(region, len(member_pixels))
    infills = [name for name in INFILLS if name != "other classes" or donors]
    edited = []
    for i, pixels in enumerate(member_pixels):
        fills = {"blur": _bytes(baseline_pixels(pixels, "blur")), "mean": _bytes(baseline_pixels(pixels, "mean"))}
        if donors:
            fills["other classes"] = donors[i % len(donors)]
        for name in infills:
            for place in (box, elsewhere[i]):
                b0, b1, b2, b3 = box_pixels(place, height, width)
                copy = pixels.copy()
                copy[b0:b2, b1:b3] = fills[name][b0:b2, b1:b3]
                edited.append(copy)
    # The transplant: member i's region into recipient j at the same place, and a random
    # box of member i's into recipient j at that box's place.
    pasted = []
    random_places = random_boxes(region, len(recipients), seed=1)
    for j, (pixels, _) in enumerate(recipients):
        source = member_pixels[j % len(member_pixels)]
        for place in (box, random_places[j]):
            b0, b1, b2, b3 = box_pixels(place, height, width)
            copy = pixels.copy()
            copy[b0:b2, b1:b3] = source[b0:b2, b1:b3]
            pasted.append(copy)
    alike = _core_alike(model, member_pixels, region) if core and recipients else None
    cored = [] if alike is None else _core_edits(model, member_pixels, [p for p, _ in recipients], region, alike)
    batch = (member_pixels if before is None else []) + edited + pasted + cored
    probabilities, top = answers(model, batch, target)
    if before is None:
        original = probabilities[:len(member_pixels)]
        probabilities, top = probabilities[len(member_pixels):], top[len(member_pixels):]
    else:
        original = np.asarray(before, np.float64)
    per_member = probabilities[:len(edited)].reshape(len(member_pixels), len(infills), 2)
    drops = {name: (float((original - per_member[:, k, 0]).mean()), float((original - per_member[:, k, 1]).mean()))
             for k, name in enumerate(infills)}
    answered = top[len(edited):len(edited) + len(pasted)]
    flips = sum(answered[2 * j] == label for j in range(len(recipients)))
    random_flips = sum(answered[2 * j + 1] == label for j in range(len(recipients)))
    alike_result = None if alike is None else _core_result(alike, (r0, c0, r1, c1),
                                                           top[len(edited) + len(pasted):], label)
    examples = [Example(f"a '{answer}' photo with the patch of a '{label}' photo pasted in", _jpeg(pixels),
                        _jpeg(pasted[2 * j]), answer, answered[2 * j])
                for j, (pixels, answer) in enumerate(recipients[:EXAMPLES])]
    return PatchTest(before=float(original.mean()), drops=drops, tested=len(member_pixels),
                     recipients=len(recipients), flips=int(flips), random_flips=int(random_flips), examples=examples,
                     core=alike_result)


# --- the background swap (masks) --------------------------------------------------------


def without_object(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo with its object filled from the background: each object pixel takes the
    pixel mirrored through the photo's centre when that one is background, else the
    background's mean colour (a textured background keeps most of its texture)."""
    background = pixels.copy()
    mirrored, mirrored_mask = pixels[::-1, ::-1], mask[::-1, ::-1]
    use_mirror = mask & ~mirrored_mask
    background[use_mirror] = mirrored[use_mirror]
    rest = mask & mirrored_mask
    if rest.any():
        outside = pixels[~mask]
        background[rest] = outside.mean(axis=0) if len(outside) else pixels.mean(axis=(0, 1))
    return background


def swapped(object_pixels: np.ndarray, object_mask: np.ndarray, background_pixels: np.ndarray,
            background_mask: np.ndarray) -> np.ndarray:
    """One photo's object, cut out by its mask, on another photo's background (that
    photo's own object removed first)."""
    out = without_object(background_pixels, background_mask)
    out[object_mask] = object_pixels[object_mask]
    return out


def background_test(model, label: str, target: int, own: list[tuple[Image.Image, np.ndarray, str]],
                    others: list[tuple[Image.Image, np.ndarray, str]]) -> SwapTest:
    """``own``: the class's photos with their masks (each at the photo's size) and the
    model's answer to each; ``others``: photos of other classes with theirs. Four swaps,
    each photo used once per swap:
    own objects on others' backgrounds, own on own (control), others' on own
    backgrounds, others' on others' (control)."""
    def prepared(items):
        return [(_bytes(network_pixels(model, image)), network_mask(model, mask)) for image, mask, _ in items]

    mine, theirs = prepared(own), prepared(others)
    n, m = len(mine), len(theirs)
    groups = {
        "kept": [swapped(*mine[i], *theirs[i % m]) for i in range(n)],
        "kept_control": [swapped(*mine[i], *mine[(i + 1) % n]) for i in range(n)] if n > 1 else [],
        "taken": [swapped(*theirs[j], *mine[j % n]) for j in range(m)],
        "taken_control": [swapped(*theirs[j], *theirs[(j + 1) % m]) for j in range(m)] if m > 1 else [],
    }
    batch = [p for name in groups for p in groups[name]]
    _, top = answers(model, batch, target)
    shares, start = {}, 0
    for name, photos in groups.items():
        said = top[start:start + len(photos)]
        start += len(photos)
        shares[name] = float(np.mean([s == label for s in said])) if said else (1.0 if name == "kept_control" else 0.0)
        shares[name + "_said"] = said
    examples = [Example(f"a '{label}' object on another class's background", _jpeg(mine[i][0]),
                        _jpeg(groups["kept"][i]), own[i][2], shares["kept_said"][i]) for i in range(min(2, n))]
    examples += [Example(f"another class's object on a '{label}' background", _jpeg(theirs[j][0]),
                         _jpeg(groups["taken"][j]), others[j][2], shares["taken_said"][j]) for j in range(min(1, m))]
    return SwapTest(tested=n, kept=shares["kept"], kept_control=shares["kept_control"], taken=shares["taken"],
                    taken_control=shares["taken_control"], examples=examples)


# --- the colour swap (without masks) ----------------------------------------------------


def colour_statistics(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of photos (n, h, w, c) or one photo (h, w, c)."""
    axes = (0, 1, 2) if pixels.ndim == 4 else (0, 1)
    return pixels.mean(axis=axes), pixels.std(axis=axes)


def with_colours(pixels: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The photo with each channel moved to the given mean and spread (a colour transfer)."""
    own_mean, own_spread = colour_statistics(pixels)
    return np.clip((pixels - own_mean) / np.maximum(own_spread, 1e-3) * spread + mean, 0, 255)


def colour_test(model, label: str, target: int, own: list[tuple[Image.Image, str]],
                donors: list[tuple[str, np.ndarray, np.ndarray]]) -> ColourTest:
    """``donors``: (class, mean, spread) of other classes' photos, 0..255; photo i of the
    class is given donor i's colours (round robin)."""
    pixels = [network_pixels(model, image) for image, _ in own]
    given = [donors[i % len(donors)] for i in range(len(pixels))]
    recoloured = [_bytes(with_colours(p, mean, spread)) for p, (_, mean, spread) in zip(pixels, given)]
    _, top = answers(model, recoloured, target)
    followed = float(np.mean([said == donor for said, (donor, _, _) in zip(top, given)])) if top else 0.0
    changed = float(np.mean([said != label for said in top])) if top else 0.0
    examples = [Example(f"a '{label}' photo with the colours of '{given[i][0]}' photos", _jpeg(pixels[i]),
                        _jpeg(recoloured[i]), own[i][1], top[i]) for i in range(min(EXAMPLES, len(pixels)))]
    return ColourTest(tested=len(pixels), followed=followed, changed=changed, examples=examples)
