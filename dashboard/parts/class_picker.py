"""The class pickers' options: every class for a model of ImageNet-1k's size, a search above it.

A select box sends every option to the browser on every rerun: for an ImageNet-21k model
(21,843 classes) that is ~0.3 MB and tens of milliseconds per picker and rerun, and for a
model of 100,000 classes (the most an own model may have) it is megabytes. Above
``SEARCH_ABOVE`` classes a picker offers the model's top-5, the class already chosen and
the first ``SHOWN_MATCHES`` classes whose name contains what the person typed in the
search box drawn above it.
"""

from __future__ import annotations

SEARCH_ABOVE = 1000  # classes: ImageNet-1k's pickers keep every class (the browser's own type-to-search)
SHOWN_MATCHES = 50


def needs_search(labels) -> bool:
    return len(labels) > SEARCH_ABOVE


def search(where, key: str, labels) -> str:
    """The search box above the picker ``key`` (only for a model with many classes): its text."""
    if not needs_search(labels):
        return ""
    return where.text_input(f"Search {len(labels):,} classes", key=f"{key}_search", max_chars=100,
                            placeholder="Type part of a class name",
                            help=f"The first {SHOWN_MATCHES} classes whose name contains this are offered below.")


def options(labels, first, current, query: str = "") -> list[int]:
    """The picker's class indices: ``first`` (the top-5), then every class; or, for a model with
    many classes, ``first``, ``current`` (the class already chosen) and the first matches of ``query``."""
    chosen = list(dict.fromkeys(int(i) for i in first))
    if not needs_search(labels):
        return chosen + [i for i in range(len(labels)) if i not in set(chosen)]
    if isinstance(current, int) and 0 <= current < len(labels) and current not in chosen:
        chosen.append(current)
    wanted = query.strip().casefold()
    if wanted:
        taken = set(chosen)
        for i, label in enumerate(labels):
            if wanted in label.casefold() and i not in taken:
                chosen.append(i)
                if len(chosen) - len(taken) >= SHOWN_MATCHES:
                    break
    return chosen
