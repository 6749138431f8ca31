"""Class activation maps: one compiled pipeline; methods say how to make a map.

The pipeline (per model, layer and method, traced once): run the model capturing
the layer's feature maps A and the logits; take the scores s = W @ logits, one row
of W per target (a one-hot row for "this class"; other rows give contrastive or
counterfactual maps); then, by the method's kind (see ``methods.py``):

- gradient methods differentiate every score with respect to A in the same pass
  and turn (A, dS/dA) into a map;
- Eigen-CAM turns A alone into a map;
- Score-CAM and Ablation-CAM score perturbed copies (masked inputs, ablated
  channels) in batches of compiled forward passes, then weight the channels;
  Occlusion scores copies with a patch covered and maps the drops directly;
- guided methods differentiate the scores with respect to the input pixels with
  the guided rule at every ReLU-like unit.

The map is ReLU of the result. Image and targets are tensor inputs, so a new
photo or a new class never retraces.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..intake.images import load_image
from .cost import check_explanation
from .graph import TargetLayer, output_activation, resolve_layer, stage_layers
from .passes import (
    attention_pass, batch_forward_pass, cam_pass, forward_pass, fullgrad_pass, guided_pass, layers_pass,
    occlusion_pass, scores_pass,
)
from . import combined
from .tokens import NO_GRADIENT
from .baselines import BASELINES, baseline_pixels, network_pixels, prepared_pixels
from .methods import (
    METHODS, PERTURBATION_BATCH, Method, method as _method, occlusion_map, occlusion_masks, occlusion_positions,
    occlusion_window,
)
from .targets import target_index, target_rows


class ExplanationStopped(Exception):
    """A long explanation was stopped early (``stop`` was set): a newer request
    superseded it. Not a ValueError: nothing was wrong with the input."""


# --- results --------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float  # the model's own probability (softmax or sigmoid output)
    logit: float  # the pre-activation score that Grad-CAM differentiates


@dataclass(frozen=True)
class Explanation:
    heatmap: np.ndarray  # (H, W) float32 in [0, 1] at the input image's own size
    # (h, w) float32, unscaled: ReLU of the method's map at layer resolution. For the
    # guided methods, at the network's input resolution: the largest |value| over the
    # colour channels of the guided gradient (times the upsampled Grad-CAM map for
    # Guided Grad-CAM); the signed colour picture is ``pixels``.
    raw: np.ndarray
    target: int
    label: str
    probability: float
    layer: str
    method: str
    predictions: list[Prediction]
    no_positive_evidence: bool  # the map was <= 0 everywhere: heatmap is all zeros
    channel_weights: np.ndarray = field(repr=False)  # (k,) the method's weights (empty for Guided Backpropagation)
    before_relu: np.ndarray = field(repr=False)  # (h, w) the map before ReLU
    pixels: np.ndarray | None = field(default=None, repr=False)  # guided methods: (h, w, channels), signed
    # A video's frame between two explained ones: its maps blended from theirs (engine/video.py).
    interpolated: bool = False


@dataclass(frozen=True)
class CamTensors:
    """Everything one pass computed, for pages that teach how the map is made."""

    logits: np.ndarray  # (C,)
    probabilities: np.ndarray  # (C,)
    targets: np.ndarray  # (K,) the classes explained
    features: np.ndarray | None  # (h, w, k) the layer's activations A
    gradients: np.ndarray | None  # (K, h, w, k) dS/dA
    channel_weights: np.ndarray  # (K, k)
    before_relu: np.ndarray  # (K, h, w)
    pixels: np.ndarray | None = None  # guided methods: (K, h, w, channels)


# --- helpers --------------------------------------------------------------------


def to_probabilities(model, logits: np.ndarray) -> np.ndarray:
    kind = output_activation(model.keras)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    if kind == "linear" and logits.size == 1:  # a regression: its value is what is shown
        return logits.copy()
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def top_predictions(model, logits, probabilities, top: int) -> list[Prediction]:
    order = np.argsort(-logits, kind="stable")[:top]
    return [Prediction(int(i), model.labels[i], float(probabilities[i]), float(logits[i])) for i in order]


def as_image(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    return load_image(image)


# Guided maps are spiky: a handful of pixels would take the whole colour scale,
# so their display saturates at this percentile (the raw map keeps every value).
SPIKY_PERCENTILE = 99.5


def upsample(raw: np.ndarray, size: tuple[int, int], spiky: bool = False) -> tuple[np.ndarray, bool]:
    """Scale a layer-resolution map to [0, 1] and resize it to ``size`` (width, height).

    Returns (heatmap, no_positive_evidence). A map with nothing above zero is all
    zeros, never NaN. ``spiky`` (pixel-resolution guided maps): values above the
    SPIKY_PERCENTILE-th percentile of the positive ones show as 1.
    """
    peak = float(raw.max()) if raw.size else 0.0
    if not peak > 0.0:
        return np.zeros((size[1], size[0]), np.float32), True
    if spiky:
        raw = np.minimum(raw, np.percentile(raw[raw > 0], SPIKY_PERCENTILE))
        peak = float(raw.max())
    scaled = Image.fromarray((raw / peak).astype(np.float32), mode="F")
    # Bilinear, not bicubic: it never overshoots, so the result stays in [0, 1].
    resized = np.clip(np.asarray(scaled.resize(size, Image.BILINEAR), np.float32), 0.0, None)
    # Pixel centres rarely land on a cell centre, so rescale: the hottest spot is 1.
    return resized / resized.max(), False


def heatmap(raw: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """The heatmap of a method's raw map at ``size`` (width, height), in [0, 1]."""
    return upsample(raw, size, spiky=_method(method).kind == "pixel-gradient")[0]


