"""Does the map explain the model, or only the image? The model-randomization test.

Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018): replace the
network's learned weights by random ones, stage by stage from the logits down
("cascading randomization"), and recompute the map each time. A map that
depends on what the model learned must change; a map that stays the same
shows the image's edges, whatever the model. Grad-CAM passes; Guided
Backpropagation famously does not.

Everything happens on a clone of the model: the caller's model (in the
dashboard, one object shared by every session) is only read, so explanations
running at the same time in other threads are unaffected. The clone is dropped
when the check ends.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..engine.baselines import map_at_input
from ..engine.cam import METHODS, ExplanationStopped, as_image, explain
from ..engine.graph import resolve_layer, stage_layers, walk_layers

# The map passes when, once the top of the network is random (the logits and the
# last stage, TOP_STAGES groups of ``stages``), its Spearman rank correlation
# with the original map is below PASS_THRESHOLD. Adebayo et al. read the test by
# eye; the top stages are where the methods part: measured with Lite0 on the
# sample photos, Grad-CAM falls to 0.1-0.4 there while Guided Backpropagation
# stays at 0.93-0.94 (tests/test_sanity.py). Deeper down both drift: a fully
# random network's 7x7 map follows where the photo has most contrast, which is
# often where the object is (Grad-CAM back at 0.65-0.71), so the whole-network
# step is shown but not what the verdict reads.
PASS_THRESHOLD = 0.5
TOP_STAGES = 2
SEED = 0  # the random weights are the same on every run, so a result can be reproduced
# One random draw judges the draw as much as the map: with Lite0's head re-randomised under
# seeds 1-4 one map's correlations were 0.41, -0.36, -0.09 and 0.28, against 0.90 for seed 0.
# So the top of the network is drawn DRAWS times (the full cascade once, the top stages again
# for each further draw: about two more maps each) and the verdict reads the whole range.
DRAWS = 3
_DRAW_SEED_STEP = 100_000  # far apart, so no layer's seed in one draw repeats one of another


class SanityStep(NamedTuple):
    randomized_down_to: str  # the lowest layer that is random at this step (everything above it is too)
    raw: np.ndarray  # the map at layer resolution, as Explanation.raw
    rank_correlation: float  # Spearman, with the original map at the network's input size
    ssim: float  # structural similarity with the original (7x7 windows, data range 1)
    heatmap: np.ndarray  # (h, w) in [0, 1] at the network's input size: what was compared


@dataclass(frozen=True)
class SanityCheck:
    method: str
    layer: str
    target: int
    label: str
    original: np.ndarray  # the unrandomized map at layer resolution
    original_heatmap: np.ndarray  # the same in [0, 1] at the network's input size
    steps: list[SanityStep]  # top of the network first; the last one has the whole network random
    threshold: float
    passed: bool  # rank correlation below threshold at the judged step in every draw
    verdict: str
    judged: bool = True  # False: the original map is empty, so there is nothing whose change could be seen
    # The rank correlation at the judged step in each random draw of the top of the network
    # (the first is steps[judged_step(steps)]); empty when nothing was judged.
    draws: tuple[float, ...] = ()

    @property
    def outcome(self) -> str:
        """"passed", "failed" (every draw on one side of the threshold), "not settled" (the
        draws disagree) or "not judged" (an empty original map)."""
        if not self.judged or not self.draws:
            return "not judged"
        if self.passed:
            return "passed"
        return "failed" if min(self.draws) >= self.threshold else "not settled"

    def summary(self) -> dict:
        """The numbers alone (no maps), for JSON and reports."""
        return {"method": self.method, "layer": self.layer, "target": self.target, "label": self.label,
                "threshold": self.threshold, "passed": self.passed, "judged": self.judged,
                "judged_step": judged_step(self.steps), "how_judged": how_judged(self), "verdict": self.verdict,
                "draws": list(self.draws), "outcome": self.outcome,
                "steps": [{"randomized_down_to": s.randomized_down_to, "rank_correlation": s.rank_correlation,
                           "ssim": s.ssim} for s in self.steps]}


# --- similarity -----------------------------------------------------------------


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps; 0 when either is constant (an
    all-zero map has no ranking, so nothing of the original survives in it)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Structural similarity (Wang et al. 2004) of two maps in [0, 1], with the
    choices of scikit-image's default: a uniform 7x7 window, K1 = 0.01,
    K2 = 0.03, sample covariances, the border of half a window left out."""
    from scipy.ndimage import uniform_filter

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = window * window
    unbiased = n / (n - 1)
    mean_a, mean_b = uniform_filter(a, window), uniform_filter(b, window)
    var_a = unbiased * (uniform_filter(a * a, window) - mean_a * mean_a)
    var_b = unbiased * (uniform_filter(b * b, window) - mean_b * mean_b)
    cov = unbiased * (uniform_filter(a * b, window) - mean_a * mean_b)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    index = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2))
    pad = (window - 1) // 2
    return float(index[pad:-pad, pad:-pad].mean())


