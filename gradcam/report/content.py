"""What a report holds, in either format: one item per explained photo, and the
wording, facts and small pictures the HTML and the PDF report share.

Reports are for people who were not at the screen.

``report_html`` writes ONE self-contained HTML file: every image is a base64
``data:`` URI, the CSS is inline, there is no script and no external URL, so it
opens offline in any browser and can be mailed as it is. ``report_pdf`` gives
the same content as a PDF (matplotlib, one page per explanation after a summary).

Everything a user supplied (file names, class labels, the model's name) is data:
it is HTML-escaped here, and never parsed as mathtext in the PDF.

This module never imports Streamlit.
"""

from __future__ import annotations

import base64
import importlib.metadata
import io
import platform
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from ..engine.cam import METHODS, Explanation, Prediction
from ..engine.model import sha256_of_weights
from ..trust.faithfulness import MASKED_PHOTO_SCORES
from ..engine.overlay import colorize, overlay
from ..trust.metrics import METRICS

# Embedded photos are downscaled to this many pixels on their long side (JPEG):
# a 50-photo report stays a few megabytes instead of hundreds.
MAX_EMBEDDED_SIDE = 1024
JPEG_QUALITY = 85

# The same notes the dashboard gives, as plain sentences (our own text, not user data).
WHAT_IT_SHOWS = (
    "Grad-CAM shows where the chosen layer's feature maps raised the model's score for the "
    "explained class: each feature map is weighted by how much the class's score (before softmax) "
    "depends on it, and only the positive part of the weighted sum is drawn."
)
WHAT_IT_DOES_NOT_SHOW = (
    "It is a coarse map: it is computed on the chosen layer's own grid of cells (its layer resolution, "
    "given with each explanation) and smoothed up to the photo, so it cannot point at anything smaller "
    "than one cell; the soft edges are interpolation, not detail.",
    "It shows correlation inside the network, not causation: a highlighted region raised this class's "
    "score for this photo in this network; it does not prove that the region caused the decision, and a "
    "region that is not highlighted may still matter.",
    "At the last convolutional layer the map is class-discriminative (different classes light up "
    "different regions); earlier layers give sharper maps that respond to edges and textures of any class.",
    "Grad-CAM++ weighs positive gradients position by position; its maps usually spread over more of "
    "the photo, so they tell classes apart less sharply than Grad-CAM's.",
    "An empty map means there is no positive evidence for the class at that layer: nothing the layer "
    "sees raises the score. It does not mean the model ignored the photo.",
)


# --- what one explanation in a report holds -------------------------------------


@dataclass(frozen=True)
class ReportItem:
    """One explained photo: everything a report shows about it, nothing more.

    Deliberately flat (no full-size heatmap): a batch of hundreds of photos can
    keep its items as thumbnails and a few numbers.
    """

    image: Image.Image  # the photo as explained (downscaled when embedded)
    image_name: str
    image_sha256: str  # of the bytes as uploaded
    overlay: Image.Image  # the heatmap over the photo
    target: int
    label: str  # the explained class
    probability: float
    predictions: Sequence[Prediction]  # the model's top-5
    layer: str
    layer_resolution: tuple[int, int]  # (height, width) of the layer's grid
    method: str  # a key of gradcam.METHODS
    no_positive_evidence: bool = False
    opacity: float = 0.4
    colormap: str = "jet"
    image_size: tuple[int, int] | None = None  # (width, height) as explained, when ``image`` is a thumbnail
    faithfulness: dict | None = None  # gradcam.Faithfulness.numbers(): each score with its random baseline
    sanity: dict | None = None  # gradcam.SanityCheck.summary(), when the check was run
    token_grid: str | None = None  # a transformer's token layer: "14x14 tokens + 1 class token" (token_grid_of)
    # The evidence behind the numbers, as pictures both formats embed: (caption, image) of the deletion and
    # insertion curves (curves_picture) and of the sanity strip (sanity_picture), when computed.
    evidence: tuple = ()

    @property
    def explained_size(self) -> tuple[int, int]:
        return tuple(self.image_size or self.image.size)

    @classmethod
    def from_explanation(cls, image: Image.Image, image_name: str, image_sha256: str, explanation: Explanation,
                         overlay_image: Image.Image | None = None, *, opacity: float = 0.4,
                         colormap: str = "jet") -> ReportItem:
        """An item from ``gradcam.explain``'s result; the overlay is made when not given."""
        if overlay_image is None:
            overlay_image = overlay(image, explanation.heatmap, opacity, colormap)
        return cls(
            image=image, image_name=image_name, image_sha256=image_sha256, overlay=overlay_image,
            target=explanation.target, label=explanation.label, probability=explanation.probability,
            predictions=tuple(explanation.predictions), layer=explanation.layer,
            layer_resolution=tuple(explanation.raw.shape), method=explanation.method,
            no_positive_evidence=explanation.no_positive_evidence, opacity=opacity, colormap=colormap,
        )