# --- the pipeline ---------------------------------------------------------------


@dataclass
class Options:
    """What a long explanation may be given besides the image and the targets."""

    max_channels: int | None = None  # Score-CAM: only the channels with the largest variance (Faster Score-CAM)
    progress: Callable[[int, int], object] | None = None  # called with (done, total) after each batch
    stop: object = None  # anything with is_set() (a threading.Event): set it to stop early
    smooth: bool = False  # test-time augmentation: flips and input scalings, maps averaged
    window: int | None = None  # Occlusion: the patch's side in input pixels (default: sized to the input)
    stride: int | None = None  # Occlusion: the step between patches (default: half a window)
    fill: str = "blur"  # Occlusion: what covers the patch, one of the baselines (blur, mean, black)
    fill_input: np.ndarray | None = None  # Occlusion: the prepared baseline photo (1, H, W, C), made by ``compute``
    scales: int | None = None  # SESS: how many scales (default combined.SESS_SCALES, as the reference)


def _occlusion_pass(model, method: Method, x, rows, top, options: Options, offset: int = 0,
                    total: int | None = None):
    """Occlusion: the target's probability with each patch covered, all positions
    batched through one compiled function; the map is the drop against the photo."""
    if options.fill_input is None:
        raise ValueError("Occlusion needs the photo itself for its fill: explain the image, not a prepared input.")
    height, width = model.input_size
    window, stride = occlusion_window(height, width, options.window, options.stride)
    positions = occlusion_positions(height, width, window, stride)
    logits = np.asarray(forward_pass(model)(x), np.float64).reshape(-1)
    chosen_rows = rows
    if top > 0:  # the model's own top classes, as the other passes choose them
        chosen_rows = np.zeros((top, len(logits)), np.float32)
        chosen_rows[np.arange(top), np.argsort(-logits, kind="stable")[:top]] = 1.0
    base = chosen_rows @ to_probabilities(model, logits)  # (K,)
    covered = occlusion_pass(model)
    drops = np.zeros((len(chosen_rows), len(positions)), np.float64)
    total = len(positions) if total is None else total
    for start in range(0, len(positions), PERTURBATION_BATCH):
        if options.stop is not None and options.stop.is_set():
            raise ExplanationStopped(f"{method.display_name} was stopped early.")
        batch = positions[start:start + PERTURBATION_BATCH]
        masks = occlusion_masks(batch, window, height, width)
        batch_logits = np.asarray(covered(x, options.fill_input, masks), np.float64).reshape(len(batch), -1)
        probabilities = np.stack([to_probabilities(model, row) for row in batch_logits])  # (b, C)
        drops[:, start:start + len(batch)] = base[:, None] - chosen_rows @ probabilities.T
        if options.progress is not None:
            options.progress(offset + start + len(batch), total)
    before_relu = occlusion_map(drops, positions, window, height, width)
    return {"logits": logits.astype(np.float32), "rows": chosen_rows, "before_relu": before_relu,
            "weights": np.zeros((len(chosen_rows), 0), np.float32)}


