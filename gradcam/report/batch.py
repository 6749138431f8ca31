"""Explaining many photos: one photo explained into a small record, the contact
sheet's filters, the CSV and the overlays archive. Reading the uploads and
archives is ``gradcam.intake.archives``'s job.

This lives outside the pages so they stay widgets-only and the logic is testable
without Streamlit; it is the batched engine's and the distributed code's neighbour.
This module never imports Streamlit.
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from ..engine.batched import explain_batch
from ..engine.cam import Prediction, heatmap
from ..engine.overlay import overlay
from ..errors import InvalidImageError
from ..intake.digest import sha256
from ..intake.images import DISPLAY_MAX_SIDE
from ..intake.sandbox import load_image_safely
from .content import ReportItem, jpeg_bytes, shrunk
from .rows import ROW_COLUMNS, error_row, result_row, rows_csv


# --- batches: one photo into a small record ---------------------------------------------

THUMBNAIL_SIDE = 320  # contact-sheet and batch-report thumbnails


def _display_image(data: bytes, max_side: int) -> Image.Image:
    # Batch uploads are untrusted: decoded in the sandbox and downscaled there, so a 187 MB BMP
    # from a 0.2 MB zip entry comes back at display size, not at full size.
    return load_image_safely(data, max_side=max_side)


FAITHFULNESS_STEPS = 20  # per photo in a batch: a coarser curve than the page's 50 steps, and one random map
FAITHFULNESS_COLUMNS = ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc",
                        "worse_than_random")  # "yes" when insertion minus deletion AUC is below the random map's


def explain_records(model, datas: Sequence[bytes], *, layer=None, method: str = "gradcam", opacity: float = 0.4,
                    colormap: str = "jet", thumbnail_side: int = THUMBNAIL_SIDE,
                    max_side: int = DISPLAY_MAX_SIDE, faithfulness: bool = False, **options) -> list[dict]:
    """Explain each photo's top-1 class through the batched engine (one compiled call
    for the lot) and keep only what a batch needs: thumbnails as JPEG bytes, the top-5
    and the layer-resolution map (a few hundred bytes, from which a full-size overlay
    can be redrawn without running the model). Never the photo or a full-size
    heatmap, so hundreds of records fit in a session.

    ``faithfulness=True`` adds each map's deletion and insertion AUC next to a
    random map's (FAITHFULNESS_STEPS steps; about 120 more forward passes per photo).

    ``options`` go to the engine as they are (e.g. ``max_channels`` for Score-CAM).

    Bytes that are not a usable photo give ``{"error": sentence}`` in their place.
    """
    if faithfulness:  # refused before any photo is explained, not after the lot
        from ..trust.faithfulness import check_cost

        check_cost(model)
    records: list[dict] = [{} for _ in datas]
    images = {}
    for i, data in enumerate(datas):
        try:
            images[i] = _display_image(data, max_side)
        except ValueError as error:  # InvalidImageError: one sentence, the others go on
            records[i] = {"error": str(error)}
    explained = explain_batch(model, list(images.values()), layer=layer, method=method, **options)
    for (i, image), (explanation,) in zip(images.items(), explained):
        thumb = shrunk(image, thumbnail_side)
        heat = heatmap(explanation.raw, thumb.size, explanation.method)
        records[i] = {
            "label": explanation.label,
            "target": explanation.target,
            "probability": explanation.probability,
            "top5": [{"index": p.index, "label": p.label, "probability": p.probability, "logit": p.logit}
                     for p in explanation.predictions],
            "layer": explanation.layer,
            "method": method,
            "raw": explanation.raw.astype(np.float32),
            "no_positive_evidence": explanation.no_positive_evidence,
            "size": image.size,
            "photo_jpeg": jpeg_bytes(thumb),
            "overlay_jpeg": jpeg_bytes(overlay(thumb, heat, opacity, colormap)),
            "faithfulness": _scores(model, image, explanation) if faithfulness else None,
        }
    return records


def shared_concepts_of(model, records: Sequence[dict], n: int, *, layer=None, per_concept: int = 6):
    """The concepts the explained photos share (``gradcam.concept_strips``), found on the
    records' own thumbnails (THUMBNAIL_SIDE px, more than the network's input): no upload
    is read or decoded again, so the pixel budget and the memory stay the batch's. At most
    ``concepts.MAX_PHOTOS`` records; records with an error are skipped (each strip's
    ``photos`` are indices into ``records`` as given)."""
    from ..concepts import MAX_PHOTOS, concept_strips

    usable = [i for i, r in enumerate(records) if not r.get("error") and r.get("photo_jpeg")]
    if not usable:
        raise ValueError("No photo of this set was explained, so there is nothing to find concepts in.")
    if len(usable) > MAX_PHOTOS:
        raise ValueError(f"Concepts are found over at most {MAX_PHOTOS} photos at once; this selection has "
                         f"{len(usable)}: pick fewer classes or a higher confidence.")
    photos = [Image.open(io.BytesIO(records[i]["photo_jpeg"])).convert("RGB") for i in usable]
    strips = concept_strips(model, photos, n, layer, per_concept=per_concept)
    return [dataclasses.replace(strip, photos=[usable[i] for i in strip.photos]) for strip in strips]


def _scores(model, image, explanation) -> dict:
    """Deletion and insertion AUC next to a random map's: gradcam.Faithfulness.numbers()."""
    from ..trust.faithfulness import faithfulness as score

    return score(model, image, explanation, steps=FAITHFULNESS_STEPS, road=False, seeds=1).numbers()