# --- small shared pieces ----------------------------------------------------------


def token_grid_of(model, layer: str) -> str | None:
    """A token layer's patch grid as the report names it, or None for a feature map
    (or a layer-free method's "attention layers" / "input pixels")."""
    from ..engine.graph import target_layers

    for target in target_layers(model):
        if target.name == layer and target.grid is not None:
            return target.grid.tokens_text
    return None


def library_versions() -> dict[str, str]:
    """Versions of what computed the report, read from package metadata: nothing is
    imported (Streamlit in particular stays out of the engine)."""
    versions = {"python": platform.python_version()}
    distributions = {
        "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"),
        "keras": ("keras",),
        "numpy": ("numpy",),
        "pillow": ("pillow",),
        "matplotlib": ("matplotlib",),
        "streamlit": ("streamlit",),
    }
    for name, candidates in distributions.items():
        for distribution in candidates:
            try:
                versions[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def method_name(method: str) -> str:
    return METHODS[method].display_name if method in METHODS else str(method)


def what_the_colours_mean(method: str, colour: str, label: str) -> str:
    """What the map's strongest colour (``colour``, e.g. "dark red") means for ``method``, in one
    sentence that the dashboard's caption and both reports share. A class sentence only where the
    method reads the class (Eigen-CAM's and attention rollout's maps are the same for every class),
    and a layer only where it uses one (Occlusion and Guided Backpropagation use none)."""
    entry = METHODS.get(method)
    name = method_name(method)
    if entry is not None and not entry.class_specific:
        if entry.random_weights:  # RandomCAM: no claim about the layer either
            shown = (f"{name} weights the layer's feature maps by random numbers, new on every run, whatever the "
                     f"class: the {colour} regions say nothing about what the layer sees; it is the floor any method "
                     "must beat.")
        elif entry.kind == "attention":
            shown = (f"{name} shows where the attention flows most, whatever the class: the {colour} patches pass "
                     "the most attention to the class token.")
        else:
            shown = (f"{name} shows what the layer responds to most, whatever the class: the {colour} regions are "
                     "where the layer is most active.")
        return shown + f" The map is the same for every class, so it does not say why the model chose {label}."
    if entry is not None and entry.perturbs == "patches":
        return (f"The {colour} regions are where covering the photo lowered the probability of {label} most "
                f"({name}: no layer, the photo itself is covered patch by patch).")
    if entry is not None and entry.kind == "pixel-gradient" and entry.layer_free:  # Guided Backpropagation
        return (f"The {colour} pixels are where the gradient of {label}'s score, passed back through positive "
                f"signals only, is largest ({name}: no layer); fine edges, hardly specific to the class.")
    return f"The {colour} regions raised the score most for {label}, by {name}."


def layer_phrase(method: str, layer: str) -> str:
    """How a heading names the layer: "at layer top_activation", or for a method that uses no
    layer what it works on instead ("on the input pixels, no layer")."""
    entry = METHODS.get(method)
    if entry is not None and entry.layer_free:
        return f"on the {entry.works_on}, no layer"
    return f"at layer {layer}"


def layer_fact(method: str, layer: str) -> str:
    """The value of a report's "Layer" fact: the layer's name, or "none" and what the method works on."""
    entry = METHODS.get(method)
    if entry is not None and entry.layer_free:
        return f"none ({method_name(method)} works on the {entry.works_on})"
    return layer


def no_evidence_notice(method: str, label: str) -> str:
    """The sentence under an empty map; "at this layer" only where there is a layer."""
    entry = METHODS.get(method)
    where = "" if entry is not None and entry.layer_free else " at this layer"
    seen = "nothing in the photo" if where == "" else "nothing the layer sees"
    return f"No positive evidence for {label}{where}: {seen} raises this class's score, so the map is empty."


def method_paper(method: str) -> str:
    """The paper a method comes from, for the report's facts."""
    return METHODS[method].paper if method in METHODS else "unknown"


def map_grid(method: str, raw_shape: tuple) -> str:
    """The grid a map was computed on, for captions ("7 x 7 cells", "224 x 224 input pixels"):
    Occlusion's map is drawn at the input's pixels but holds one value per patch position
    (default window and stride), so it names those."""
    height, width = raw_shape[:2]
    entry = METHODS.get(method)
    if entry is not None and entry.perturbs == "patches":
        from ..engine.methods import occlusion_grid

        rows, columns, window, stride = occlusion_grid(height, width)
        return f"{rows} x {columns} patch positions (a {window} px patch every {stride} px)"
    if entry is not None and entry.resolution == "pixels":
        return f"{height} x {width} input pixels"
    return f"{height} x {width} cells"


def resolution_fact(item: "ReportItem", short: bool = False) -> str:
    """What grid the map was computed on and so the smallest thing it can point at,
    from the registry: a layer's cells, a token layer's patches, or the input's pixels.
    ``short``: the grid alone."""
    height, width = item.layer_resolution
    method = METHODS.get(item.method)
    grid = item.token_grid  # "14x14 tokens + 1 class token" for a token layer, else None
    if method is not None and method.kind == "attention":
        cells = grid or f"{height} x {width} patches"
        return cells if short else (f"{cells}: the attention that flows from each patch to the class token "
                                    "through every block, one value per patch")
    if short:
        if grid:
            return grid + (" (extra tokens left out)" if "+" in grid else "")
        return map_grid(item.method, (height, width))
    if method is None or method.resolution == "layer":
        if grid:
            return (f"{grid} of layer {item.layer}, extra tokens left out: the map cannot point at anything "
                    "smaller than one patch")
        return f"{height} x {width} cells of layer {item.layer}: the map cannot point at anything smaller than one cell"
    if method.perturbs == "patches":
        return (f"{map_grid(item.method, (height, width))}, each pixel the mean over the patches that covered it: "
                "no layer is involved, and the map cannot point at anything much smaller than one patch")
    if method.layer_free:
        return (f"{height} x {width} input pixels: computed from the gradient at the pixels, so no layer is "
                "involved; fine edges, but hardly specific to the class")
    return (f"{height} x {width} input pixels: the pixel gradient times the map of layer {item.layer}, so its "
            "detail is the pixels' but where it lights up follows that layer's coarse cells")


def score_text(value: float, probabilities: bool = True) -> str:
    """A probability as a percentage; a one-output regression model's value as the number it is."""
    return f"{value:.1%}" if probabilities else f"{value:.4g}"


def predictions_heading(count: int, probabilities: bool = True) -> str:
    """"Top-5 predictions", or what a model with fewer outputs really shows."""
    if not probabilities:
        return "The model's output"  # one linear output: a regression or a raw score, not a ranking
    return f"Top-{count} predictions" if count > 1 else "The prediction"


def file_stem(name: str, limit: int = 60) -> str:
    """A file name's stem that is safe inside a download's file name."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")
    return stem[:limit] or "image"


def shrunk(image: Image.Image, max_side: int) -> Image.Image:
    image = image.convert("RGB") if image.mode != "RGB" else image
    if max(image.size) <= max_side:
        return image
    small = image.copy()
    small.thumbnail((max_side, max_side), Image.LANCZOS)
    return small


def jpeg_bytes(image: Image.Image, max_side: int | None = None, quality: int = JPEG_QUALITY) -> bytes:
    if max_side is not None:
        image = shrunk(image, max_side)
    buffer = io.BytesIO()
    (image.convert("RGB") if image.mode != "RGB" else image).save(buffer, format="JPEG", quality=quality,
                                                                  optimize=True)
    return buffer.getvalue()


def data_uri(image: Image.Image, max_side: int = MAX_EMBEDDED_SIDE) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image, max_side)).decode("ascii")


def png_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colour_scale(colormap: str) -> Image.Image:
    ramp = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (10, 1))
    return Image.fromarray(colorize(ramp, colormap))


def weights_fingerprint(model, weights_sha256: str | None) -> str | None:
    if weights_sha256 is not None or model is None:
        return weights_sha256

    return sha256_of_weights(model)  # once per report, however many items


def model_facts(model, model_name: str | None, weights_sha256: str | None,
                 probabilities: bool | None = None) -> tuple[str, str | None, bool]:
    name = model_name if model_name is not None else (getattr(model, "name", None) or "unknown model")
    if probabilities is None:
        probabilities = bool(getattr(model, "outputs_probabilities", True)) if model is not None else True
    return name, weights_fingerprint(model, weights_sha256), probabilities


BASELINE_WORDS = {"blur": "a strongly blurred copy of the photo", "mean": "the photo's mean colour",
                  "black": "black"}


def _number(form: str):
    def shown(value: float | None, who: str) -> str:
        if value is None:
            return "not computed"
        text = form.format(value)
        return text[1:] if text.startswith("-") and float(text) == 0 else text  # never "-0.000"
    return shown


def increase_text(value: float, who: str) -> str:
    # Yes or no for one map; for random maps, the share of seeds whose masked photo raised the class.
    return f"{value:.0%} of maps" if who == "random" else ("yes" if value > 0.5 else "no")


# One row per metric of the registry (gradcam.trust.metrics): its title, its key, how a value is shown.
TRUST_ROWS = tuple((metric.title, key, increase_text if metric.higher == "yes" else _number(metric.form))
                   for key, metric in METRICS.items())


def trust_lines(item: ReportItem) -> list[tuple[str, list[str]]]:
    """(score, [this map, random maps, centred blob]) for each score that was computed."""
    numbers = item.faithfulness
    if not numbers:
        return []
    return [(title, [shown(numbers[who].get(key), who) for who in ("map", "random", "blob")])
            for title, key, shown in TRUST_ROWS if numbers["map"].get(key) is not None]


def how_scored(numbers: dict) -> str:
    """How the faithfulness scores were measured, so a reader can repeat them."""
    baseline = numbers.get("baseline", "blur")
    steps = numbers.get("steps")
    return (f"Deleted pixels became {BASELINE_WORDS.get(baseline, baseline)}"
            + (f", {steps} steps each way" if steps else "")
            + "; random maps are the mean of several maps of random values at the map's resolution, and the "
            "centred blob is a map that only says 'the middle'.")


def bottom_line(item: ReportItem) -> str:
    """One plain line a reader can stop at: what the faithfulness test and the sanity check found, each only as
    far as its evidence goes ("beats random maps, not a centred blob; passes the sanity check")."""
    numbers = item.faithfulness
    if not numbers:
        faithful = "faithfulness not scored"
    else:
        judgement = numbers.get("judgement")
        mine, blob = numbers["map"], numbers["blob"]
        beats_blob = (mine["deletion_auc"] < blob["deletion_auc"], mine["insertion_auc"] > blob["insertion_auc"])
        faithful = {
            "cannot judge": "the faithfulness test cannot judge this map",
            "no better than random": "no better than random maps",
            "partly better than random": "only partly better than random maps",
            "no better than a centred blob": "beats random maps, not a centred blob",
        }.get(judgement) or ("beats random maps and a centred blob" if all(beats_blob) else
                             "beats random maps; a centred blob does as well on one of the two curves")
    sanity = item.sanity
    if not sanity:
        sane = "sanity check not run"
    elif not sanity.get("judged", True):
        sane = "the sanity check cannot judge it (empty map)"
    else:
        sane = {"passed": "passes the sanity check", "not settled": "the sanity check's random draws disagree"}.get(
            sanity.get("outcome"), "passes the sanity check" if sanity["passed"] else "fails the sanity check")
    return f"{faithful[0].upper()}{faithful[1:]}; {sane}."


def trust_sentences(item: ReportItem) -> list[tuple[str, str]]:
    """(heading, sentence) for every sentence the report says about trust, in order.
    The HTML and the PDF both draw exactly these, so neither can say less."""
    # The bottom line sums up the checks that ran; with none, the two "not run" sentences below say it all.
    said = [("Bottom line", bottom_line(item))] if item.faithfulness or item.sanity else []
    if item.faithfulness:
        scored = how_scored(item.faithfulness)
        if item.faithfulness["map"].get("average_drop") is not None:
            scored += " " + MASKED_PHOTO_SCORES
        said += [("Faithfulness", item.faithfulness["verdict"]), ("How it was scored", scored)]
    else:
        said.append(("Faithfulness", "Not scored for this explanation (the Report page's \"Add faithfulness "
                                     "scores\", or gradcam.faithfulness, adds it)."))
    if item.sanity:
        said.append(("Sanity check", item.sanity["verdict"]))
        if item.sanity.get("how_judged"):
            said.append(("How it was judged", item.sanity["how_judged"]))
    else:
        said.append(("Sanity check", "Not run for this explanation (the Trust page's \"Run the sanity check\" "
                                     "adds it to the report)."))
    return said


# --- the evidence as pictures ---------------------------------------------------------

_CURVE_STYLES = (("This map", "#1f5fa8", "-"), ("Random maps", "#7fb3e0", "--"), ("Centred blob", "#d62728", ":"))


def _figure_image(figure) -> Image.Image:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", pad_inches=0.06)  # no title cut off
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def curves_picture(scores) -> Image.Image:
    """The deletion and insertion curves of a ``gradcam.Faithfulness`` side by side, each with random maps
    and the centred blob, as the Trust page draws them."""
    return _figure_image(curves_figure(scores))


def curves_figure(scores):
    """The matplotlib figure of ``curves_picture``, each plot's legend under it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.2, 2.6))
    curves = ((scores.deletion, scores.random.deletion, scores.blob.deletion),
              (scores.insertion, scores.random.insertion, scores.blob.insertion))
    for column, (title, three) in enumerate(zip(("Deletion (lower area is better)", "Insertion (higher area is "
                                                 "better)"), curves)):
        axes = figure.add_subplot(1, 2, column + 1)
        for curve, (name, colour, dash) in zip(three, _CURVE_STYLES):
            axes.plot(curve.fractions, curve.scores, dash, color=colour, label=f"{name} (AUC {curve.auc:.3f})")
        axes.set_ylim(0, 1)
        axes.set_xlim(0, 1)
        axes.set_title(title, fontsize=9)
        axes.set_xlabel("share of pixels " + ("deleted" if column == 0 else "inserted"), fontsize=8)
        axes.set_ylabel("probability" if column == 0 else "", fontsize=8)
        axes.tick_params(labelsize=7)
        # Under the plot, not on it: inside, the legend sat on curves that run anywhere from 0 to 1.
        axes.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1, frameon=False)
    figure.tight_layout()
    return figure