def _perturbation_pass(model, layer, method: Method, x, rows, top, options: Options, keep_tensors: bool,
                       offset: int = 0, total: int | None = None):
    first = cam_pass(model, layer, method, True)(x, rows, np.int32(top))
    features = first["features"].numpy()
    chosen_rows = first["rows"].numpy()
    logits = first["logits"].numpy()
    base = chosen_rows @ logits.astype(np.float32)  # (K,)
    channels = features.shape[-1]
    order = np.arange(channels)
    if options.max_channels is not None and method.channel_budget and options.max_channels < channels:
        variance = features.reshape(-1, channels).var(axis=0)
        order = np.sort(np.argsort(-variance, kind="stable")[: max(1, int(options.max_channels))])
    score = scores_pass(model, layer, method)
    scores = np.zeros((len(chosen_rows), len(order)), np.float32)
    total = len(order) if total is None else total
    for start in range(0, len(order), PERTURBATION_BATCH):
        if options.stop is not None and options.stop.is_set():
            raise ExplanationStopped(f"{method.display_name} was stopped early.")
        batch = order[start:start + PERTURBATION_BATCH].astype(np.int32)
        scores[:, start:start + len(batch)] = score(x, features, batch, chosen_rows).numpy()
        if options.progress is not None:
            options.progress(offset + start + len(batch), total)
    weights = np.zeros((len(chosen_rows), channels), np.float32)
    weights[:, order] = method.weights_from_scores(base, scores)
    before_relu = np.einsum("hwk,nk->nhw", features, weights)
    return {"logits": logits, "rows": chosen_rows, "weights": weights, "before_relu": before_relu,
            "features": features if keep_tensors else None}


def _combined_pass(model, x, rows, top, layer, method: Method, options: Options, offset: int = 0,
                   total: int | None = None) -> dict:
    """RefineCAM and SESS (``combined.py``): the base method's pass, run many times."""
    base = METHODS[method.combines]

    def run_base(x_, rows_, top_, layer_):
        return _one_pass(model, np.ascontiguousarray(x_, np.float32), rows_, top_, layer_, base, Options(), False)

    planned = combined.planned_passes(model, method, layer, options.scales)
    progress = options.progress
    if progress is not None:
        def progress(done, _, report=options.progress):
            report(offset + done, planned if total is None else total)
    try:
        if method.fuses == "layers":
            return combined.refinecam(run_base, model, x, rows, top, layer, progress, options.stop)
        return combined.sess(run_base, batch_forward_pass(model), lambda row: to_probabilities(model, row), model, x,
                             rows, top, layer, combined.SESS_SCALES if options.scales is None else options.scales,
                             progress, options.stop)
    except combined.Stopped:
        raise ExplanationStopped(f"{method.display_name} was stopped early.") from None


