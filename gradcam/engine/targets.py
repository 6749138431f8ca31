"""Which classes a pass explains: a class named by a person, or rows over the logits.

A target is a class index or a label (ImageNet names match loosely: any synonym,
any case, "_" for a space). The pipeline works on rows over the classes: one-hot
for "this class", other rows for contrastive or counterfactual maps.
"""

from __future__ import annotations

import numpy as np


def find_class(target: str, labels, synonyms=None) -> int:
    """The index of the class a person named: exact display name, then any synonym.

    Matching ignores case and treats "_" as a space, so Keras-style names such as
    "Egyptian_cat" work too.
    """

    def norm(s: str) -> str:
        return " ".join(s.replace("_", " ").split()).casefold()

    wanted = norm(target)
    for i, label in enumerate(labels):
        if norm(label) == wanted:
            return i
    for i, names in enumerate(synonyms or ()):
        if wanted in (norm(n) for n in names.split(",")) or norm(names) == wanted:
            return i
    raise ValueError(f'No class is called "{target}".')


def target_index(model, target) -> int:
    """A class index from an int or a label (ImageNet names match loosely)."""
    if isinstance(target, (int, np.integer)):
        if not 0 <= int(target) < len(model.labels):
            raise ValueError(f"Class {target} does not exist; the model has {len(model.labels)} classes.")
        return int(target)
    return find_class(str(target), model.labels, model.synonyms)


def target_rows(model, targets, top: int):
    """(rows over the classes, top): rows given, or the model's own ``top`` classes."""
    classes = len(model.labels)
    if targets is None:
        return np.zeros((0, classes), np.float32), max(1, min(int(top), classes))
    rows = np.asarray(targets, np.float32)
    if rows.ndim == 1:  # class indices: one-hot rows (not an eye(classes) matrix per call)
        indices = np.asarray(targets, int)
        rows = np.zeros((len(indices), classes), np.float32)
        rows[np.arange(len(indices)), indices] = 1.0
    return rows, 0