def explain_for_batch(model, data: bytes, **options) -> dict:
    """One photo's record (see ``explain_records``); raises ``InvalidImageError`` for
    bytes that are not a usable photo."""
    record = explain_records(model, [data], **options)[0]
    if "error" in record:
        raise InvalidImageError(record["error"])
    return record


def select(records: Sequence[dict], *, classes: Iterable[str] = (), min_probability: float = 0.0,
           order: str = "confidence, high to low") -> list[dict]:
    """The explained records a contact sheet shows: filtered by top-1 class (none
    given: all) and minimum probability, then sorted."""
    wanted = set(classes)
    shown = [r for r in records if not r.get("error") and (not wanted or r["label"] in wanted)
             and r["probability"] >= min_probability]
    if order == "file name":
        return sorted(shown, key=lambda r: r["file"].casefold())
    if order in FAITHFULNESS_ORDERS:  # photos without scores go last either way
        scored = [r for r in shown if faithfulness_margin(r) is not None]
        return sorted(scored, key=lambda r: (faithfulness_margin(r), r["file"].casefold()),
                      reverse=order == FAITHFULNESS_ORDERS[1]) + [r for r in shown if r not in scored]
    return sorted(shown, key=lambda r: (r["probability"], r["file"].casefold()),
                  reverse=order == "confidence, high to low")


SORT_ORDERS = ("confidence, high to low", "confidence, low to high", "file name")
# With deletion and insertion AUC: by insertion AUC minus deletion AUC (the Trust page's ranking score).
FAITHFULNESS_ORDERS = ("faithfulness, worst first", "faithfulness, best first")


def faithfulness_margin(record: dict) -> float | None:
    """How far the map's insertion AUC minus deletion AUC lies above a random map's (below 0: worse than
    random), or None when the record was not scored."""
    numbers = record.get("faithfulness")
    if not numbers:
        return None
    mine, random = numbers["map"], numbers["random"]
    return (mine["insertion_auc"] - mine["deletion_auc"]) - (random["insertion_auc"] - random["deletion_auc"])


def worse_than_random(record: dict) -> bool | None:
    """Whether the map scored below a random map (insertion minus deletion AUC), None when not scored."""
    margin = faithfulness_margin(record)
    return None if margin is None else margin < 0


def auc_caption(record: dict) -> str:
    """A contact sheet's line for a scored photo ("" when not scored): both AUCs next to a random map's, and a
    flag when the map did worse than that random map."""
    if not record.get("faithfulness"):
        return ""
    mine, random = record["faithfulness"]["map"], record["faithfulness"]["random"]
    flag = "  \n**⚠ worse than a random map**" if worse_than_random(record) else ""
    return (f"deletion AUC {mine['deletion_auc']:.2f} (random {random['deletion_auc']:.2f}) · "
            f"insertion {mine['insertion_auc']:.2f} (random {random['insertion_auc']:.2f}){flag}")