# --- the clone and its randomization --------------------------------------------


def clone(model):
    """A twin of ``model`` with its own weights (copied) and its own compiled
    functions, so changing it never touches the original."""
    import keras

    try:
        twin = keras.models.clone_model(model.keras)
        twin.set_weights(model.keras.get_weights())
    except Exception as error:  # e.g. a subclassed model, which Keras cannot rebuild from its config
        raise ValueError("This model cannot be copied (Keras cannot rebuild it from its configuration), so the "
                         "sanity check, which randomizes a copy, cannot run on it.") from error
    return dataclasses.replace(model, keras=twin, _compiled=OrderedDict(), _lock=threading.Lock())


def stages(model) -> list[list[tuple[str, object]]]:
    """The layers with weights, in groups from the top of the network down: the
    layers after the last feature map (the logits) first, then one group per
    resolution of the network (``stage_layers``), the stem last."""
    layers = list(walk_layers(model.keras))
    position = {path: i for i, (path, _) in enumerate(layers)}
    cuts = [position[t.name] + 1 for t in stage_layers(model)]
    groups, end = [], len(layers)
    for start in [*reversed(cuts), 0]:
        group = [(path, layer) for path, layer in layers[start:end] if layer.weights]
        if group:
            groups.append(group)
        end = start
    return groups


# Where a layer keeps the initializer of a weight whose name is not "<name>_initializer".
_INITIALIZER_ALIASES = {"kernel": ("kernel_initializer", "depthwise_initializer"),
                        "depthwise_kernel": ("depthwise_initializer",),
                        "pointwise_kernel": ("pointwise_initializer",)}


def _initializer(layer, weight):
    """The layer's own initializer for ``weight``; Keras' defaults (Glorot uniform
    for kernels, zeros otherwise) when the layer does not say."""
    import keras

    for name in (f"{weight.name}_initializer", *_INITIALIZER_ALIASES.get(weight.name, ())):
        found = getattr(layer, name, None)
        if found is not None:
            return keras.initializers.get(found)
    return keras.initializers.GlorotUniform() if len(weight.shape) >= 2 else keras.initializers.Zeros()


def randomize(layer, seed: int) -> None:
    """Re-initialise every weight of ``layer`` with its own initializer."""
    for i, weight in enumerate(layer.weights):
        initializer = _initializer(layer, weight)
        config = initializer.get_config()
        if "seed" in config:  # a fixed seed per weight: reproducible, and no two weights alike
            initializer = type(initializer).from_config({**config, "seed": seed + i})
        weight.assign(initializer(shape=tuple(weight.shape), dtype=weight.dtype))


# --- the check ------------------------------------------------------------------


def _at_input_size(model, explanation) -> np.ndarray:

    height, width = model.input_size
    return map_at_input(explanation.heatmap, height, width)


def judged_step(steps: list[SanityStep]) -> int:
    """The step the verdict reads: the first with the top TOP_STAGES groups random."""
    return min(TOP_STAGES, len(steps)) - 1


def how_judged(check: "SanityCheck") -> str:
    """Which step the verdict reads, and why not the deeper ones: a sentence for pages and reports."""
    if not check.judged or not check.steps:
        return "No step was judged: the original map is empty."
    n = judged_step(check.steps)
    draws = len(check.draws)
    return (f"The verdict reads step {n + 1} of {len(check.steps)} (random down to "
            f"{check.steps[n].randomized_down_to}), where the top of the network is random: that is where methods "
            "that depend on the model part from those that do not. "
            + (f"The top was drawn at random {draws} times, with different seeds, and the verdict reads every draw "
               "(one draw can land either way by chance); the steps shown are the first draw's. " if draws > 1 else "")
            + "The deeper steps are shown but not judged: a "
            "network random all the way down still gives a coarse map that follows where the photo has most "
            "contrast, often the object itself, so even a sound method's map drifts back towards the original "
            "there (Adebayo et al. 2018 read those steps by eye).")


def cannot_judge(method_name: str, label: str) -> str:
    return (f"This test cannot judge the {method_name} map: it is empty (no positive evidence for {label} at this "
            "layer), and an empty map cannot be seen to change when the weights are randomized.")


def _listed(draws) -> str:
    """The draws' correlations as a person reads them: "0.12", "0.12 and 0.30", "0.12, 0.30 and -0.05"."""
    values = [f"{value:.2f}" for value in draws]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def verdict(method_name: str, draws, threshold: float) -> str:
    """Passed when every draw is below the threshold, failed when none is; otherwise the
    draws disagree and the sentence says so (not passed: the check could not show it)."""
    draws = list(draws)
    count = len(draws)
    measured = (f"rank correlation {_listed(draws)}" if count == 1 else
                f"rank correlation from {min(draws):.2f} to {max(draws):.2f} over {count} random draws: "
                f"{_listed(draws)}")
    every = "" if count == 1 else "every draw "
    if max(draws) < threshold:
        return (f"Passed: once the top of the network is random, the {method_name} map no longer resembles the "
                f"original ({measured}; {every}below {threshold:.2f}), so it depends on what the model learned.")
    if min(draws) >= threshold:
        return (f"Failed: with the top of the network random, the {method_name} map still resembles the original "
                f"({measured}; {every}not below {threshold:.2f}), so it shows the image more than what the model "
                "learned.")
    return (f"Not settled: with the top of the network random, the {method_name} map's resemblance to the original "
            f"depends on which random weights were drawn ({measured}; the threshold is {threshold:.2f}). Some draws "
            "leave the map looking like the original, so this photo does not show that it depends on what the "
            "model learned; try another photo or class.")