def _one_pass(model, x, rows, top, layer, method: Method, options: Options, keep_tensors: bool,
              offset: int = 0, total: int | None = None) -> dict:
    """Every array the method needs, from its compiled pass(es) on the prepared input x."""
    if method.perturbs == "patches":
        return _occlusion_pass(model, method, x, rows, top, options, offset, total)
    if method.kind == "perturbation":
        return _perturbation_pass(model, layer, method, x, rows, top, options, keep_tensors, offset, total)
    if method.kind == "combined":
        return _combined_pass(model, x, rows, top, layer, method, options, offset, total)
    if method.kind == "full-gradient":
        return {key: value.numpy() for key, value in fullgrad_pass(model)(x, rows, np.int32(top)).items()}
    if method.from_features is not None:  # KPCA-CAM: scikit-learn on the captured activations
        out = {key: value.numpy() for key, value in cam_pass(model, layer, method, True)(x, rows, np.int32(top)).items()}
        before_relu, weights = method.from_features(out["features"])
        count = len(out["rows"])
        out.update(before_relu=np.repeat(before_relu, count, axis=0), weights=np.repeat(weights, count, axis=0))
        if not keep_tensors:
            del out["features"]
        return out
    if method.kind == "pixel-gradient":
        out = guided_pass(model, None if method.layer_free else layer, method)(x, rows, np.int32(top))
    elif method.kind == "attention":
        out = attention_pass(model, method)(x, rows, np.int32(top))
    else:
        out = cam_pass(model, layer, method, keep_tensors)(x, rows, np.int32(top))
    out = {key: value.numpy() for key, value in out.items()}
    if not out.pop("gradient_reached", True):
        # A transformer's patch tokens after the last block: only the class token is read.
        raise ValueError(f'At layer "{layer.name}", {NO_GRADIENT}.')
    return out


# pytorch-grad-cam's aug_smooth: a horizontal flip times three input scalings.
AUGMENTATIONS = tuple((flip, factor) for flip in (False, True) for factor in (1.0, 0.9, 1.1))


def _smoothed_pass(model, x, rows, top, layer, method: Method, options: Options) -> dict:
    """The map averaged over AUGMENTATIONS, each brought back to the photo's frame
    and scaled to a peak of 1 first, as pytorch-grad-cam's aug_smooth. The classes
    are the un-augmented photo's, and so are the logits reported."""
    steps = len(AUGMENTATIONS)
    per_pass = _channels_done_per_pass(model, layer, method, options)
    first = None
    maps, weights = [], []
    for number, (flip, factor) in enumerate(AUGMENTATIONS):
        augmented = x * np.float32(factor)
        step_options = options
        if flip:
            augmented = augmented[:, :, ::-1].copy()
        if options.fill_input is not None:  # Occlusion's fill goes through the same augmentation as the photo
            fill = options.fill_input * np.float32(factor)
            step_options = replace(options, fill_input=fill[:, :, ::-1].copy() if flip else fill)
        fixed = rows if first is None else first["rows"]
        out = _one_pass(model, augmented, fixed, top if first is None else 0, layer, method, step_options, False,
                        number * per_pass, steps * per_pass)
        first = first or out
        shown = np.maximum(out["before_relu"], 0.0)
        if flip:
            shown = shown[:, :, ::-1]
        peaks = shown.reshape(len(shown), -1).max(axis=1)
        maps.append(shown / np.where(peaks > 0, peaks, 1.0)[:, None, None])
        weights.append(out["weights"])
    return {**first, "before_relu": np.mean(maps, axis=0), "weights": np.mean(weights, axis=0), "pixels": None}


def _check_cost(model, method: Method, layer, rows, top: int, options: Options) -> None:
    """Refuse (ExplanationTooCostly, one sentence) before any pass when the pass would hold more
    memory than the budget; cheap (the layers' output shapes), so it runs before the photo is prepared."""
    channels = _channels_done_per_pass(model, layer, method, options)
    per_pass = min(PERTURBATION_BATCH, channels) if channels else PERTURBATION_BATCH
    check_explanation(model, method, top or len(rows), batch=per_pass)


def _channels_done_per_pass(model, layer, method: Method, options: Options) -> int:
    """The steps one pass of the method reports progress over (0: it reports none)."""
    if method.kind == "combined":
        return combined.planned_passes(model, method, layer, options.scales)
    if method.kind != "perturbation":
        return 0
    if method.perturbs == "patches":
        height, width = model.input_size
        return len(occlusion_positions(height, width, *occlusion_window(height, width, options.window,
                                                                         options.stride)))
    channels = layer.shape[-1] or 0
    if options.max_channels is not None and method.channel_budget:
        channels = min(channels, max(1, int(options.max_channels)))
    return channels


