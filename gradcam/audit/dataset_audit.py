"""Audit a whole dataset for shortcuts ("Clever Hans" strategies): ``gradcam.audit``.

The steps:

1. read the source (``sources.py``): photos, their true labels from class
   folders, or the maps a Ray job already wrote;
2. explain every photo with the batched engine (32 photos per compiled call),
   keeping per photo only its map, a thumbnail and a 32x32 "look" of it;
3. per explained class, group the maps with SpRAy (``spray.py``); SpRAy finds
   where maps agree, which proves nothing by itself, so
4. per cluster on a small region, the patch tests (``evidence.py``) on at most
   TESTED members (nearest the centre first): the region filled three ways (blur,
   the photo's mean, the same region of other classes' photos) against a box of
   the same size elsewhere, and the region transplanted into photos of other classes
   against a random box;
5. flag a cluster when all of these hold (the rules are the functions below, each
   written out in tests/audit/test_evidence.py):
   - the maps agree on one *small* region (area <= SMALL_AREA of the photo), in
     at least MIN_MEMBERS photos;
   - the photos differ (their looks vary, outside the region, by VARIETY or more);
   - the model depends on the region far more than on a random one: with some
     infill, reliance at least RELIANCE_GAP above random_reliance and at least
     RELIANCE_RATIO times it (``removal_passes``), or the transplant turns at least
     FLIP_GAP more of the other classes' photos than a random box (``transplant_passes``);
   - what is in the region is not the object: with masks, in at least OFF_OBJECT of
     the members the map's strongest point, at the photo's own size, lies off the
     photo's own object; without masks, the region looks alike in the members while
     the rest of the photos differ (``sameness`` >= SAMENESS), or, where the region as a
     whole differs (a tag's ink on a background that varies), its pixels that are the same
     in every member, transplanted alone, turn other classes' photos (``core_passes``):
     a tag, a watermark.
     Objects placed anywhere and centred objects are not flagged: a shortcut is the
     same thing at the same place;
6. per class, with masks, the background swap (``background_verdict``): flagged when
   this class's backgrounds make other classes' objects this class far more often
   than their own backgrounds do; without masks, the colour swap is reported (never
   flagged: a colour cue and the objects' own colour look alike then) and the audit
   says that backgrounds, frames, textures and colour casts were not tested.

A broken photo is a row with its sentence; the audit goes on.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from ..engine.baselines import map_at_input
from ..engine.batched import explain_batch
from ..engine.cam import ExplanationStopped
from ..engine.graph import resolve_layer
from ..errors import PixelBudgetExceeded
from .evidence import (ColourTest, CoreTest, Example, PatchTest, SwapTest, background_test, box_pixels, colour_test,
                       core_test, patch_test, random_boxes, reliance_test)
from .sources import Entry, Source, mask_at, photo_size, read_masks, read_source, relative_key
from .spray import Region, spray

CHUNK = 32  # photos decoded and explained at once: one call of the largest bucket, bounded memory
TESTED = 16  # members per cluster in the reliance test (nearest the cluster's centre first)
THUMBNAIL_SIDE = 128  # per-photo JPEG thumbnail, for mosaics
LOOK_SIDE = 32  # per-photo small RGB copy for "do the photos differ" (3 KB each)
MIN_MEMBERS = 4  # a pattern needs at least this many photos
SMALL_AREA = 0.2  # a region covering at most this share of the photo is "small"
VARIETY = 0.03  # mean per-pixel spread (0..1) of the members' looks outside the region: the photos differ
RELIANCE_GAP = 0.2  # reliance at least this much above the random regions' ...
RELIANCE_RATIO = 2.0  # ... and at least this many times it
SAMENESS = 0.35  # without masks: the region varies at most 65 % as much as the rest of the photos
OFF_OBJECT = 0.5  # with masks: in at least half of the members the map's peak lies off the photo's own object
FLIP_GAP = 0.5  # transplant: the region turns at least this share more photos than a random box does ...
MIN_RECIPIENTS = 4  # ... of at least this many photos of other classes
SWAPPED = 8  # photos per class (and of other classes) in the background and colour swaps
# The photos at the network's input size (8-bit) kept from the explaining pass for the evidence
# tests, up to this many bytes per audit (426 photos at 224 x 224; an upload holds at most 500):
# the tests read the same members and photos of other classes cluster after cluster, and decoding
# and resizing them again was an eighth of the audit's time on the bench's 128 photos. Photos past
# it are read again when a test needs them.
KEPT_PIXELS_BYTES = 64 * 2 ** 20
SWAP_GAP = 0.5  # background swap: the answer follows the background in at least this share beyond the control
NOT_TESTED_WITHOUT_MASKS = ("Backgrounds, frames, textures and colour casts were not tested: they need object masks "
                            "or boxes (masks=...).")


# --- results -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPhoto:
    index: int
    path: str
    true_label: str | None
    label: str | None  # the explained class
    target: int | None
    probability: float | None  # of the explained class
    predicted: str | None  # the top-1 class
    correct: bool | None  # predicted == true_label (None without a true label)
    map: np.ndarray | None = field(repr=False)  # (h, w) at the layer's resolution
    cluster: int | None = None
    outlier: bool = False
    xy: tuple[float, float] | None = None
    mass_on_object: float | None = None
    pointing_hit: bool | None = None
    size: tuple[int, int] | None = None  # (width, height) of the photo
    thumbnail: bytes | None = field(default=None, repr=False)  # JPEG
    error: str = ""


@dataclass(frozen=True)
class AuditCluster:
    label: str
    number: int
    members: list[str]
    indices: list[int]
    mean_map: np.ndarray = field(repr=False)
    region: tuple[float, float, float, float]
    area: float
    consistency: float
    reliance: float | None
    random_reliance: float | None
    before: float | None
    after: float | None
    tested: int
    sameness: float | None
    off_object: float | None
    suspicion: float
    flagged: bool
    reason: str
    infill: str | None = None  # the infill of the strongest drop (evidence.INFILLS)
    drops: dict = field(default_factory=dict)  # infill -> (drop with the region filled, with a box elsewhere filled)
    recipients: int = 0  # other classes' photos the region was pasted into
    flips: int | None = None  # of them, now answered this class
    random_flips: int | None = None  # the same with a random box pasted
    examples: list = field(default_factory=list, repr=False)  # evidence.Example: the transplant, before/after
    core: CoreTest | None = None  # without masks: the region's alike pixels transplanted alone


@dataclass(frozen=True)
class AuditClass:
    label: str
    count: int
    accuracy: float | None
    mean_map: np.ndarray = field(repr=False)
    mass_on_object: float | None
    pointing_rate: float | None
    clusters: list[AuditCluster]
    eigenvalues: list[float]
    object_share: float | None = None  # with masks: the mean share of the photo its objects cover
    background: SwapTest | None = None  # with masks: the background swap
    colours: ColourTest | None = None  # without masks: the colour swap
    flagged: bool = False  # the background swap shows the answer follows the background
    reason: str = ""  # what the class-level tests found, or why they did not run


@dataclass(frozen=True)
class Audit:
    photos: list[AuditPhoto]
    classes: list[AuditClass]
    model: str
    layer: str
    method: str
    explain: str
    source: str
    masks: bool
    problems: list[str]
    untested: list[str] = field(default_factory=list)  # what the audit could not test, and why
    budget_refused: int = 0  # photos the session's pixel budget refused (then or in the evidence tests)

    @property
    def flagged(self) -> list[AuditCluster]:
        found = [c for cls in self.classes for c in cls.clusters if c.flagged]
        return sorted(found, key=lambda c: -c.suspicion)

    @property
    def flagged_classes(self) -> list[AuditClass]:
        """Classes whose answer follows the background (the background swap, with masks)."""
        return [cls for cls in self.classes if cls.flagged]

    @property
    def outliers(self) -> list[AuditPhoto]:
        return [p for p in self.photos if p.outlier]

    @property
    def broken(self) -> list[AuditPhoto]:
        return [p for p in self.photos if p.error]

    def photo(self, path: str) -> AuditPhoto:
        for p in self.photos:
            if p.path == path:
                return p
        raise KeyError(path)

    def cluster_photos(self, cluster: AuditCluster) -> list[AuditPhoto]:
        return [self.photos[i] for i in cluster.indices]

    def headline(self) -> str:
        """One sentence: how many photos and classes, and how many clusters look like a shortcut."""
        explained = len(self.photos) - len(self.broken)
        text = (f"Audited {explained} photo{'s' if explained != 1 else ''} in {len(self.classes)} "
                f"class{'es' if len(self.classes) != 1 else ''}")
        if self.broken:
            text += f" ({len(self.broken)} could not be read)"
        flagged, classes = self.flagged, self.flagged_classes
        found = []
        if flagged:
            found.append(f"{len(flagged)} cluster{'s look' if len(flagged) != 1 else ' looks'} like a shortcut")
        if classes:
            found.append(f"{len(classes)} class{'es follow' if len(classes) != 1 else ' follows'} its background")
        if found:
            return text + "; " + " and ".join(found) + "."
        # Never "no shortcut" for what was not tested.
        if self.untested:
            return text + "; nothing tested looks like a shortcut (small patches only: see what was not tested)."
        return text + "; no cluster looks like a shortcut."

    def summary(self) -> str:
        """The headline, then the most suspicious finding's reason (or what was not tested)."""
        flagged, classes = self.flagged, self.flagged_classes
        if flagged:
            return f"{self.headline()} {flagged[0].reason}"
        if classes:
            return f"{self.headline()} {classes[0].reason}"
        return " ".join([self.headline()] + self.untested)

    def to_dict(self) -> dict:
        """Everything as plain JSON values (maps as nested lists; thumbnails left out)."""
        def number(value):  # NaN and infinity are not JSON: null
            return None if value is None or not np.isfinite(float(value)) else round(float(value), 6)

        def grid(values):
            return None if values is None else np.round(np.asarray(values, np.float64), 6).tolist()

        return {
            "model": self.model, "layer": self.layer, "method": self.method, "explain": self.explain,
            "source": self.source, "masks": self.masks, "problems": list(self.problems), "summary": self.summary(),
            "untested": list(self.untested),
            "flagged": [{"label": c.label, "cluster": c.number} for c in self.flagged],
            "flagged_classes": [cls.label for cls in self.flagged_classes],
            "classes": [{
                "label": cls.label, "count": cls.count, "accuracy": number(cls.accuracy),
                "mean_map": grid(cls.mean_map), "mass_on_object": number(cls.mass_on_object),
                "pointing_rate": number(cls.pointing_rate), "eigenvalues": [number(v) for v in cls.eigenvalues],
                "object_share": number(cls.object_share), "flagged": cls.flagged, "reason": cls.reason,
                "background": None if cls.background is None else {
                    "tested": cls.background.tested, "kept": number(cls.background.kept),
                    "kept_control": number(cls.background.kept_control), "taken": number(cls.background.taken),
                    "taken_control": number(cls.background.taken_control)},
                "colours": None if cls.colours is None else {
                    "tested": cls.colours.tested, "followed": number(cls.colours.followed),
                    "changed": number(cls.colours.changed)},
                "clusters": [{
                    "number": c.number, "members": list(c.members), "mean_map": grid(c.mean_map),
                    "region": [number(v) for v in c.region], "area": number(c.area),
                    "consistency": number(c.consistency), "reliance": number(c.reliance),
                    "random_reliance": number(c.random_reliance), "before": number(c.before),
                    "after": number(c.after), "tested": c.tested, "sameness": number(c.sameness),
                    "off_object": number(c.off_object), "suspicion": number(c.suspicion), "flagged": c.flagged,
                    "reason": c.reason, "infill": c.infill,
                    "drops": {name: [number(a), number(b)] for name, (a, b) in c.drops.items()},
                    "recipients": c.recipients, "flips": c.flips, "random_flips": c.random_flips,
                    "core": None if c.core is None else {
                        "share": number(c.core.share), "recipients": c.core.recipients, "flips": c.core.flips,
                        "random_flips": c.core.random_flips},
                } for c in cls.clusters],
            } for cls in self.classes],
            "photos": [{
                "path": p.path, "true_label": p.true_label, "label": p.label, "target": p.target,
                "probability": number(p.probability), "predicted": p.predicted, "correct": p.correct,
                "cluster": p.cluster, "outlier": p.outlier, "xy": None if p.xy is None else [number(v) for v in p.xy],
                "mass_on_object": number(p.mass_on_object), "pointing_hit": p.pointing_hit,
                "size": None if p.size is None else list(p.size), "map": grid(p.map), "error": p.error,
            } for p in self.photos],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


# --- the pipeline ------------------------------------------------------------------


@dataclass
class _Row:
    """What the audit keeps of one photo while it runs."""

    entry: Entry
    label: str | None = None
    target: int | None = None
    probability: float | None = None
    predicted: str | None = None
    map: np.ndarray | None = None
    size: tuple[int, int] | None = None
    thumbnail: bytes | None = None
    look: np.ndarray | None = None  # (LOOK_SIDE, LOOK_SIDE, 3) in 0..1
    mask: np.ndarray | None = None  # the object at the photo's size
    error: str = ""
    refused: str = ""  # the session's pixel budget refused a read of it or of its mask (the sentence)
    refused_in_tests: bool = False  # ... when the evidence tests read it again
    pixels: np.ndarray | None = field(default=None, repr=False)  # at the network's input size, 8-bit (or None)


def _thumbnail(image: Image.Image) -> bytes:
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _look(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((LOOK_SIDE, LOOK_SIDE), Image.BILINEAR), np.float32) / 255.0


def _check_stop(stop) -> None:
    if stop is not None and stop.is_set():
        raise ExplanationStopped("The audit was stopped.")


def _keep_photo(row: _Row, image: Image.Image, masks: dict, problems: list) -> None:
    row.size = photo_size(image)  # as the person knows it (the audit decodes it downscaled)
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # one downscale of the full photo, the rest from it
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    row.thumbnail = buffer.getvalue()
    row.look = _look(small)
    found = masks.get(relative_key(row.entry.path))
    if found is not None:
        try:
            row.mask = mask_at(found() if callable(found) else found, image.size, photo_size(image))
        except ValueError as error:
            problems.append(f"The mask of {row.entry.path} cannot be used: {error}")
            if isinstance(error, PixelBudgetExceeded):
                row.refused = " ".join(str(error).split())


def _explain_rows(model, rows: list[_Row], layer, method, explain, masks, progress, stop, problems) -> None:
    """Decode and explain the photos CHUNK at a time (each decoded photo is dropped
    after its chunk: memory stays bounded whatever the source's size; the network-size
    copies kept for the evidence tests stop at KEPT_PIXELS_BYTES)."""
    total = len(rows)
    kept = 0
    for start in range(0, total, CHUNK):
        _check_stop(stop)
        chunk = rows[start:start + CHUNK]
        images: dict[int, Image.Image] = {}
        for i, row in enumerate(chunk):
            try:
                decoded = row.entry.read()
            except ValueError as error:  # InvalidImageError and the sandbox's sentences
                row.error = " ".join(str(error).split()) or "This photo cannot be read."
                if isinstance(error, PixelBudgetExceeded):
                    row.refused = row.error
                continue
            _keep_photo(row, decoded, masks, problems)
            # Explaining the network-size photo gives the same input (its resize is then a copy),
            # and so does the evidence tests' own resize of it (``network_pixels``).
            images[i] = model.network_image(decoded)
            pixels = np.asarray(images[i])
            if kept + pixels.nbytes <= KEPT_PIXELS_BYTES:
                row.pixels, kept = pixels, kept + pixels.nbytes
        known = [i for i in images if explain == "label" and chunk[i].entry.true_label is not None]
        unknown = [i for i in images if i not in known]
        for group, targets in ((known, [[chunk[i].entry.true_label] for i in known]), (unknown, None)):
            if not group:
                continue
            explained = explain_batch(model, [images[i] for i in group], targets, layer, method)
            for i, (explanation,) in zip(group, explained):
                row = chunk[i]
                row.label, row.target, row.probability = explanation.label, explanation.target, explanation.probability
                row.predicted = explanation.predictions[0].label if explanation.predictions else None
                row.map = np.asarray(explanation.raw, np.float32)
        if progress is not None:
            progress(min(start + CHUNK, total), total)


def _rows_from_parquet(rows: list[_Row], masks: dict) -> None:
    for row in rows:
        e = row.entry
        row.label, row.target, row.probability, row.predicted, row.map, row.error = (
            e.label, e.target, e.probability, e.predicted, e.map, e.error)
        if not row.error and row.map is None:
            row.error = "This row has no map."
        if masks and not row.error and relative_key(e.path) in masks:
            # Masks need the photo's size: read it (only with masks).
            try:
                image = e.read()
                _keep_photo(row, image, masks, [])
            except ValueError:
                pass


# --- masks: mass on the object, pointing game -------------------------------------


def object_scores(raw: np.ndarray, mask: np.ndarray) -> tuple[float | None, bool | None]:
    """(relevance mass on the object, pointing-game hit) of one map and one object mask.

    mass = sum over the object's pixels of M / sum over all pixels of M, where M is the
    map (negatives cut) upsampled bilinearly to the mask's (the photo's) size; the hit
    says whether M's largest value lies on the object. (None, None) for an empty map."""
    height, width = mask.shape
    upsampled = np.clip(map_at_input(np.asarray(raw, np.float32), height, width), 0, None)
    total = float(upsampled.sum())
    if not total > 0:
        return None, None
    mass = float(upsampled[mask].sum() / total)
    peak = np.unravel_index(int(np.argmax(upsampled)), upsampled.shape)
    return mass, bool(mask[peak])


# --- reliance --------------------------------------------------------------------


def sameness_of(looks: np.ndarray, region: tuple[float, float, float, float]) -> tuple[float, float]:
    """(sameness, variety) of members' looks (n, s, s, 3): variety is the mean per-pixel
    standard deviation across the photos outside the region (do the photos differ?);
    sameness = 1 - (that deviation inside the region) / variety, in 0..1 (1: the region
    looks the same in every photo, 0: it varies as much as the rest)."""
    side = looks.shape[1]
    r0, c0, r1, c1 = box_pixels(region, side, side)
    inside = np.zeros((side, side), bool)
    inside[r0:r1, c0:c1] = True
    spread = looks.std(axis=0).mean(axis=-1)  # (s, s)
    variety = float(spread[~inside].mean()) if (~inside).any() else 0.0
    if variety <= 0:
        return 0.0, 0.0
    return float(np.clip(1.0 - spread[inside].mean() / variety, 0.0, 1.0)), variety


def _two(value: float) -> str:
    """Two decimals, and never "-0.00" (a drop of -0.001 is no change)."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def _place(region: tuple[float, float, float, float]) -> str:
    x = (region[0] + region[2]) / 2
    y = (region[1] + region[3]) / 2
    vertical = "top" if y < 1 / 3 else ("bottom" if y > 2 / 3 else "")
    horizontal = "left" if x < 1 / 3 else ("right" if x > 2 / 3 else "")
    return f"{vertical} {horizontal}".strip() or "centre"


def _off_object(rows: list[_Row]) -> float | None:
    """The share of the members whose map's strongest point, at the photo's own size,
    lies off the photo's own object (None without masks). Per photo, not one coarse
    region: a region on the map's grid is larger than a small object, and half of it
    would count as "off the object" for a map that sits on it."""
    misses = []
    for row in rows:
        if row.mask is None or row.map is None:
            continue
        _, hit = object_scores(row.map, row.mask)
        if hit is not None:
            misses.append(not hit)
    return float(np.mean(misses)) if misses else None


INFILL_WORDS = {"blur": "blurred", "mean": "filled with the photo's mean colour",
                "other classes": "filled with the same patch of other classes' photos"}


@dataclass(frozen=True)
class _Verdict:
    flagged: bool
    reason: str
    suspicion: float
    infill: str | None = None


def removal_passes(drop: float, random_drop: float) -> bool:
    """Removing the region costs far more than removing a box of the same size elsewhere."""
    return drop - random_drop >= RELIANCE_GAP and drop >= RELIANCE_RATIO * max(random_drop, 0.0)


def transplant_passes(recipients: int, flips: int | None, random_flips: int | None) -> bool:
    """Pasted into other classes' photos, the region turns far more of them than a random box does."""
    return (recipients >= MIN_RECIPIENTS and flips is not None
            and (flips - (random_flips or 0)) / recipients >= FLIP_GAP)


def core_passes(core: CoreTest) -> bool:
    """Without masks: the pixels that are the same in every member, pasted alone into other
    classes' photos, turn far more of them than the same shape of pixels from elsewhere
    (the transplant's rule, on the alike pixels only)."""
    return transplant_passes(core.recipients, core.flips, core.random_flips)


def verdict(label: str, members: int, count: int, area: float, place: str, reliance, random_reliance, before, after,
            sameness, variety, off_object, *, drops: dict | None = None, recipients: int = 0, flips: int | None = None,
            random_flips: int | None = None, core: CoreTest | None = None) -> _Verdict:
    """The flag rule of the module's docstring, and its sentence. ``drops``: infill ->
    (drop, random drop); without it, ``reliance`` and ``random_reliance`` are one
    infill's (the blur's). ``core``: without masks, the region's alike pixels
    transplanted alone (``core_passes``)."""
    start = f"In {members} of {count} '{label}' photos the map sits"
    if members < MIN_MEMBERS:
        return _Verdict(False, f"{start} at the {place}: too few photos to call it a pattern.", 0.0)
    if reliance is None and drops:
        infill = max(drops, key=lambda name: drops[name][0])
        reliance, random_reliance = drops[infill]
    if area > SMALL_AREA and core is not None and core_passes(core) and core.share * area <= SMALL_AREA \
            and variety >= VARIETY:
        gap = (core.flips - core.random_flips) / core.recipients
        return _Verdict(True, f"{start} on {area:.0%} of the photo around the {place}, and the pixels in and "
                              f"around it that are the same in all these photos ({core.share * area:.0%} of the "
                              f"photo), pasted alone into {core.recipients} photos of other classes, made "
                              f"{core.flips} of them '{label}' (the same shape of pixels from elsewhere: "
                              f"{core.random_flips}).",
                        gap * (1.0 - core.share * area))
    if area > SMALL_AREA:
        return _Verdict(False, f"{start} on {area:.0%} of the photo around the {place}: not a small patch"
                               + ("." if reliance is None else f" (removing it changes '{label}' by {_two(reliance)}, "
                                                              f"a patch of that size elsewhere by "
                                                              f"{_two(random_reliance)})."), 0.0)
    if reliance is None:
        return _Verdict(False, f"{start} on a small patch at the {place}; without the photos, whether the score "
                               "depends on it was not tested.", 0.0)
    drops = drops or {"blur": (reliance, random_reliance)}
    passing = [name for name, (drop, random_drop) in drops.items() if removal_passes(drop, random_drop)]
    infill = max(passing or drops, key=lambda name: drops[name][0])
    reliance, random_reliance = drops[infill]
    after = before - reliance
    removed = removal_passes(reliance, random_reliance)
    moved = transplant_passes(recipients, flips, random_flips)
    gap = max(reliance - random_reliance, ((flips or 0) - (random_flips or 0)) / recipients if recipients else 0.0)
    alike = core is not None and core_passes(core)
    evidence = off_object if off_object is not None else max(
        sameness or 0.0, (core.flips - core.random_flips) / core.recipients if alike else 0.0)
    suspicion = max(0.0, gap) * (1.0 - area) * evidence
    words = INFILL_WORDS.get(infill, infill)
    pasted = ("" if not recipients else
              f"; pasted into {recipients} photos of other classes, the patch made {flips} of them '{label}' "
              f"(a patch of the same size from elsewhere: {random_flips})")
    if variety < VARIETY:
        return _Verdict(False, f"{start} on the same small patch at the {place}, but these photos look alike, so "
                               "alike maps are no surprise.", suspicion, infill)
    if not (removed or moved):
        return _Verdict(False, f"{start} on the same small patch at the {place}, but removing it ({words}) changes "
                               f"'{label}' by {_two(reliance)}, not far more than a patch of the same size elsewhere "
                               f"({_two(random_reliance)}){pasted}.", suspicion, infill)
    change = (f"removing that patch lowers '{label}' from {_two(before)} to {_two(after)} ({words}); a patch of the "
              f"same size elsewhere changes it by {_two(random_reliance)}{pasted}")
    if off_object is not None:
        if off_object < OFF_OBJECT:
            return _Verdict(False, f"{start} on the object (in {1 - off_object:.0%} of these photos the map's "
                                   f"strongest point at the {place} lies on the photo's own object), and {change}.",
                            suspicion, infill)
        return _Verdict(True, f"{start} on the same small patch at the {place}, off the object, and {change}.",
                        suspicion, infill)
    if sameness < SAMENESS and alike:
        return _Verdict(True, f"{start} on the same small patch at the {place}, and {change}; the pixels of it that "
                              f"are the same in all these photos ({core.share:.0%} of it), pasted alone into "
                              f"{core.recipients} photos of other classes, made {core.flips} of them '{label}' (the "
                              f"same shape of pixels from elsewhere: {core.random_flips}).", suspicion, infill)
    if sameness < SAMENESS:
        return _Verdict(False, f"{start} on a patch at the {place} that differs from photo to photo, like an object "
                               f"placed there, and {change}.", suspicion, infill)
    return _Verdict(True, f"{start} on the same small patch at the {place}, and {change}.", suspicion, infill)


def background_verdict(label: str, swap: SwapTest, mass: float | None, share: float | None,
                       others_mass: float | None) -> tuple[bool, str]:
    """Flag a class whose answer follows the background beyond what the swap's cutting
    and pasting does (SwapTest.reliance >= SWAP_GAP), and say it with the numbers."""
    n = swap.tested

    def of(share_: float, total: int) -> str:
        return f"{round(share_ * total)} of {total}"

    maps = ""
    if mass is not None and share is not None:
        maps = (f" Its maps put {mass:.2f} of their mass on the object, which covers {share:.2f} of the photo"
                + (f" (other classes' maps: {others_mass:.2f})." if others_mass is not None else "."))
    told = (f"Background swap: '{label}' objects pasted on other classes' backgrounds were called '{label}' in "
            f"{of(swap.kept, n)} photos (on other '{label}' backgrounds: {of(swap.kept_control, n)}), and other "
            f"classes' objects on '{label}' backgrounds were called '{label}' in {swap.taken:.0%} of photos "
            f"(on their own classes' backgrounds: {swap.taken_control:.0%})")
    if swap.reliance >= SWAP_GAP:
        return True, f"{told}: the answer follows the background, not the object.{maps}"
    return False, f"{told}: the answer follows the object.{maps}"


def colour_sentence(label: str, test: ColourTest) -> str:
    n = test.tested
    told = (f"Colour swap: given the colours of other classes' photos, {round(test.changed * n)} of {n} '{label}' "
            f"photos were no longer called '{label}'")
    if test.followed >= SWAP_GAP:
        return (f"{told} ({round(test.followed * n)} took the class whose colours they were given): the answer "
                "follows the photos' colours: a colour cast, a background colour or the objects' own colour; "
                "object masks would tell them apart.")
    return f"{told}: no sign that the answer follows the photos' colours alone."


def _read(rows: list[_Row]) -> list[tuple[_Row, Image.Image]]:
    """The rows' photos for the evidence tests: the network-size copy where one was kept, else
    decoded again (a refusal of the session's pixel budget is noted on the row)."""
    out = []
    for row in rows:
        if row.pixels is not None:
            out.append((row, Image.fromarray(row.pixels)))
            continue
        try:
            out.append((row, row.entry.read()))
        except PixelBudgetExceeded as error:  # the evidence tests go on with fewer photos: say so
            row.refused, row.refused_in_tests = " ".join(str(error).split()), True
        except ValueError:
            continue
    return out


def _others(rows: list[_Row], label: str, count: int, need_mask: bool = False) -> list[_Row]:
    """Up to ``count`` explained photos of other classes, taken in turn from each class."""
    by_class: dict[str, list[_Row]] = {}
    for row in rows:
        if row.label is not None and row.label != label and row.map is not None and not row.error \
                and (row.mask is not None or not need_mask):
            by_class.setdefault(row.label, []).append(row)
    queues = [by_class[name] for name in sorted(by_class)]
    out: list[_Row] = []
    depth = 0
    while len(out) < count and any(depth < len(q) for q in queues):
        out.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return out[:count]


def _class_tests(model, label: str, rows: list[_Row], in_class: list[_Row], have_masks: bool,
                 masses: dict[str, list[float]], stop) -> dict:
    """The class-level tests: with masks the background swap, without them the colour swap."""
    found: dict = {"object_share": None, "background": None, "colours": None, "flagged": False, "reason": ""}
    usable = [r for r in in_class if r.map is not None and not r.error]
    if have_masks:
        shares = [float(r.mask.mean()) for r in usable if r.mask is not None]
        found["object_share"] = float(np.mean(shares)) if shares else None
    if model is None:
        return found
    _check_stop(stop)
    if have_masks:
        own = [r for r in usable if r.mask is not None][:SWAPPED]
        others = _others(rows, label, SWAPPED, need_mask=True)
        if len(own) < MIN_MEMBERS or not others:
            found["reason"] = (f"The background swap needs {MIN_MEMBERS} or more '{label}' photos with masks and "
                               "photos of another class with masks.")
            return found
        own_read, others_read = _read(own), _read(others)
        if len(own_read) < MIN_MEMBERS or not others_read:
            return found
        swap = background_test(model, label, int(own[0].target), [(i, r.mask, r.predicted) for r, i in own_read],
                               [(i, r.mask, r.predicted) for r, i in others_read])
        mine = masses.get(label) or []
        theirs = [m for name, values in masses.items() if name != label for m in values]
        found["background"] = swap
        found["flagged"], found["reason"] = background_verdict(
            label, swap, float(np.mean(mine)) if mine else None, found["object_share"],
            float(np.mean(theirs)) if theirs else None)
        return found
    if model.channels != 3 or len(usable) < MIN_MEMBERS:
        return found
    donors = []
    for name in sorted({r.label for r in rows if r.label not in (None, label)}):
        looks = [r.look for r in rows if r.label == name and r.look is not None]
        if looks:
            stacked = np.stack(looks) * 255.0
            donors.append((name, stacked.mean(axis=(1, 2)).mean(axis=0), stacked.std(axis=(1, 2)).mean(axis=0)))
    if not donors:
        return found
    # A quarter of the class, at least MIN_MEMBERS and at most SWAPPED photos: the swap is
    # reported, never flagged (without masks a colour cue and the objects' colour look alike).
    sample = _read(usable[:int(np.clip(np.ceil(len(usable) / 4), MIN_MEMBERS, SWAPPED))])
    if sample:
        test = colour_test(model, label, int(sample[0][0].target), [(i, r.predicted) for r, i in sample], donors)
        found["colours"], found["reason"] = test, colour_sentence(label, test)
    return found


def _class_result(model, label: str, rows: list[_Row], members_of: list[int], have_masks: bool, stop,
                  masses: dict | None = None) -> tuple[AuditClass, dict[int, tuple[int | None, bool, tuple | None]]]:
    """SpRAy over one class's maps, each cluster's evidence and verdict, the class's swaps."""
    in_class = [rows[i] for i in members_of]
    with_map = [k for k, row in enumerate(in_class) if row.map is not None]
    maps = np.stack([in_class[k].map for k in with_map]) if with_map else np.zeros((0, 1, 1), np.float32)
    shapes = {m.shape for m in (in_class[k].map for k in with_map)}
    if len(shapes) > 1:  # maps at different resolutions (a mixed Parquet): compare them on one grid
        from .spray import downsampled

        side = min(min(s) for s in shapes)
        maps = np.concatenate([downsampled(in_class[k].map[None], side) for k in with_map])
    result = spray(maps)
    assignments: dict[int, tuple[int | None, bool, tuple | None]] = {}
    outliers = set(result.outliers.tolist())
    for position, k in enumerate(with_map):
        number = int(result.labels[position])
        assignments[members_of[k]] = (None if number < 0 else number, position in outliers,
                                      tuple(float(v) for v in result.embedding[position]))
    clusters = []
    count = len(in_class)
    for number, found in enumerate(result.clusters):
        _check_stop(stop)
        indices = [members_of[with_map[int(m)]] for m in found.members]
        member_rows = [rows[i] for i in indices]
        region = found.region
        box = region.box
        tested = member_rows[:TESTED]
        looks = np.stack([r.look for r in tested if r.look is not None]) if any(r.look is not None for r in tested) \
            else None
        sameness, variety = sameness_of(looks, box) if looks is not None and len(looks) > 1 else (None, 0.0)
        test: PatchTest | None = None
        core: CoreTest | None = None  # a large region's alike-pixel transplant (without masks)
        # The patch tests only where a shortcut is possible (a small region, enough photos),
        # on at most TESTED members and as many photos of other classes: they are the
        # audit's costly part, and a large region is no small patch whatever they give
        # (the background swap, with masks, looks at those).
        if model is not None and region.area <= SMALL_AREA and len(indices) >= MIN_MEMBERS:
            read = [(r, image) for r, image in _read(tested) if r.target is not None]
            if read:
                known = [r.probability for r, _ in read]
                given = None if any(k is None for k in known) else known
                recipients = _read(_others(rows, label, TESTED))
                # Without masks, a region whose pixels differ as a whole may still hold a cue that is
                # the same in every photo (a tag's ink, with varying background around it): its
                # alike pixels are transplanted alone too (2 passes per recipient more).
                alike = not have_masks and (sameness is None or sameness < SAMENESS)
                test = patch_test(model, label, int(read[0][0].target), [image for _, image in read],
                                  [(image, r.predicted) for r, image in recipients], region, given, core=alike)
                if looks is None:  # a Parquet source: the photos were read only now
                    looks = np.stack([_look(image) for _, image in read])
                    sameness, variety = sameness_of(looks, box) if len(looks) > 1 else (None, 0.0)
                for r, image in read:
                    if r.thumbnail is None:
                        r.thumbnail, r.size = _thumbnail(image), image.size
        elif model is not None and not have_masks and len(indices) >= MIN_MEMBERS and variety >= VARIETY:
            # A region too large to be a patch, and no masks for the background swap: maps can
            # spread over much of the photo around a small cue (a from-scratch MobileNetV2's
            # did, over 38% around a 10 px tag). Only its alike pixels are transplanted (2
            # passes per photo of other classes), the test a cue that is the same everywhere fails.
            read = [(r, image) for r, image in _read(tested) if r.target is not None]
            if read:
                recipients = _read(_others(rows, label, TESTED))
                core = core_test(model, label, int(read[0][0].target), [image for _, image in read],
                                 [(image, r.predicted) for r, image in recipients], region)
        off = _off_object(member_rows) if have_masks else None
        judged = verdict(label, len(indices), count, region.area, _place(box),
                         None if test is None else test.reliance, None if test is None else test.random_reliance,
                         None if test is None else test.before, None, sameness, variety, off,
                         drops=None if test is None else test.drops, recipients=0 if test is None else test.recipients,
                         flips=None if test is None else test.flips,
                         random_flips=None if test is None else test.random_flips,
                         core=core if test is None else test.core)
        reliance = random_reliance = after = None
        if test is not None:
            reliance, random_reliance = test.drops[judged.infill]
            after = test.before - reliance
        clusters.append(AuditCluster(
            label=label, number=number, members=[rows[i].entry.path for i in indices], indices=indices,
            mean_map=found.mean_map, region=box, area=region.area, consistency=found.consistency,
            reliance=reliance, random_reliance=random_reliance, before=None if test is None else test.before,
            after=after, tested=0 if test is None else test.tested,
            sameness=sameness, off_object=off, suspicion=judged.suspicion, flagged=judged.flagged,
            reason=judged.reason, infill=judged.infill if test is not None else None,
            drops={} if test is None else dict(test.drops), recipients=0 if test is None else test.recipients,
            flips=None if test is None else test.flips, random_flips=None if test is None else test.random_flips,
            examples=[] if test is None else list(test.examples), core=core if test is None else test.core))
    if len(maps):
        from .spray import normalised

        mean_map = normalised(maps)[0].mean(axis=0)
    else:
        mean_map = np.zeros((1, 1), np.float32)
    truths = [r for r in in_class if r.entry.true_label is not None and r.predicted is not None]
    accuracy = float(np.mean([r.predicted == r.entry.true_label for r in truths])) if truths else None
    scores = [object_scores(r.map, r.mask) for r in in_class if r.mask is not None and r.map is not None]
    masses_here = [s[0] for s in scores if s[0] is not None]
    hits = [s[1] for s in scores if s[1] is not None]
    tests = _class_tests(model, label, rows, in_class, have_masks, masses or {}, stop)
    return AuditClass(label=label, count=count, accuracy=accuracy, mean_map=mean_map,
                      mass_on_object=float(np.mean(masses_here)) if masses_here else None,
                      pointing_rate=float(np.mean(hits)) if hits else None, clusters=clusters,
                      eigenvalues=[float(v) for v in result.eigenvalues], **tests), assignments


def audit(model, source, *, labels: dict | None = None, masks=None, layer=None, method: str = "gradcam",
          explain: str = "label", progress: Callable[[int, int], object] | None = None, stop=None,
          allow_uris: bool = False) -> Audit:
    """Audit ``source`` for shortcuts: every photo's map, SpRAy clusters per class, and
    which clusters look like a "Clever Hans" strategy (see the module's docstring
    and docs/audit.md for the sources, masks and results). ``allow_uris``: a Parquet
    dataset's photos may be read from s3:// or gs:// URIs (else local paths only)."""
    if explain not in ("label", "predicted"):
        raise ValueError('explain is "label" (the true class where known) or "predicted" (the top-1 class).')
    model_labels = None if model is None else model.labels
    read: Source = read_source(source, model_labels, allow_uris)
    problems = list(read.problems)
    if model is None and not read.precomputed:
        raise ValueError("Auditing photos needs a model; only a Parquet dataset's maps can be audited without one.")
    entries = read.entries
    if labels:
        given = {relative_key(str(k)): str(v) for k, v in labels.items()}
        entries = [Entry(e.path, given.get(relative_key(e.path), e.true_label), e.read, e.map, e.target, e.label,
                         e.probability, e.predicted, e.layer, e.method, e.error) for e in entries]
    if model is not None and explain == "label":
        unknown = sorted({e.true_label for e in entries if e.true_label is not None} - set(model.labels))
        if unknown:
            raise ValueError(f"The true label {unknown[0]!r} is not one of the model's classes.")
    mask_of, mask_problems = read_masks(masks)
    problems += mask_problems
    rows = [_Row(e) for e in entries]
    if read.precomputed:
        _rows_from_parquet(rows, mask_of)
        layers = {e.layer for e in entries if e.layer}
        methods = {e.method for e in entries if e.method}
        layer_name = ", ".join(sorted(layers)) or "unknown"
        method_name = ", ".join(sorted(methods)) or method
        if progress is not None:
            progress(len(rows), len(rows))
    else:
        layer_name = resolve_layer(model, layer).name
        method_name = method
        _explain_rows(model, rows, layer_name, method, explain, mask_of, progress, stop, problems)
    if mask_of:
        matched = sum(r.mask is not None for r in rows)
        if matched == 0:
            problems.append("No mask matched a photo (a mask is matched by the photo's path without its extension).")
        elif matched < sum(not r.error for r in rows):
            problems.append(f"{matched} of {sum(not r.error for r in rows)} photos have a mask.")
    by_class: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.label is not None:
            by_class.setdefault(row.label, []).append(i)
    masses: dict[str, list[float]] = {}
    for row in rows:
        if row.label is not None and row.mask is not None and row.map is not None:
            mass, _ = object_scores(row.map, row.mask)
            if mass is not None:
                masses.setdefault(row.label, []).append(mass)
    classes, placed = [], {}
    for label, members_of in sorted(by_class.items(), key=lambda item: (-len(item[1]), item[0])):
        cls, assignments = _class_result(model, label, rows, members_of, bool(mask_of), stop, masses)
        classes.append(cls)
        placed.update(assignments)
    photos = []
    for i, row in enumerate(rows):
        cluster, outlier, xy = placed.get(i, (None, False, None))
        mass, hit = object_scores(row.map, row.mask) if row.mask is not None and row.map is not None else (None, None)
        truth = row.entry.true_label
        photos.append(AuditPhoto(
            index=i, path=row.entry.path, true_label=truth, label=row.label, target=row.target,
            probability=None if row.probability is None else float(row.probability), predicted=row.predicted,
            correct=None if truth is None or row.predicted is None else row.predicted == truth, map=row.map,
            cluster=cluster, outlier=outlier, xy=xy, mass_on_object=mass, pointing_hit=hit, size=row.size,
            thumbnail=row.thumbnail, error=row.error))
    refused_later = [r for r in rows if r.refused_in_tests and not r.error]
    if refused_later:
        problems.append(f"{len(refused_later)} photo{'s' if len(refused_later) != 1 else ''} could not be read again "
                        f"for the evidence tests, which ran without {'them' if len(refused_later) != 1 else 'it'}: "
                        f"{refused_later[0].refused}")
    untested = []
    if model is None:
        untested.append("Without a model nothing was tested: the clusters show where the maps agree, which proves "
                        "nothing by itself.")
    elif not mask_of:
        untested.append(NOT_TESTED_WITHOUT_MASKS)
    if model is not None and any(c.area > SMALL_AREA for cls in classes for c in cls.clusters) and not mask_of:
        untested.append(f"Clusters on more than {SMALL_AREA:.0%} of the photo got no patch test (they are no small "
                        "patch), only the transplant of their pixels that are the same in every photo; the background "
                        "swap, with masks, tests them.")
    return Audit(photos=photos, classes=classes, model="" if model is None else model.name, layer=layer_name,
                 method=method_name, explain=explain, source=read.name, masks=bool(mask_of), problems=problems,
                 untested=untested, budget_refused=sum(bool(r.refused) for r in rows))