def _randomize_group(group, number: int, draw: int) -> None:
    for offset, (_, layer_object) in enumerate(group):
        randomize(layer_object, SEED + _DRAW_SEED_STEP * draw + 1000 * number + 10 * offset)


def _stop_if_asked(options) -> None:
    if options.get("stop") is not None and options["stop"].is_set():
        raise ExplanationStopped("The sanity check was stopped early.")


def _cascade(twin, image, original, reference, layer_name, method, progress, options) -> tuple[list, list]:
    """Randomize ``twin``'s top stages again for each further draw (one map each, at the judged
    step), then stage by stage from the top for the first draw, one map after each stage.
    Returns (the first draw's steps, the judged correlation of every draw, the first first).
    Each stage is re-initialised whole, so nothing of one draw survives into the next."""
    groups = stages(twin)
    judged = min(TOP_STAGES, len(groups))
    total = len(groups) + DRAWS - 1
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    learned = [[layer_object.get_weights() for _, layer_object in group] for group in groups[:judged]]
    further = []
    for draw in range(1, DRAWS):
        _stop_if_asked(options)
        for number, group in enumerate(groups[:judged]):
            _randomize_group(group, number, draw)
        now = explain(twin, image, target=original.target, layer=layer_name, method=method, **options)
        further.append(rank_correlation(reference, _at_input_size(twin, now)))
        tick()
    for group, weights in zip(groups[:judged], learned):  # the cascade starts from the learned weights
        for (_, layer_object), values in zip(group, weights):
            layer_object.set_weights(values)
    steps = []
    for number, group in enumerate(groups):
        _stop_if_asked(options)
        _randomize_group(group, number, 0)
        now = explain(twin, image, target=original.target, layer=layer_name, method=method, **options)
        mapped = _at_input_size(twin, now)
        steps.append(SanityStep(group[0][0], now.raw, rank_correlation(reference, mapped), ssim(reference, mapped),
                                mapped))
        tick()
    return steps, [steps[judged_step(steps)].rank_correlation, *further]


def sanity_check(model, image, target=None, layer=None, method: str = "gradcam", *, progress=None,
                 max_channels: int | None = None, stop=None) -> SanityCheck:
    """Cascading model randomization (Adebayo et al. 2018) for one map.

    On a clone of ``model``, the stages of ``stages(model)`` are re-initialised
    one after another from the logits down, and after each the map of the same
    class, layer and method is recomputed and compared with the original
    (Spearman rank correlation and SSIM, at the network's input size). It
    passes when the correlation is below PASS_THRESHOLD once the top
    TOP_STAGES stages are random, in each of DRAWS random draws of those
    stages (``draws``: the correlation in each; a verdict that the draws
    disagree on is "Not settled", not passed).
    ``progress(done, total)``, if given, is called after each stage;
    ``max_channels`` and ``stop`` go to every ``explain`` (Score-CAM's budget, so
    the map checked is the one shown; setting ``stop`` ends the check with
    ExplanationStopped). An empty original map is not judged (``judged`` False).
    """
    options = {"stop": stop} | ({} if max_channels is None else {"max_channels": max_channels})

    image = as_image(image)
    if method not in METHODS:
        raise ValueError(f'Unknown method "{method}"; choose one of: {", ".join(METHODS)}.')
    layer_name = resolve_layer(model, layer).name
    original = explain(model, image, target=target, layer=layer_name, method=method, **options)
    reference = _at_input_size(model, original)
    name = METHODS[method].display_name  # the registry's display name
    if original.no_positive_evidence:  # nothing to watch change: no clone, no cascade
        return SanityCheck(method, layer_name, original.target, original.label, original.raw, reference, [],
                           PASS_THRESHOLD, False, cannot_judge(name, original.label), judged=False)
    twin = clone(model)
    try:
        steps, draws = _cascade(twin, image, original, reference, layer_name, method, progress, options)
    finally:
        del twin
        gc.collect()  # the clone holds the model's size in weights and a traced graph: give it back now
    passed = max(draws) < PASS_THRESHOLD
    return SanityCheck(method, layer_name, original.target, original.label, original.raw, reference, steps,
                       PASS_THRESHOLD, passed, verdict(name, draws, PASS_THRESHOLD), draws=tuple(draws))