CSV_COLUMNS = ROW_COLUMNS  # the CLI's summary.csv and the Ray dataset have the same columns (rows.py)


def record_row(record: dict) -> dict:
    """A batch record (see ``explain_records``; ``file`` and ``sha256`` added by the caller)
    as the shared row."""
    if record.get("error"):
        return error_row(record["error"], file=record["file"], sha256=record.get("sha256"))
    return result_row(file=record["file"], sha256=record.get("sha256"), layer=record["layer"],
                      method=record["method"], target=record.get("target", record["top5"][0]["index"]),
                      target_label=record["label"], target_probability=record["probability"],
                      predictions=[(p["label"], p["probability"]) for p in record["top5"]])


def predictions_csv(records: Sequence[dict]) -> str:
    """One row per file (explained or not), in the shared row format (rows.py); and the
    deletion / insertion AUCs with a random map's when they were computed."""
    scored = any(record.get("faithfulness") for record in records)
    rows = []
    for record in records:
        row = record_row(record)
        if scored and record.get("faithfulness"):
            numbers = record["faithfulness"]
            row.update(deletion_auc=numbers["map"]["deletion_auc"], insertion_auc=numbers["map"]["insertion_auc"],
                       random_deletion_auc=numbers["random"]["deletion_auc"],
                       random_insertion_auc=numbers["random"]["insertion_auc"],
                       worse_than_random="yes" if worse_than_random(record) else "no")
        rows.append(row)
    return rows_csv(rows, (*CSV_COLUMNS, *FAITHFULNESS_COLUMNS) if scored else CSV_COLUMNS)


def _archive_name(name: str, taken: set[str]) -> str:
    """A flat, safe name inside the overlays archive (no folders, no "..")."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__")).strip("._") or "image"
    base = base.rsplit(".", 1)[0] if "." in base else base
    candidate, n = f"{base}-gradcam.jpg", 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}-gradcam.jpg"
    taken.add(candidate)
    return candidate


def overlays_zip(records: Sequence[dict], originals: dict[str, Callable[[], bytes]] | None = None, *,
                 opacity: float = 0.4, colormap: str = "jet", max_side: int = DISPLAY_MAX_SIDE) -> bytes:
    """A .zip (built in memory) of every explained photo's overlay, plus predictions.csv.

    Each overlay is redrawn at display size (at most ``max_side`` px, JPEG) from the
    original upload in ``originals`` (shown name -> bytes) and the record's stored
    layer-resolution map, so the model does not run again. A photo whose upload is
    gone (or changed) gets its thumbnail instead.
    """
    originals = originals or {}
    buffer = io.BytesIO()
    taken: set[str] = set()
    # JPEGs do not compress further: store them, deflate only the CSV.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for record in records:
            if record.get("error"):
                continue
            content = record["overlay_jpeg"]
            read = originals.get(record["file"])
            if read is not None:
                try:
                    data = read()
                    if sha256(data) == record["sha256"]:
                        image = _display_image(data, max_side)
                        heat = heatmap(record["raw"], image.size, record["method"])
                        content = jpeg_bytes(overlay(image, heat, opacity, colormap), quality=90)
                except ValueError:
                    pass  # keep the thumbnail: it was explained once, it still has an overlay
            archive.writestr(_archive_name(record["file"], taken), content)
        archive.writestr("predictions.csv", predictions_csv(records), compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def batch_report_items(records: Sequence[dict], *, opacity: float = 0.4, colormap: str = "jet") -> list[ReportItem]:
    """Report items from batch records, with their thumbnails as the images."""
    items = []
    for record in records:
        if record.get("error"):
            continue
        items.append(ReportItem(
            image=Image.open(io.BytesIO(record["photo_jpeg"])),
            image_name=record["file"], image_sha256=record["sha256"],
            overlay=Image.open(io.BytesIO(record["overlay_jpeg"])),
            target=record["target"], label=record["label"], probability=record["probability"],
            predictions=tuple(Prediction(**p) for p in record["top5"]), layer=record["layer"],
            layer_resolution=tuple(record["raw"].shape), method=record["method"],
            no_positive_evidence=record["no_positive_evidence"], opacity=opacity, colormap=colormap,
            image_size=tuple(record["size"]), faithfulness=record.get("faithfulness"),
        ))
    return items