@dataclass(frozen=True, eq=False)
class Plan:
    """One call's choices, resolved once and passed down the pipeline: the method's registry
    entry, the layer, the rows over the classes and the options. The public functions make it
    (``plan``) and hand it on; nothing below them looks a method, a layer or a target up again."""

    method: Method
    layer: TargetLayer | None  # None for attention methods: they read every block, not one layer
    rows: np.ndarray  # (K, classes): one row per map; empty when the model's own ``top`` classes are asked
    top: int  # how many of the model's own classes (0 when rows are given)
    options: Options

    @property
    def layer_name(self) -> str:
        """The layer the explanations name: what a layer-free method works on (the input pixels, ...)."""
        return self.method.works_on if self.method.layer_free else self.layer.name


def plan(model, targets=None, layer=None, method: str = "gradcam", *, top: int = 1,
         options: Options | None = None) -> Plan:
    """Resolve what one explanation call will run, before any photo is prepared: the method
    (an unknown one is one sentence), the layer, the targets (rows over the classes, or class
    indices; None: the model's own ``top`` classes), and the memory check, which refuses a
    pass over the budget (ExplanationTooCostly) before it runs."""
    chosen = _method(method)
    options = options or Options()
    if chosen.kind == "attention":
        if layer is not None:
            resolve_layer(model, layer)  # a layer named must exist, though the method reads every block
        target_layer = None
    else:
        target_layer = resolve_layer(model, layer)
    rows, top = target_rows(model, targets, top)
    _check_cost(model, chosen, target_layer, rows, top, options)
    if chosen.perturbs == "patches" and options.fill not in BASELINES:
        raise ValueError(f'Unknown fill "{options.fill}"; choose one of: {", ".join(BASELINES)}.')
    return Plan(chosen, target_layer, rows, top, options)


def _computed_prepared(model, x: np.ndarray, planned: Plan, keep_tensors: bool) -> CamTensors:
    if planned.options.smooth:
        out = _smoothed_pass(model, x, planned.rows, planned.top, planned.layer, planned.method, planned.options)
    else:
        out = _one_pass(model, x, planned.rows, planned.top, planned.layer, planned.method, planned.options,
                        keep_tensors)
    logits = out["logits"].astype(np.float64)
    return CamTensors(
        logits=logits,
        probabilities=to_probabilities(model, logits),
        targets=out["rows"].argmax(axis=1),
        features=out.get("features") if keep_tensors else None,
        gradients=out.get("gradients") if keep_tensors else None,
        channel_weights=out["weights"],
        before_relu=out["before_relu"],
        pixels=out.get("pixels"),
    )


def _computed(model, image: Image.Image, planned: Plan, keep_tensors: bool) -> CamTensors:
    if planned.method.perturbs == "patches":  # Occlusion covers patches with the photo's own baseline
        fill = baseline_pixels(network_pixels(model, image), planned.options.fill)
        planned = replace(planned, options=replace(planned.options, fill_input=prepared_pixels(model, fill[None])))
    return _computed_prepared(model, model.prepare(image), planned, keep_tensors)


def compute_prepared(model, x: np.ndarray, targets=None, layer=None, method: str = "gradcam", *, top: int = 1,
                     keep_tensors: bool = False, options: Options | None = None) -> CamTensors:
    """The pipeline on an input already prepared for the model (1, H, W, C): maps
    for ``targets`` (rows over the classes, or class indices), or for the model's
    own ``top`` classes when targets is None."""
    return _computed_prepared(model, x, plan(model, targets, layer, method, top=top, options=options), keep_tensors)


def compute(model, image, targets=None, layer=None, method: str = "gradcam", *, top: int = 1,
            keep_tensors: bool = False, options: Options | None = None) -> CamTensors:
    """One explanation's tensors for ``image`` (see ``compute_prepared``). An unknown method,
    layer or class, and a costly pass, fail before the image is prepared."""
    planned = plan(model, targets, layer, method, top=top, options=options)
    return _computed(model, as_image(image), planned, keep_tensors)


