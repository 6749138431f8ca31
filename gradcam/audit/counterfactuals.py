"""Accuracy on counterfactual photos: the photos a shortcut would get wrong.

A counterfactual set is photos edited so that the cue and the class disagree (the
tag removed from the class's photos, the tag transplanted into other classes'
photos, the objects put on other classes' backgrounds), each with the answer a
model that ignores the cue gives: the photo's own class. A model that relies on
the cue gets them wrong; after a good fix it gets them right. The photos are made
by the audit's evidence tests; this module only counts answers, for one model or
for two side by side (before and after the fix, or v1 against v2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from PIL import Image

from ..engine.batched import explain_batch


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
    """The model's top-1 class for each photo (the batched engine's compiled calls)."""
    if not photos:
        return []
    return [many[0].predictions[0].label for many in explain_batch(model, list(photos))]


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
