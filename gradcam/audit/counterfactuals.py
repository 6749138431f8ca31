"""Accuracy on counterfactual photos: the photos a shortcut would get wrong.

A counterfactual set is photos edited so that the cue and the class disagree (the
patch removed from the class's photos, the patch transplanted into other classes'
photos, the objects put on other classes' backgrounds), each with the answer a
model that ignores the cue gives: the photo's own class. A model that relies on
the cue gets them wrong; after a good fix it gets them right.

The edits are the audit's evidence tests' own (``evidence.py``: the box at the
network's input size, the other classes' pixels as the infill, ``swapped`` for
backgrounds); ``counterfactual_sets`` makes them for an audit's findings, and the
fix (``correction.py``) takes its clean photos from the same builders when a class
has none without the cue. ``score`` counts answers, for one model or for two side
by side (before and after the fix, or v1 against v2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..engine.baselines import baseline_pixels, network_pixels
from .evidence import answers, box_pixels, network_mask, swapped
from .sources import mask_at, read_masks, read_source, relative_key

PER_SET = 16  # photos per side of a counterfactual set (each is one explained photo per model)


@dataclass(frozen=True)
class CounterfactualSet:
    """Edited photos and the answer each should get (its own class, not the cue's)."""

    name: str  # what was done, e.g. "tag removed", "tag transplanted", "backgrounds swapped"
    photos: list[Image.Image] = field(repr=False)
    expected: list[str]

    def __post_init__(self):
        if len(self.photos) != len(self.expected):
            raise ValueError(f'The set "{self.name}" has {len(self.photos)} photos but {len(self.expected)} answers.')


@dataclass(frozen=True)
class CounterfactualScore:
    """One model's answers on one set: how many match, per expected class too."""

    name: str
    right: int
    total: int
    answers: list[str]  # the model's top-1 class per photo
    per_class: dict[str, tuple[int, int]]  # expected class -> (right, total)

    @property
    def accuracy(self) -> float | None:
        return self.right / self.total if self.total else None


def top_answers(model, photos: Sequence[Image.Image]) -> list[str]:
    """The model's top-1 class for each photo (a forward pass, as the evidence tests answer)."""
    return answers(model, [network_pixels(model, photo) for photo in photos], 0)[1]


def score(model, counterfactual: CounterfactualSet) -> CounterfactualScore:
    """How many of the set's photos ``model`` answers with the expected class."""
    answers = top_answers(model, counterfactual.photos)
    per_class: dict[str, list[int]] = {}
    for answer, expected in zip(answers, counterfactual.expected):
        tally = per_class.setdefault(expected, [0, 0])
        tally[0] += answer == expected
        tally[1] += 1
    right = sum(a == e for a, e in zip(answers, counterfactual.expected))
    return CounterfactualScore(counterfactual.name, right, len(answers), answers,
                               {label: (r, t) for label, (r, t) in per_class.items()})


def scores(model, sets: Sequence[CounterfactualSet]) -> list[CounterfactualScore]:
    return [score(model, s) for s in sets]


def class_accuracy(found: Sequence[CounterfactualScore], label: str) -> float | None:
    """One class's accuracy over every set (photos whose expected answer is ``label``)."""
    right = sum(s.per_class.get(label, (0, 0))[0] for s in found)
    total = sum(s.per_class.get(label, (0, 0))[1] for s in found)
    return right / total if total else None


# --- the edits (at the network's input size, like the evidence tests') ----------------


def _photo(pixels: np.ndarray) -> Image.Image:
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return Image.fromarray(np.squeeze(pixels, axis=-1) if pixels.shape[2] == 1 else pixels)


def patch_replaced(model, photos: Sequence[Image.Image], donors: Sequence[Image.Image],
                   region: tuple[float, float, float, float]) -> list[Image.Image]:
    """Each photo with ``region`` (x0, y0, x1, y1 as fractions) taken from a donor (in
    turn): the patch removed when the donors are other classes' photos (what the model
    finds normal there), transplanted when the donors carry the cue."""
    height, width = model.input_size
    r0, c0, r1, c1 = box_pixels(region, height, width)
    donor_pixels = [network_pixels(model, d) for d in donors]
    out = []
    for i, photo in enumerate(photos):
        pixels = network_pixels(model, photo)
        pixels[r0:r1, c0:c1] = donor_pixels[i % len(donor_pixels)][r0:r1, c0:c1]
        out.append(_photo(pixels))
    return out


def region_filled(model, photos: Sequence[Image.Image], region: tuple[float, float, float, float],
                  baseline: str = "mean") -> list[Image.Image]:
    """Each photo with ``region`` filled by one of the engine's baselines (blur, mean, black)."""
    height, width = model.input_size
    r0, c0, r1, c1 = box_pixels(region, height, width)
    out = []
    for photo in photos:
        pixels = network_pixels(model, photo)
        pixels[r0:r1, c0:c1] = baseline_pixels(pixels, baseline)[r0:r1, c0:c1]
        out.append(_photo(pixels))
    return out


def objects_moved(model, objects: Sequence[tuple[Image.Image, np.ndarray]],
                  backgrounds: Sequence[tuple[Image.Image, np.ndarray]]) -> list[Image.Image]:
    """Each photo's object (cut out by its mask, at the photo's size) on a background of
    ``backgrounds`` in turn (that photo's own object removed first: ``evidence.swapped``)."""
    def prepared(items):
        return [(network_pixels(model, image), network_mask(model, mask)) for image, mask in items]

    mine, theirs = prepared(objects), prepared(backgrounds)
    return [_photo(swapped(*mine[i], *theirs[i % len(theirs)])) for i in range(len(mine))]


# --- the sets, from an audit's findings -----------------------------------------------


def expected_answer(photo) -> str | None:
    """What a model that ignores the cue answers: the photo's true class, else what the audited model said."""
    return photo.true_label or photo.predicted


def photo_readers(source, labels) -> dict:
    """path -> a function that reads that photo again, for every photo of ``source``."""
    return {entry.path: entry.read for entry in read_source(source, labels).entries}


def masks_of(masks, readers: dict) -> Callable[[str], tuple[Image.Image, np.ndarray] | None]:
    """A function giving (photo, its mask at the photo's size) by path, or None without a usable mask."""
    mask_of, _ = read_masks(masks) if masks is not None else ({}, [])

    def with_mask(path: str):
        found = mask_of.get(relative_key(path))
        if found is None or path not in readers:
            return None
        image = readers[path]()
        try:
            return image, mask_at(found() if callable(found) else found, image.size)
        except ValueError:
            return None

    return with_mask


def counterfactual_sets(model, audit, source, masks=None) -> list[CounterfactualSet]:
    """The counterfactual photos of ``audit``'s findings, edited at ``model``'s input size:

    - per flagged cluster, "'<label>' photos, patch removed" (members with the region
      taken from other classes' photos, expecting the class) and "other photos, '<label>'
      patch pasted in" (other classes' photos with a member's region, expecting their own);
    - per class the background swap flagged (masks), "'<label>' backgrounds swapped":
      its objects on other classes' backgrounds (expecting the class) and other classes'
      objects on its backgrounds (expecting theirs).

    At most PER_SET photos per side; ``source`` and ``masks`` are what was audited."""
    readers = photo_readers(source, model.labels)
    usable = [p for p in audit.photos if not p.error and p.path in readers and expected_answer(p) is not None]
    sets: list[CounterfactualSet] = []
    for cluster in audit.flagged:
        members = [path for path in cluster.members if path in readers][:PER_SET]
        others = [p for p in usable if expected_answer(p) != cluster.label][:PER_SET]
        if not members or not others:
            continue
        member_photos = [readers[path]() for path in members]
        other_photos = [readers[p.path]() for p in others]
        sets.append(CounterfactualSet(f"'{cluster.label}' photos, patch removed",
                                      patch_replaced(model, member_photos, other_photos, cluster.region),
                                      [cluster.label] * len(members)))
        sets.append(CounterfactualSet(f"other photos, '{cluster.label}' patch pasted in",
                                      patch_replaced(model, other_photos, member_photos, cluster.region),
                                      [expected_answer(p) for p in others]))
    with_mask = masks_of(masks, readers)
    for cls in audit.flagged_classes:
        own = [(p, with_mask(p.path)) for p in usable if expected_answer(p) == cls.label][:PER_SET]
        others = [(p, with_mask(p.path)) for p in usable if expected_answer(p) != cls.label][:PER_SET]
        own, others = [(p, m) for p, m in own if m is not None], [(p, m) for p, m in others if m is not None]
        if not own or not others:
            continue
        photos = objects_moved(model, [m for _, m in own], [m for _, m in others]) + \
            objects_moved(model, [m for _, m in others], [m for _, m in own])
        expected = [cls.label] * len(own) + [expected_answer(p) for p, _ in others]
        sets.append(CounterfactualSet(f"'{cls.label}' backgrounds swapped", photos, expected))
    return sets