def sanity_picture(photo: Image.Image, check, columns: int = 7, side: int = 120) -> Image.Image:
    """The sanity check's strip: the trained model's map, then the map as the network is randomized from the
    top down, each over the photo with its rank correlation, the judged step marked."""
    from matplotlib.figure import Figure

    from ..trust.sanity import judged_step

    shown = [("trained model\n", check.original_heatmap, "the original")]
    judged = judged_step(check.steps) if check.steps and check.judged else -1
    shown += [(f"random down to\n{step.randomized_down_to[:22]}", step.heatmap,
               f"rank corr. {step.rank_correlation:.2f}" + (" (judged)" if n == judged else ""))
              for n, step in enumerate(check.steps)]
    columns = min(columns, len(shown))
    rows = -(-len(shown) // columns)
    thumb = shrunk(photo, side)
    figure = Figure(figsize=(columns * 1.25, rows * 1.6))
    for n, (title, heatmap, caption) in enumerate(shown):
        axes = figure.add_subplot(rows, columns, n + 1)
        small = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8)).resize(thumb.size, Image.BILINEAR)
        axes.imshow(np.asarray(overlay(thumb, np.asarray(small, np.float32) / 255, 0.5)))
        axes.set_axis_off()
        axes.set_title(f"{title}\n{caption}", fontsize=6, parse_math=False,
                       color="#b00020" if n - 1 == judged else "#222222")
    figure.tight_layout(pad=0.3)
    return _figure_image(figure)