def explanation_of(image, tensors: CamTensors, k: int, index, label, layer: str, chosen: Method,
                   predictions) -> Explanation:
    """The Explanation of the ``k``-th map in ``tensors`` (class ``index``, called ``label``), made
    with ``chosen`` at ``layer`` (its name), on ``image``: its heatmap at the image's own size."""
    before = tensors.before_relu[k].astype(np.float32)
    raw = np.maximum(before, 0.0)
    heatmap_, empty = upsample(raw, image.size, spiky=chosen.kind == "pixel-gradient")
    pixels = None if tensors.pixels is None else tensors.pixels[k].astype(np.float32)
    return Explanation(heatmap=heatmap_, raw=raw, target=int(index), label=label,
                       probability=float(tensors.probabilities[index]), layer=layer, method=chosen.name,
                       predictions=predictions, no_positive_evidence=empty, channel_weights=tensors.channel_weights[k],
                       before_relu=before, pixels=pixels)


# --- public API -----------------------------------------------------------------


def planned_passes(model, method: str, layer=None, *, scales: int | None = None, max_channels: int | None = None,
                   window: int | None = None, stride: int | None = None) -> int:
    """How many compiled passes one explanation with ``method`` will run, told before it
    runs (what a page shows up front): 1 for one-pass methods; RefineCAM one per layer;
    SESS its first pass, its windows and their scoring batches; the perturbation methods
    their batches. ``progress(done, total)`` counts the same steps for the slow ones."""
    chosen = _method(method)
    options = Options(scales=scales, max_channels=max_channels, window=window, stride=stride)
    steps = _channels_done_per_pass(model, None if chosen.kind == "attention" else resolve_layer(model, layer), chosen,
                                    options)
    if chosen.kind == "perturbation":
        return 1 + -(-steps // PERTURBATION_BATCH)
    return max(steps, 1)


def predict(model, image, top: int = 5) -> list[Prediction]:
    """The model's ``top`` classes for ``image``, most likely first."""
    image = as_image(image)
    logits = np.asarray(forward_pass(model)(model.prepare(image)), np.float64).reshape(-1)
    return top_predictions(model, logits, to_probabilities(model, logits), top)


def explain_many(model, image, targets: Sequence | None = None, layer=None, method: str = "gradcam",
                 top: int = 5, *, smooth: bool = False, max_channels: int | None = None,
                 progress: Callable[[int, int], object] | None = None, stop=None, window: int | None = None,
                 stride: int | None = None, fill: str = "blur", scales: int | None = None) -> list[Explanation]:
    """Maps for several classes from one pass: ``targets`` (indices or labels), or
    the model's own ``top`` classes when targets is None.

    ``smooth``: average over flips and input scalings (pytorch-grad-cam's
    aug_smooth, six passes). ``max_channels``: Score-CAM on only that many channels,
    those with the largest variance (Faster Score-CAM). ``progress(done, total)`` is
    called after each batch of a perturbation method; setting ``stop`` (a
    ``threading.Event``) ends it early with ``ExplanationStopped``. Occlusion:
    ``window`` and ``stride`` in pixels of the network's input (default sized to
    it) and ``fill``, the baseline that covers the patch (blur, mean, black). SESS:
    ``scales``, how many (default 12, as pytorch-grad-cam).
    """
    indices = None if targets is None else [target_index(model, t) for t in targets]
    options = Options(max_channels=max_channels, progress=progress, stop=stop, smooth=smooth, window=window,
                      stride=stride, fill=fill, scales=scales)
    planned = plan(model, indices, layer, method, top=top, options=options)
    image = as_image(image)
    tensors = _computed(model, image, planned, keep_tensors=False)
    predictions = top_predictions(model, tensors.logits, tensors.probabilities, 5)
    return [explanation_of(image, tensors, k, index, model.labels[index], planned.layer_name, planned.method,
                         predictions) for k, index in enumerate(tensors.targets)]


def explain(model, image, target=None, layer=None, method: str = "gradcam", **options) -> Explanation:
    """The map for one class: ``target`` is None (the top-1 class), an index or a
    label. ``options``: ``smooth``, ``max_channels``, ``progress``, ``stop`` (see
    ``explain_many``)."""
    return explain_many(model, image, None if target is None else [target], layer, method, top=1, **options)[0]


def _needs_a_class(chosen: Method, what: str) -> None:
    if not chosen.class_specific:
        raise ValueError(f"{chosen.display_name} gives the same map for every class, so it has no {what}.")
    if chosen.target_score is not None:
        raise ValueError(f"{chosen.display_name} already sets its own target (the class against its nearest "
                         f"classes), so it has no {what}.")


def explain_contrast(model, image, target, other, layer=None, method: str = "gradcam", **options) -> Explanation:
    """Why ``target`` rather than ``other``: the map of the difference of their two
    logits, i.e. the evidence that separates them (Selvaraju et al. 2017)."""
    a, b = target_index(model, target), target_index(model, other)
    row = np.zeros((1, len(model.labels)), np.float32)
    row[0, a], row[0, b] = 1.0, -1.0
    planned = plan(model, row, layer, method, options=Options(**options))
    _needs_a_class(planned.method, "contrastive map")
    image = as_image(image)
    tensors = _computed(model, image, planned, keep_tensors=False)
    predictions = top_predictions(model, tensors.logits, tensors.probabilities, 5)
    return explanation_of(image, tensors, 0, a, f"{model.labels[a]} rather than {model.labels[b]}",
                        planned.layer_name, planned.method, predictions)


def explain_counterfactual(model, image, target=None, layer=None, method: str = "gradcam", **options) -> Explanation:
    """What speaks against ``target``: the method with negated gradients, the
    regions whose removal would raise the class's score (Selvaraju et al. 2017)."""
    chosen = _method(method)  # checked before the photo, which the top class needs, is decoded
    _needs_a_class(chosen, "counterfactual map")
    if not chosen.needs_gradients:
        raise ValueError(f"A counterfactual map negates gradients, and {chosen.display_name} uses none.")
    image = as_image(image)
    index = predict(model, image, top=1)[0].index if target is None else target_index(model, target)
    row = np.zeros((1, len(model.labels)), np.float32)
    row[0, index] = -1.0
    planned = plan(model, row, layer, method, options=Options(**options))
    tensors = _computed(model, image, planned, keep_tensors=False)
    predictions = top_predictions(model, tensors.logits, tensors.probabilities, 5)
    return explanation_of(image, tensors, 0, index, f"against {model.labels[index]}", planned.layer_name,
                        planned.method, predictions)


def explain_layers(model, image, layers=None, target=None, method: str = "gradcam", **options) -> list[Explanation]:
    """The map of one class at several layers: ``layers`` (names, default one per
    stage of the network, early to late). Gradient methods and Eigen-CAM take one
    forward and one backward pass for all layers; the others one run per layer."""
    chosen_method = _method(method)
    if chosen_method.layer_free:
        raise ValueError(f"{chosen_method.display_name} works on the {chosen_method.works_on}, not on one layer, "
                         "so it has no map per layer.")
    image = as_image(image)
    chosen = stage_layers(model) if layers is None else [resolve_layer(model, layer) for layer in layers]
    if not chosen_method.one_pass or options.get("smooth"):
        index = target if target is not None else predict(model, image, top=1)[0].index
        return [explain(model, image, index, t.name, method, **options) for t in chosen]
    names = tuple(t.name for t in chosen)
    check_explanation(model, chosen_method, 1)
    index = -1 if target is None else target_index(model, target)
    logits, picked, maps, weights = layers_pass(model, names, chosen_method)(model.prepare(image),
                                                                                  np.int32(index))
    logits = logits.numpy().astype(np.float64)
    picked = int(picked.numpy())
    tensors = CamTensors(logits=logits, probabilities=to_probabilities(model, logits), targets=np.array([picked]),
                         features=None, gradients=None, channel_weights=None, before_relu=None)
    predictions = top_predictions(model, logits, tensors.probabilities, 5)
    out = []
    for name, m, w in zip(names, maps, weights):
        one = CamTensors(**{**tensors.__dict__, "channel_weights": w.numpy()[None], "before_relu": m.numpy()[None]})
        out.append(explanation_of(image, one, 0, picked, model.labels[picked], name, chosen_method, predictions))
    return out
