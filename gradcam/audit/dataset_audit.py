"""Audit a whole dataset for shortcuts ("Clever Hans" strategies): ``gradcam.audit``.

The steps:

1. read the source (``sources.py``): photos, their true labels from class
   folders, or the maps a Ray job already wrote;
2. explain every photo with the batched engine (32 photos per compiled call),
   keeping per photo only its map, a thumbnail and a 32x32 "look" of it;
3. per explained class, group the maps with SpRAy (``spray.py``);
4. per cluster, the reliance test on at most TESTED members (nearest the centre
   first): the explained class's probability with the cluster's region replaced by
   the blur baseline (``engine/baselines.py``), against the same for one box of the
   same size elsewhere per member (a different place for each member);
5. flag a cluster when all of these hold (DESIGN.md):
   - the maps agree on one *small* region (area <= SMALL_AREA of the photo), in
     at least MIN_MEMBERS photos;
   - the photos differ (their looks vary, outside the region, by VARIETY or more);
   - the score depends on the region far more than on a random one (reliance at
     least RELIANCE_GAP above random_reliance and at least RELIANCE_RATIO times it);
   - what is in the region is not the object: with masks, at least OFF_OBJECT of the
     region lies outside the objects; without masks, the region looks alike in the
     members while the rest of the photos differ (``sameness`` >= SAMENESS): a tag,
     a watermark, a border. Objects placed anywhere (a cluster per place) and a
     centred object differ from photo to photo inside the region, so they are not
     flagged: a shortcut is the same thing at the same place.

A broken photo is a row with its sentence; the audit goes on.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from ..engine.baselines import baseline_pixels, map_at_input, network_pixels
from ..engine.batched import explain_batch
from ..engine.cam import ExplanationStopped
from ..engine.graph import resolve_layer
from .sources import Entry, Source, mask_at, read_masks, read_source, relative_key
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
OFF_OBJECT = 0.5  # with masks: at least half of the region lies outside the objects


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

    @property
    def flagged(self) -> list[AuditCluster]:
        found = [c for cls in self.classes for c in cls.clusters if c.flagged]
        return sorted(found, key=lambda c: -c.suspicion)

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
        flagged = self.flagged
        if not flagged:
            return text + "; no cluster looks like a shortcut."
        return text + f"; {len(flagged)} cluster{'s look' if len(flagged) != 1 else ' looks'} like a shortcut."

    def summary(self) -> str:
        """The headline, then the most suspicious cluster's reason."""
        flagged = self.flagged
        return self.headline() + (" " + flagged[0].reason if flagged else "")

    def to_dict(self) -> dict:
        """Everything as plain JSON values (maps as nested lists; thumbnails left out)."""
        def number(value):
            return None if value is None else round(float(value), 6)

        def grid(values):
            return None if values is None else np.round(np.asarray(values, np.float64), 6).tolist()

        return {
            "model": self.model, "layer": self.layer, "method": self.method, "explain": self.explain,
            "source": self.source, "masks": self.masks, "problems": list(self.problems), "summary": self.summary(),
            "flagged": [{"label": c.label, "cluster": c.number} for c in self.flagged],
            "classes": [{
                "label": cls.label, "count": cls.count, "accuracy": number(cls.accuracy),
                "mean_map": grid(cls.mean_map), "mass_on_object": number(cls.mass_on_object),
                "pointing_rate": number(cls.pointing_rate), "eigenvalues": [number(v) for v in cls.eigenvalues],
                "clusters": [{
                    "number": c.number, "members": list(c.members), "mean_map": grid(c.mean_map),
                    "region": [number(v) for v in c.region], "area": number(c.area),
                    "consistency": number(c.consistency), "reliance": number(c.reliance),
                    "random_reliance": number(c.random_reliance), "before": number(c.before),
                    "after": number(c.after), "tested": c.tested, "sameness": number(c.sameness),
                    "off_object": number(c.off_object), "suspicion": number(c.suspicion), "flagged": c.flagged,
                    "reason": c.reason,
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
    row.size = image.size
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # one downscale of the full photo, the rest from it
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    row.thumbnail = buffer.getvalue()
    row.look = _look(small)
    found = masks.get(relative_key(row.entry.path))
    if found is not None:
        try:
            row.mask = mask_at(found() if callable(found) else found, image.size)
        except ValueError as error:
            problems.append(f"The mask of {row.entry.path} cannot be used: {error}")


def _explain_rows(model, rows: list[_Row], layer, method, explain, masks, progress, stop, problems) -> None:
    """Decode and explain the photos CHUNK at a time (each decoded photo is dropped
    after its chunk: memory stays bounded whatever the source's size)."""
    total = len(rows)
    for start in range(0, total, CHUNK):
        _check_stop(stop)
        chunk = rows[start:start + CHUNK]
        images: dict[int, Image.Image] = {}
        for i, row in enumerate(chunk):
            try:
                images[i] = row.entry.read()
            except ValueError as error:  # InvalidImageError and the sandbox's sentences
                row.error = " ".join(str(error).split()) or "This photo cannot be read."
                continue
            _keep_photo(row, images[i], masks, problems)
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


def _box_pixels(region: tuple[float, float, float, float], height: int, width: int) -> tuple[int, int, int, int]:
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


def _probabilities(model, pixels: list[np.ndarray], targets: list[int]) -> np.ndarray:
    """Each photo's (network-size RGB pixels) probability of its target. Through the
    batched engine's compiled calls: on this machine they ran a photo in 42 ms where a
    forward-only pass of any batch size took 77-80 ms (EfficientNet-Lite0, 32 photos),
    and the map they also make costs next to nothing."""
    images = [Image.fromarray(np.squeeze(p.astype(np.uint8), axis=-1) if p.shape[2] == 1 else p.astype(np.uint8))
              for p in pixels]
    explained = explain_batch(model, images, [[int(t)] for t in targets])
    return np.asarray([many[0].probability for many in explained], np.float64)


def reliance_test(model, images: list[Image.Image], targets: list[int], region: Region, before=None,
                  baseline: str = "blur") -> tuple[float, float, float, float]:
    """(before, after, reliance, random_reliance): the mean probability of each photo's
    target class as it is and with ``region`` replaced by ``baseline``; reliance =
    before - after; random_reliance = the mean drop for one box of the same size
    elsewhere per photo. ``before``: the photos' probabilities when already known (the
    explanations'), else computed."""
    height, width = model.input_size
    inputs, kept_targets = [], []
    others = random_boxes(region, len(images))
    for image, target, other in zip(images, targets, others):
        pixels = network_pixels(model, image)
        blurred = baseline_pixels(pixels, baseline)
        edits = [pixels] if before is None else []
        for box in (region.box, other):
            r0, c0, r1, c1 = _box_pixels(box, height, width)
            edited = pixels.copy()
            edited[r0:r1, c0:c1] = blurred[r0:r1, c0:c1]
            edits.append(edited)
        inputs.extend(edits)
        kept_targets.extend([target] * len(edits))
    p = _probabilities(model, inputs, kept_targets).reshape(len(images), -1)
    if before is None:
        original, p = p[:, 0], p[:, 1:]
    else:
        original = np.asarray(before, np.float64)
    after, elsewhere = p[:, 0], p[:, 1]
    return float(original.mean()), float(after.mean()), float((original - after).mean()), \
        float((original - elsewhere).mean())


def sameness_of(looks: np.ndarray, region: tuple[float, float, float, float]) -> tuple[float, float]:
    """(sameness, variety) of members' looks (n, s, s, 3): variety is the mean per-pixel
    standard deviation across the photos outside the region (do the photos differ?);
    sameness = 1 - (that deviation inside the region) / variety, in 0..1 (1: the region
    looks the same in every photo, 0: it varies as much as the rest)."""
    side = looks.shape[1]
    r0, c0, r1, c1 = _box_pixels(region, side, side)
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


def _off_object(rows: list[_Row], region) -> float | None:
    shares = []
    for row in rows:
        if row.mask is None:
            continue
        height, width = row.mask.shape
        r0, c0, r1, c1 = _box_pixels(region, height, width)
        box = row.mask[r0:r1, c0:c1]
        if box.size:
            shares.append(1.0 - float(box.mean()))
    return float(np.mean(shares)) if shares else None


@dataclass(frozen=True)
class _Verdict:
    flagged: bool
    reason: str
    suspicion: float


def verdict(label: str, members: int, count: int, area: float, place: str, reliance, random_reliance, before, after,
            sameness, variety, off_object) -> _Verdict:
    """The flag rule of the module's docstring, and its sentence."""
    start = f"In {members} of {count} '{label}' photos the map sits"
    if members < MIN_MEMBERS:
        return _Verdict(False, f"{start} at the {place}: too few photos to call it a pattern.", 0.0)
    if area > SMALL_AREA:
        return _Verdict(False, f"{start} on {area:.0%} of the photo around the {place}: not a small patch"
                               + ("." if reliance is None else f" (removing it changes '{label}' by {_two(reliance)}, "
                                                              f"a patch of that size elsewhere by "
                                                              f"{_two(random_reliance)})."), 0.0)
    if reliance is None:
        return _Verdict(False, f"{start} on a small patch at the {place}; without the photos, whether the score "
                               "depends on it was not tested.", 0.0)
    gap = reliance - random_reliance
    evidence = off_object if off_object is not None else (sameness or 0.0)
    suspicion = max(0.0, gap) * (1.0 - area) * evidence
    if variety < VARIETY:
        return _Verdict(False, f"{start} on the same small patch at the {place}, but these photos look alike, so "
                               "alike maps are no surprise.", suspicion)
    if gap < RELIANCE_GAP or reliance < RELIANCE_RATIO * max(random_reliance, 0.0):
        return _Verdict(False, f"{start} on the same small patch at the {place}, but removing it changes '{label}' "
                               f"by {_two(reliance)}, not far more than a patch of the same size elsewhere "
                               f"({_two(random_reliance)}).", suspicion)
    change = (f"removing that patch lowers '{label}' from {_two(before)} to {_two(after)}; a patch of the same size "
              f"elsewhere changes it by {_two(random_reliance)}")
    if off_object is not None:
        if off_object < OFF_OBJECT:
            return _Verdict(False, f"{start} on the object ({1 - off_object:.0%} of the patch at the {place} is "
                                   f"object), and {change}.", suspicion)
        return _Verdict(True, f"{start} on the same small patch at the {place}, off the object, and {change}.",
                        suspicion)
    if sameness < SAMENESS:
        return _Verdict(False, f"{start} on a patch at the {place} that differs from photo to photo, like an object "
                               f"placed there, and {change}.", suspicion)
    return _Verdict(True, f"{start} on the same small patch at the {place}, and {change}.", suspicion)


def _class_result(model, label: str, rows: list[_Row], members_of: list[int], have_masks: bool,
                  stop) -> tuple[AuditClass, dict[int, tuple[int | None, bool, tuple | None]]]:
    """SpRAy over one class's maps, each cluster's reliance test and verdict."""
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
        reliance = random_reliance = before = after = None
        n_tested = 0
        # The reliance test only where a shortcut is possible (a small region, enough photos),
        # on at most TESTED members, two passes each (the photo's own probability is its
        # explanation's): it is the audit's costly part, and a large region is not a shortcut
        # whatever it gives (run on every cluster, it took the audit of 128 photos to 0.34x).
        if model is not None and region.area <= SMALL_AREA and len(indices) >= MIN_MEMBERS:
            images, targets, known = [], [], []
            for r in tested:
                try:
                    images.append(r.entry.read())
                except ValueError:
                    continue
                targets.append(int(r.target))
                known.append(r.probability)
            if images:
                given = None if any(k is None for k in known) else known
                before, after, reliance, random_reliance = reliance_test(model, images, targets, region, given)
                n_tested = len(images)
                if looks is None:  # a Parquet source: the photos were read only now
                    looks = np.stack([_look(image) for image in images])
                    sameness, variety = sameness_of(looks, box) if len(looks) > 1 else (None, 0.0)
                for r, image in zip(tested, images):
                    if r.thumbnail is None:
                        r.thumbnail, r.size = _thumbnail(image), image.size
        off = _off_object(member_rows, box) if have_masks else None
        judged = verdict(label, len(indices), count, region.area, _place(box), reliance, random_reliance, before,
                         after, sameness, variety, off)
        clusters.append(AuditCluster(
            label=label, number=number, members=[rows[i].entry.path for i in indices], indices=indices,
            mean_map=found.mean_map, region=box, area=region.area, consistency=found.consistency,
            reliance=reliance, random_reliance=random_reliance, before=before, after=after, tested=n_tested,
            sameness=sameness, off_object=off, suspicion=judged.suspicion, flagged=judged.flagged,
            reason=judged.reason))
    if len(maps):
        from .spray import normalised

        mean_map = normalised(maps)[0].mean(axis=0)
    else:
        mean_map = np.zeros((1, 1), np.float32)
    truths = [r for r in in_class if r.entry.true_label is not None and r.predicted is not None]
    accuracy = float(np.mean([r.predicted == r.entry.true_label for r in truths])) if truths else None
    scores = [object_scores(r.map, r.mask) for r in in_class if r.mask is not None and r.map is not None]
    masses = [s[0] for s in scores if s[0] is not None]
    hits = [s[1] for s in scores if s[1] is not None]
    return AuditClass(label=label, count=count, accuracy=accuracy, mean_map=mean_map,
                      mass_on_object=float(np.mean(masses)) if masses else None,
                      pointing_rate=float(np.mean(hits)) if hits else None, clusters=clusters,
                      eigenvalues=[float(v) for v in result.eigenvalues]), assignments


def audit(model, source, *, labels: dict | None = None, masks=None, layer=None, method: str = "gradcam",
          explain: str = "label", progress: Callable[[int, int], object] | None = None, stop=None) -> Audit:
    """Audit ``source`` for shortcuts: every photo's map, SpRAy clusters per class, and
    which clusters look like a "Clever Hans" strategy (see the module's docstring
    and docs/audit.md for the sources, masks and results)."""
    if explain not in ("label", "predicted"):
        raise ValueError('explain is "label" (the true class where known) or "predicted" (the top-1 class).')
    model_labels = None if model is None else model.labels
    read: Source = read_source(source, model_labels)
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
    classes, placed = [], {}
    for label, members_of in sorted(by_class.items(), key=lambda item: (-len(item[1]), item[0])):
        cls, assignments = _class_result(model, label, rows, members_of, bool(mask_of), stop)
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
    return Audit(photos=photos, classes=classes, model="" if model is None else model.name, layer=layer_name,
                 method=method_name, explain=explain, source=read.name, masks=bool(mask_of), problems=problems)
