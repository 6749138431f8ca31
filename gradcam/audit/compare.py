"""Two models audited on one dataset, side by side: ``gradcam.audit.compare``.

Before and after a fix, or v1 against v2: per class each model's accuracy, relevance
mass on the object (with masks), flagged findings and accuracy on counterfactual
photos, and the photos where the two models' maps differ most. Each model gets the
whole audit (its own layer, its own clusters and reliance tests), so the comparison
costs two audits and one cheap pass over the maps.

How far two maps differ: each is upsampled (bilinearly, negatives cut) to one
COMPARE_SIDE x COMPARE_SIDE grid, divided by its sum, and their difference is half
the sum of absolute differences (total variation): 0 when the evidence sits in the
same places in the same shares, 1 when the two maps do not overlap at all. A map
with no positive evidence differs by 1 from any map that has some.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..engine.baselines import map_at_input
from .counterfactuals import CounterfactualScore, CounterfactualSet, class_accuracy, counterfactual_sets, scores
from .dataset_audit import Audit, AuditPhoto, audit

COMPARE_SIDE = 32  # both maps are compared on this grid, whatever their layers' resolutions
DIFFERENT_PHOTOS = 8  # photos listed where the maps differ most


@dataclass(frozen=True)
class ClassSideBySide:
    label: str
    count: int
    accuracy: tuple[float | None, float | None]
    mass_on_object: tuple[float | None, float | None]
    flagged: tuple[int, int]  # findings in each audit: flagged clusters, plus one when the background swap flagged it
    counterfactual: tuple[float | None, float | None]  # accuracy on the counterfactual photos of this class


@dataclass(frozen=True)
class MapDifference:
    path: str
    label: str | None  # the true label where known, else the first model's explained class
    difference: float  # 0..1, see the module's docstring
    first: AuditPhoto = field(repr=False)
    second: AuditPhoto = field(repr=False)


@dataclass(frozen=True)
class Comparison:
    first: Audit
    second: Audit
    names: tuple[str, str]
    classes: list[ClassSideBySide]
    differences: list[MapDifference]  # most different first, at most DIFFERENT_PHOTOS
    mean_difference: float | None
    counterfactual: list[tuple[CounterfactualScore, CounterfactualScore]]  # per set: (first, second)

    def headline(self) -> str:
        """One sentence: each model's accuracy and findings, and the counterfactual photos' answers."""
        def side(name, found: Audit):
            known = [p.correct for p in found.photos if p.correct is not None]
            accuracy = f"{np.mean(known):.0%} right" if known else "accuracy unknown"
            flagged, classes = len(found.flagged), len(found.flagged_classes)
            text = f"{name}: {accuracy}, {flagged} cluster{'s' if flagged != 1 else ''} flagged"
            if classes:
                text += (f", {classes} class{'es' if classes != 1 else ''} following "
                         f"{'their' if classes != 1 else 'its'} background")
            return text

        text = f"{side(self.names[0], self.first)}; {side(self.names[1], self.second)}"
        for a, b in self.counterfactual:
            text += f"; {a.name}: {a.right} against {b.right} of {a.total} right"
        return text + "."

    def to_dict(self) -> dict:
        def number(value):
            return None if value is None else round(float(value), 6)

        return {
            "names": list(self.names), "headline": self.headline(),
            "classes": [{"label": c.label, "count": c.count, "accuracy": [number(v) for v in c.accuracy],
                         "mass_on_object": [number(v) for v in c.mass_on_object], "flagged": list(c.flagged),
                         "counterfactual": [number(v) for v in c.counterfactual]} for c in self.classes],
            "counterfactual": [{"name": a.name, "total": a.total, "right": [a.right, b.right]}
                               for a, b in self.counterfactual],
            "differences": [{"path": d.path, "label": d.label, "difference": number(d.difference),
                             "first": d.first.predicted, "second": d.second.predicted} for d in self.differences],
            "mean_difference": number(self.mean_difference),
            "first": self.first.to_dict(), "second": self.second.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def map_difference(first: np.ndarray | None, second: np.ndarray | None) -> float:
    """Half the L1 distance between the two maps as shares of their positive mass on one grid."""
    def shares(raw):
        if raw is None:
            return None
        grid = np.clip(map_at_input(np.nan_to_num(np.asarray(raw, np.float32)), COMPARE_SIDE, COMPARE_SIDE), 0, None)
        total = float(grid.sum())
        return grid / total if total > 0 else None

    a, b = shares(first), shares(second)
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return 1.0
    return float(0.5 * np.abs(a - b).sum())


def side_by_side(first: Audit, second: Audit, counterfactuals: Sequence[CounterfactualSet] = (), *,
                 first_model=None, second_model=None, names: tuple[str, str] | None = None) -> Comparison:
    """The comparison of two audits of the same photos (the counterfactual sets, if any,
    answered by both models)."""
    names = names or (first.model or "first model", second.model or "second model")
    if names[0] == names[1]:
        names = (names[0] + " (1)", names[1] + " (2)")
    found_a = scores(first_model, counterfactuals) if first_model is not None else []
    found_b = scores(second_model, counterfactuals) if second_model is not None else []
    by_label_a = {c.label: c for c in first.classes}
    by_label_b = {c.label: c for c in second.classes}
    # Findings per class: its flagged clusters, and the class itself when the background swap flagged it.
    flagged_a = [c.label for c in first.flagged] + [cls.label for cls in first.flagged_classes]
    flagged_b = [c.label for c in second.flagged] + [cls.label for cls in second.flagged_classes]
    classes = []
    for label in list(by_label_a) + [k for k in by_label_b if k not in by_label_a]:
        a, b = by_label_a.get(label), by_label_b.get(label)
        classes.append(ClassSideBySide(
            label=label, count=max(a.count if a else 0, b.count if b else 0),
            accuracy=(a.accuracy if a else None, b.accuracy if b else None),
            mass_on_object=(a.mass_on_object if a else None, b.mass_on_object if b else None),
            flagged=(flagged_a.count(label), flagged_b.count(label)),
            counterfactual=(class_accuracy(found_a, label), class_accuracy(found_b, label))))
    seconds = {p.path: p for p in second.photos}
    differences = []
    for photo in first.photos:
        other = seconds.get(photo.path)
        if other is None or photo.error or other.error:
            continue
        differences.append(MapDifference(photo.path, photo.true_label or photo.label,
                                         map_difference(photo.map, other.map), photo, other))
    mean = float(np.mean([d.difference for d in differences])) if differences else None
    differences.sort(key=lambda d: -d.difference)
    return Comparison(first=first, second=second, names=names, classes=classes,
                      differences=differences[:DIFFERENT_PHOTOS], mean_difference=mean,
                      counterfactual=list(zip(found_a, found_b)))


def compare_models(first_model, second_model, source, *, counterfactuals: Sequence[CounterfactualSet] | None = None,
            masks=None,
            first_layer=None, second_layer=None, method: str = "gradcam", explain: str = "label",
            progress: Callable[[int, int], object] | None = None, stop=None) -> Comparison:
    """Audit ``source`` with both models and set the results side by side. Each model
    is audited at its own layer (default: its default layer); ``progress`` counts the
    photos of both audits. ``counterfactuals``: the edited photos both models answer;
    None makes them from both audits' findings (``counterfactual_sets``)."""
    def half(offset):
        if progress is None:
            return None
        return lambda done, total: progress(offset + done, 2 * total)

    first = audit(first_model, source, masks=masks, layer=first_layer, method=method, explain=explain,
                  progress=half(0), stop=stop)
    done = len(first.photos)
    second = audit(second_model, source, masks=masks, layer=second_layer, method=method, explain=explain,
                   progress=half(done), stop=stop)
    if counterfactuals is None:
        counterfactuals = counterfactual_sets(first_model, first, source, masks=masks)
        named = {c.name for c in counterfactuals}
        counterfactuals += [c for c in counterfactual_sets(second_model, second, source, masks=masks)
                            if c.name not in named]
    return side_by_side(first, second, counterfactuals, first_model=first_model, second_model=second_model)


def before_and_after(correction, audited: Audit, source, *, counterfactuals: Sequence[CounterfactualSet] = (),
                     masks=None, progress: Callable[[int, int], object] | None = None, stop=None) -> Comparison:
    """The proof of a fix: the corrected model (``correction.model``, see correction.py)
    audited again on the same photos, at the inserted layer (what the rest of the network
    now sees), with the original's method and classes, set beside the original audit;
    the counterfactual photos answered by both."""
    again = audit(correction.model, source, masks=masks, layer=correction.projection_layer, method=audited.method,
                  explain=audited.explain, progress=progress, stop=stop)
    return side_by_side(audited, again, counterfactuals, first_model=correction.original,
                        second_model=correction.model)
