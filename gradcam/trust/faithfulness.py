"""Is the map faithful to the model? Scores that test it, each next to random maps.

A heatmap claims "these regions are why the model chose this class". The scores
here test the claim by changing the network's input where the map points:

- **Deletion and insertion** (Petsiuk et al., "RISE", BMVC 2018): rank the pixels
  of the network's input by the map; deletion replaces them, most important
  first, by a baseline (a strongly blurred copy by default, or the photo's mean
  colour, or black); insertion puts them, most important first, into the
  baseline. The target's probability after each step makes a curve; its area
  (trapezoid rule over the fraction in [0, 1]) is the score: low for deletion,
  high for insertion means the map found what matters.
- **ROAD** (Rong et al., "A Consistent and Efficient Evaluation Strategy for
  Attribution Methods", ICML 2022): remove a share of pixels, most relevant
  first (MoRF) or least relevant first (LeRF), and fill them by noisy linear
  imputation, so the hole's shape does not leak the map; computed exactly as
  pytorch-grad-cam's ``ROADCombined`` does (see ``road``).
- **Average Drop % and Increase in Confidence** (Chattopadhyay et al.,
  "Grad-CAM++", WACV 2018): the target's probability on the photo multiplied by
  the map, against the photo's own.
- **Complexity, Coherency and ARCC** (Domeniconi et al. 2026, pytorch-grad-cam's
  ``metrics/arcc.py``): how much of the photo the map lights up; whether the
  method, run again on the photo times its map, draws the same map; and the
  harmonic mean of Coherency, 1 - Complexity and ROAD (see ``metrics.py``).

Every score is one entry of the metrics registry (``metrics.METRICS``): what it
is called, its paper, what higher means and its baseline; the Trust page, the
report and the CLI print whatever the registry holds.

No score stands alone: every one is also computed for random maps of the same
resolution (the mean over several seeds) and for a centred blob (a map that
says "the middle", which photographers' framing makes hard to beat).
Every perturbed input of a curve goes through the network in batches.
"""

from __future__ import annotations

# Why these two scores can favour a map that points at nothing: said wherever they are shown
# (the Trust page under its table, both reports). Measured on the cat with Lite0: Grad-CAM
# 23.6%, the mean of 3 random maps 5.8%, a map of ones 0.0% (and "yes": the probability rose).
MASKED_PHOTO_SCORES = (
    "Average Drop and Increase in Confidence score the photo multiplied by the map: Average Drop is the share of "
    "the class's probability that is lost, Increase in Confidence whether the probability even rises. Both reward "
    "a map that keeps the photo in view, not one that points precisely: a map of random values is about 0.5 "
    "everywhere, so it dims the whole photo evenly and leaves the object visible, while a sharp map blacks out "
    "everything outside its peak. A map of ones, which highlights nothing, scores a perfect 0% drop. So a random "
    "map can win on these two; read them next to deletion and insertion, never alone."
)

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..engine.baselines import BASELINES, baseline_pixels, map_at_input, network_pixels, prepared_pixels
from ..engine.cam import Explanation, as_image, to_probabilities
from ..engine.graph import default_layer
from ..engine.cost import check_forward_batch
from ..engine.passes import batch_forward_pass
from ..engine.targets import target_index
from .metrics import METRICS, arcc, coherency, complexity, road_for_arcc, scaled_to_unit

ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ROAD_NOISE = 0.01  # pytorch-grad-cam's NoisyLinearImputer default, absolute, in the network's input units
RANDOM_SEEDS = 3  # random maps averaged for the deletion/insertion/drop baseline
BATCH = 20  # perturbed inputs per forward pass: bounded memory, near-full speed


# --- results --------------------------------------------------------------------


class Curve(NamedTuple):
    fractions: np.ndarray  # (steps + 1,) 0 .. 1: the share of pixels deleted or inserted
    scores: np.ndarray  # (steps + 1,) the target's probability after each step
    auc: float  # trapezoid rule over the fractions


class Road(NamedTuple):
    percentiles: tuple  # 10 .. 90
    most_relevant_first: np.ndarray  # probability change, per percentile, after removing the most relevant first
    least_relevant_first: np.ndarray  # the same, least relevant first
    combined: float  # (mean LeRF - mean MoRF) / 2: higher is more faithful


@dataclass(frozen=True)
class Scores:
    """The scores of one map."""

    deletion: Curve
    insertion: Curve
    road: Road | None  # None when not asked for (it costs 18 sparse solves per map)
    average_drop: float  # percent: max(0, p - p_masked) / p * 100; lower is better
    increase_in_confidence: float  # share of maps (0 or 1 for one map, a mean for random maps) with p_masked > p
    complexity: float | None = None  # mean of the map scaled to [0, 1]; lower is simpler
    coherency: float | None = None  # (Pearson(map of the photo times the map, map) + 1) / 2; None: not run
    arcc: float | None = None  # harmonic mean of coherency, 1 - complexity, ROAD'; None without both

    def value(self, key: str) -> float | None:
        """One metric's number (a key of ``metrics.METRICS``); None when it was not computed."""
        if key in ("deletion_auc", "insertion_auc"):
            return getattr(self, key.removesuffix("_auc")).auc
        if key == "road_combined":
            return None if self.road is None else self.road.combined
        return getattr(self, key)

    def summary(self) -> dict:
        """The numbers alone (no curves), one per metric of the registry, for JSON, CSV and reports."""
        return {key: self.value(key) for key in METRICS}


@dataclass(frozen=True)
class Faithfulness(Scores):
    """The map's scores, and the same scores for random maps and a centred blob."""

    random: Scores = None  # mean over RANDOM_SEEDS random maps (ROAD: the first seed's map)
    blob: Scores = None  # a centred Gaussian blob
    target: int = 0
    label: str = ""
    probability: float = 0.0  # the target's probability on the unchanged photo
    baseline: str = "blur"
    steps: int = 50  # points of each curve beyond the first
    judgement: str = ""  # one of BETTER, PARTLY, NOT_BETTER, BLOB_AS_GOOD, CANNOT_JUDGE
    verdict: str = ""

    def numbers(self) -> dict:
        """Every score next to its baselines, numbers only: what JSON, CSV and reports carry."""
        return {"label": self.label, "target": self.target, "probability": self.probability,
                "baseline": self.baseline, "steps": self.steps, "map": self.summary(),
                "random": self.random.summary(), "blob": self.blob.summary(), "judgement": self.judgement,
                "verdict": self.verdict}


# --- the network on many inputs -------------------------------------------------


def probabilities(model, inputs: np.ndarray, target: int) -> np.ndarray:
    """The target's probability for each of ``inputs`` (N, h, w, c), network-ready,
    in batches of BATCH."""
    run = batch_forward_pass(model)
    out = []
    for start in range(0, len(inputs), BATCH):
        logits = np.asarray(run(inputs[start:start + BATCH]), np.float64).reshape(-1, len(model.labels))
        out.extend(to_probabilities(model, row)[target] for row in logits)
    return np.asarray(out, np.float64)


# --- maps, pixels and baselines -------------------------------------------------


def ranks(saliency: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each pixel's place when ranked by the map, 0 = most important. Ties (a
    map's zeros) are broken at random, not in reading order, which would delete
    the top rows first and favour whatever sits there."""
    flat = saliency.reshape(-1)
    tie_break = np.random.default_rng(seed).random(flat.size)
    order = np.lexsort((tie_break, -flat))
    place = np.empty(flat.size, np.int64)
    place[order] = np.arange(flat.size)
    return place.reshape(saliency.shape)


def random_map(shape: tuple[int, int], height: int, width: int, seed: int) -> np.ndarray:
    """A random map at ``shape`` resolution, upsampled to the input like a real one."""
    cells = np.random.default_rng(seed).random(shape).astype(np.float32)
    return map_at_input(cells, height, width)


def centred_blob(height: int, width: int) -> np.ndarray:
    """A Gaussian in the middle of the frame, sigma a quarter of each side."""
    y = (np.arange(height) - (height - 1) / 2) / (height / 4)
    x = (np.arange(width) - (width - 1) / 2) / (width / 4)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


def perturbed(pixels: np.ndarray, place: np.ndarray, baseline: np.ndarray, fraction: float,
              mode: str = "deletion") -> np.ndarray:
    """The input after deleting (or inserting) the top ``fraction`` of pixels."""
    chosen = (place < round(fraction * place.size))[..., None]
    if mode == "deletion":
        return np.where(chosen, baseline, pixels)
    return np.where(chosen, pixels, baseline)


# --- the scores -----------------------------------------------------------------


def _curves(model, pixels, baseline, place, target, steps, p_photo, p_baseline) -> tuple[Curve, Curve]:
    """Deletion and insertion from 2 * (steps - 1) forward passes: both ends of
    both curves are the photo and the baseline, whose scores are known. Inputs
    are made one batch at a time, so memory stays at BATCH inputs whatever ``steps``."""
    fractions = np.linspace(0.0, 1.0, steps + 1)
    inner = fractions[1:-1]
    # Every preprocessing is per pixel, so a perturbed input is a per-pixel choice
    # between the prepared photo and the prepared baseline: prepare both once.
    photo, fill = prepared_pixels(model, pixels), prepared_pixels(model, baseline)
    counts = np.round(np.concatenate([inner, inner]) * place.size)
    deleting = np.arange(len(counts)) < len(inner)
    scores = []
    for start in range(0, len(counts), BATCH):
        chosen = place[None] < counts[start:start + BATCH, None, None]  # (batch, h, w): the top pixels
        chosen ^= ~deleting[start:start + BATCH, None, None]  # insertion keeps the photo where deletion removes it
        batch = np.where(chosen[..., None], fill, photo)
        scores.extend(probabilities(model, batch, target))
    scores = np.asarray(scores, np.float64)
    deletion = np.concatenate([[p_photo], scores[:len(inner)], [p_baseline]])
    insertion = np.concatenate([[p_baseline], scores[len(inner):], [p_photo]])
    return (Curve(fractions, deletion, float(np.trapezoid(deletion, fractions))),
            Curve(fractions, insertion, float(np.trapezoid(insertion, fractions))))


_NEIGHBOURS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
               ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))


def impute(x: np.ndarray, keep: np.ndarray, rng: np.random.Generator, noise: float = ROAD_NOISE) -> np.ndarray:
    """ROAD's noisy linear imputation: every removed pixel (``keep`` False) becomes
    the weighted mean of its 8 neighbours (1/6 at the sides, 1/12 at the corners),
    removed neighbours being unknowns of one sparse linear system, plus Gaussian
    noise. ``x`` is (h, w, c) in the network's input units."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    height, width, channels = x.shape
    known = keep.reshape(-1)
    missing = np.flatnonzero(~known)
    if missing.size == 0:
        return x.copy()
    unknown_id = np.full(known.size, -1)
    unknown_id[missing] = np.arange(missing.size)
    row, col = np.divmod(missing, width)
    flat = x.reshape(-1, channels).astype(np.float64)
    rhs = np.zeros((missing.size, channels))
    weight_sum = np.ones(missing.size)  # less the weight of neighbours outside the image
    rows, cols, values = [np.arange(missing.size)], [np.arange(missing.size)], []
    for (dr, dc), weight in _NEIGHBOURS:
        r, c = row + dr, col + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        weight_sum[~inside] -= weight
        here = np.flatnonzero(inside)
        neighbour = r[inside] * width + c[inside]
        is_known = known[neighbour]
        rhs[here[is_known]] -= weight * flat[neighbour[is_known]]
        rows.append(here[~is_known])
        cols.append(unknown_id[neighbour[~is_known]])
        values.append(np.full(int((~is_known).sum()), weight))
    values.insert(0, -weight_sum)
    system = csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(missing.size, missing.size))
    solution = spsolve(system, rhs).reshape(missing.size, channels)
    filled = flat.copy()
    filled[missing] = solution + noise * rng.standard_normal(solution.shape)
    return filled.reshape(x.shape).astype(np.float32)


def road(model, x: np.ndarray, saliency: np.ndarray, target: int, percentiles=ROAD_PERCENTILES,
         seed: int = 0) -> Road:
    """ROAD as pytorch-grad-cam's ROADCombined computes it: at percentile p,
    MoRF keeps the pixels whose map value is below the map's p-th percentile
    (it removes the most relevant 100 - p %), LeRF keeps those whose (1 - map) is
    below the p-th percentile of (1 - map); removed pixels are imputed in the
    network's input units; each score is the change of the target's probability;
    combined = (mean over p of LeRF - mean over p of MoRF) / 2."""
    rng = np.random.default_rng(seed)
    x = x.reshape(x.shape[-3:])
    inputs = []
    for relevance in (saliency, 1.0 - saliency):  # MoRF, then LeRF
        for p in percentiles:
            inputs.append(impute(x, relevance < np.percentile(relevance, p), rng))
    p_photo = probabilities(model, x[None], target)[0]
    changes = probabilities(model, np.stack(inputs), target) - p_photo
    morf, lerf = changes[:len(percentiles)], changes[len(percentiles):]
    return Road(tuple(percentiles), morf, lerf, float((lerf.mean() - morf.mean()) / 2))


def _scores(model, pixels, baseline, saliency, target, steps, p_photo, p_baseline, with_road, seed=0,
            remake=None) -> Scores:
    """Every score of one map (``saliency`` at the network's input size). ``remake(x)``, when
    given, runs the map's method on a prepared input and returns its map at that size (Coherency)."""
    deletion, insertion = _curves(model, pixels, baseline, ranks(saliency, seed), target, steps, p_photo, p_baseline)
    scaled = saliency / saliency.max() if saliency.max() > 0 else saliency
    p_masked = probabilities(model, prepared_pixels(model, pixels * scaled[..., None])[None], target)[0]
    drop = max(0.0, p_photo - p_masked) / p_photo * 100.0 if p_photo > 0 else 0.0
    found = road(model, prepared_pixels(model, pixels), scaled, target, seed=seed) if with_road else None
    unit = scaled_to_unit(saliency)  # the reference's grayscale CAM: minus its minimum, over its maximum
    simple = complexity(unit)
    coherent = together = None
    if remake is not None:
        # The prepared input times the map, as pytorch-grad-cam's Coherency multiplies its input tensor.
        coherent = coherency(unit, remake(prepared_pixels(model, pixels)[None] * unit[None, :, :, None]))
        if found is not None:
            together = arcc(coherent, simple, road_for_arcc(found.most_relevant_first, found.least_relevant_first,
                                                            found.percentiles))
    return Scores(deletion, insertion, found, float(drop), float(p_masked > p_photo), simple, coherent, together)


def _mean_scores(all_scores: list[Scores]) -> Scores:
    def mean_curve(curves):
        scores = np.mean([c.scores for c in curves], axis=0)
        return Curve(curves[0].fractions, scores, float(np.mean([c.auc for c in curves])))

    def mean(key):
        values = [getattr(s, key) for s in all_scores if getattr(s, key) is not None]
        return float(np.mean(values)) if values else None

    return Scores(mean_curve([s.deletion for s in all_scores]), mean_curve([s.insertion for s in all_scores]),
                  all_scores[0].road, float(np.mean([s.average_drop for s in all_scores])),
                  float(np.mean([s.increase_in_confidence for s in all_scores])), mean("complexity"),
                  mean("coherency"), mean("arcc"))


# The probability "does not move" when every input a test made (the photo, the
# baseline, every step of every curve, for the map, the random maps and the blob)
# gives the target a probability within this much of the others: then no ranking
# of pixels can do better or worse than another, and a verdict would be noise.
STILL = 0.01

# What a verdict concluded, for colours and marks (the sentence says it for people).
BETTER, PARTLY, NOT_BETTER, BLOB_AS_GOOD, CANNOT_JUDGE = (
    "better than random", "partly better than random", "no better than random",
    "no better than a centred blob", "cannot judge")


def _beats(a: Scores, b: Scores) -> tuple[bool, bool]:
    """(a beats b on deletion, a beats b on insertion)."""
    return a.deletion.auc < b.deletion.auc, a.insertion.auc > b.insertion.auc


def spread(*all_scores: Scores) -> float:
    """How far the target's probability moved over every input of these scores' curves."""
    values = np.concatenate([np.concatenate([s.deletion.scores, s.insertion.scores]) for s in all_scores])
    return float(np.ptp(values))


def judge(scores: Scores, random: Scores, blob: Scores, label: str, *, empty: bool = False) -> tuple[str, str]:
    """(what the test concluded, one sentence saying it with its numbers).

    Random maps and the centred blob are both baselines: a map earns "better
    than random" only when it beats random maps on deletion and insertion, and
    the sentence says so when the blob, a map that knows nothing of the model,
    does as well. When the map is empty or the probability never moves, the
    test has nothing to measure and says so instead of a verdict."""
    if empty:
        return CANNOT_JUDGE, (
            f"This test cannot judge this map: it is empty (no positive evidence for {label} at this layer), so it "
            "ranks no pixel above another and deleting or inserting its regions first is the same as doing it in "
            "random order.")
    moved = spread(scores, random, blob)
    if moved < STILL:
        return CANNOT_JUDGE, (
            f"This test cannot judge this map: {label}'s probability stays within {moved:.3f} of "
            f"{scores.deletion.scores[0]:.3f} whatever is deleted or inserted (less than {STILL}), so no map can "
            "do better or worse than another here.")
    numbers = (f"deletion AUC {scores.deletion.auc:.3f} vs {random.deletion.auc:.3f} for random maps and "
               f"{blob.deletion.auc:.3f} for a centred blob, insertion AUC {scores.insertion.auc:.3f} vs "
               f"{random.insertion.auc:.3f} and {blob.insertion.auc:.3f}")
    on_deletion, on_insertion = _beats(scores, random)
    over_blob = _beats(scores, blob)
    if on_deletion and on_insertion:
        if not any(over_blob):
            return BLOB_AS_GOOD, (
                f"Beats random maps, but not a map that only says 'the middle': a centred blob does as well or "
                f"better on deletion and insertion, so on this photo the test cannot tell this map from one that "
                f"knows nothing of the model ({numbers}).")
        if not all(over_blob):
            tie = "deletion" if not over_blob[0] else "insertion"
            return BETTER, (
                f"Better than random: removing the map's regions first lowers {label}'s probability faster and "
                f"adding them first raises it faster; but on {tie} a centred blob does as well, so that half of "
                f"the test cannot tell this map from 'the middle' ({numbers}).")
        return BETTER, (
            f"Better than random and than a centred blob: removing the map's regions first lowers {label}'s "
            f"probability faster and adding them first raises it faster ({numbers}).")
    if on_deletion or on_insertion:
        which = "deleting" if on_deletion else "inserting"
        return PARTLY, (f"Only partly better than random: only {which} the map's regions first beats random maps "
                        f"({numbers}).")
    return NOT_BETTER, (f"No better than random: this map does not find what drives {label} more than random maps "
                        f"do ({numbers}).")


def verdict(scores: Scores, random: Scores, blob: Scores, label: str, *, empty: bool = False) -> str:
    """The sentence of ``judge``."""
    return judge(scores, random, blob, label, empty=empty)[1]


class _Setup(NamedTuple):
    """What every score of one (photo, class, baseline) shares."""

    pixels: np.ndarray  # the photo at the network's input size, 0..255
    fill: np.ndarray  # the baseline at the same size
    target: int
    p_photo: float
    p_baseline: float


def check_cost(model) -> None:
    """Refuse (ExplanationTooCostly) before any pass when a batch of perturbed photos would
    hold more memory than an explanation may (gradcam.engine.cost): every score starts here."""
    check_forward_batch(model, BATCH)


def _setup(model, image: Image.Image, target: int, baseline: str) -> _Setup:
    check_cost(model)
    if baseline not in BASELINES:
        raise ValueError(f'Unknown baseline "{baseline}"; choose one of: {", ".join(BASELINES)}.')
    pixels = network_pixels(model, image)
    fill = baseline_pixels(pixels, baseline)
    p_photo, p_baseline = probabilities(model, np.stack([prepared_pixels(model, pixels), prepared_pixels(model, fill)]), target)
    return _Setup(pixels, fill, target, float(p_photo), float(p_baseline))


def _check_steps(steps) -> None:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or not 2 <= steps <= 1000:
        raise ValueError("steps must be a whole number from 2 to 1000.")


def _map_and_target(model, image: Image.Image, explanation_or_map, target, resolution=None):
    """(the map at the image's size, the random maps' resolution, the class index).
    ``resolution``: a bare map's own grid (h, w), when it is not the default layer's."""
    if isinstance(explanation_or_map, Explanation):
        heatmap, cells = explanation_or_map.heatmap, explanation_or_map.raw.shape
        index = explanation_or_map.target if target is None else target_index(model, target)
    else:
        heatmap = np.asarray(explanation_or_map, np.float32)
        if target is None:
            raise ValueError("A bare map needs target= (the class it explains).")
        cells = tuple(resolution) if resolution is not None else default_layer(model).shape[:2]
        index = target_index(model, target)
    if heatmap.shape != (image.size[1], image.size[0]):
        raise ValueError(f"The map is {heatmap.shape[1] if heatmap.ndim == 2 else '?'}x{heatmap.shape[0]} but the "
                         f"image is {image.size[0]}x{image.size[1]}; give a map at the image's size.")
    if not np.all(np.isfinite(heatmap)):
        raise ValueError("The map has NaN or infinite values.")
    return heatmap, tuple(cells[:2]), index


def _score_map(model, setup: _Setup, saliency, steps, road, seed=0, remake=None) -> Scores:
    return _scores(model, setup.pixels, setup.fill, saliency, setup.target, steps, setup.p_photo, setup.p_baseline,
                   road, seed, remake)


def _remaker(model, method: str, layer, target: int):
    """x (1, H, W, C) prepared -> ``method``'s map of ``target`` on x at ``layer``, at the
    network's input size and scaled to [0, 1] as pytorch-grad-cam's BaseCAM returns it."""
    from ..engine.cam import compute_prepared
    from ..engine.combined import base_map_at_input
    from ..engine.methods import method as method_named

    chosen = method_named(method)
    layer = None if chosen.layer_free else layer
    height, width = model.input_size

    def remake(x: np.ndarray) -> np.ndarray:
        before = compute_prepared(model, np.ascontiguousarray(x, np.float32), [target], layer, method).before_relu
        return base_map_at_input(before, height, width)[0]

    return remake


def deletion_insertion(model, image, explanation_or_map, *, target=None, steps: int = 50,
                       baseline: str = "blur") -> tuple[Curve, Curve]:
    """Only the two curves of one map: 2 * steps forward passes, batched."""
    image = as_image(image)
    _check_steps(steps)
    heatmap, _, index = _map_and_target(model, image, explanation_or_map, target)
    setup = _setup(model, image, index, baseline)
    height, width = model.input_size
    place = ranks(map_at_input(heatmap, height, width))
    return _curves(model, setup.pixels, setup.fill, place, index, steps, setup.p_photo, setup.p_baseline)


def faithfulness(model, image, explanation_or_map, *, target=None, steps: int = 50, baseline: str = "blur",
                 road: bool = True, seeds: int = RANDOM_SEEDS, resolution=None,
                 coherency: bool | None = None, method: str | None = None, layer=None) -> Faithfulness:
    """How faithful a map is to ``model`` on ``image``, next to random maps and a blob.

    ``explanation_or_map``: an Explanation (its class is the target), or any
    (H, W) map at the image's size with ``target=`` (an index or a label), so a
    map made elsewhere can be scored too. ``steps``: points of each curve beyond
    the first. ``baseline``: what deleted pixels become: "blur", "mean" or
    "black". ``road=False`` skips ROAD, which costs 18 sparse solves per map.
    Random maps have the explanation's layer resolution (for a bare map,
    ``resolution`` (h, w), else the default layer's); their ROAD is the first
    seed's (one map's 18 solves, not three). The verdict weighs random maps and
    the blob, and says when the test cannot judge (see ``judge``).

    Complexity is computed for every map. Coherency (and so ARCC, which also
    needs ROAD) runs the explanation's method again on the photo times each map
    (this map, each random map, the blob): ``coherency`` None does so for the
    methods that are not slow, True always, False never; a bare map has no method,
    so no Coherency, unless ``method`` (and ``layer``) say which made it.
    """
    image = as_image(image)
    _check_steps(steps)
    heatmap, cells, index = _map_and_target(model, image, explanation_or_map, target, resolution)
    setup = _setup(model, image, index, baseline)
    height, width = model.input_size
    remake = None
    if isinstance(explanation_or_map, Explanation):
        method, layer = explanation_or_map.method, explanation_or_map.layer
    if method is not None:
        from ..engine.methods import method as method_named

        if coherency or (coherency is None and not method_named(method).slow):
            remake = _remaker(model, method, layer, index)
    mine = _score_map(model, setup, map_at_input(heatmap, height, width), steps, road, remake=remake)
    randoms = [_score_map(model, setup, random_map(cells, height, width, seed), steps, road and seed == 0, seed,
                          remake if seed == 0 else None)  # the random maps' Coherency: the first seed's, like ROAD
               for seed in range(max(1, int(seeds)))]
    blob = _score_map(model, setup, centred_blob(height, width), steps, road, remake=remake)
    random = _mean_scores(randoms)
    label = model.labels[index]
    judgement, sentence = judge(mine, random, blob, label, empty=not float(heatmap.max()) > 0)
    return Faithfulness(mine.deletion, mine.insertion, mine.road, mine.average_drop, mine.increase_in_confidence,
                        mine.complexity, mine.coherency, mine.arcc,
                        random=random, blob=blob, target=index, label=label, probability=setup.p_photo,
                        baseline=baseline, steps=steps, judgement=judgement, verdict=sentence)


class MethodScore(NamedTuple):
    method: str  # a key of METHODS, or "random" for the random maps' row
    name: str
    deletion_auc: float
    insertion_auc: float
    score: float  # insertion AUC - deletion AUC: higher means more faithful on both tests


def map_score(model, image, heatmap: np.ndarray, target, method: str, *, steps: int = 20,
              baseline: str = "blur") -> MethodScore:
    """One method's map (at the image's size), already made, scored by deletion and
    insertion: so a caller scores exactly the map it shows (Score-CAM on a budget)."""
    from ..engine.cam import METHODS

    image = as_image(image)
    _check_steps(steps)
    setup = _setup(model, image, target_index(model, target), baseline)
    height, width = model.input_size
    scores = _score_map(model, setup, map_at_input(np.asarray(heatmap, np.float32), height, width), steps, False)
    return MethodScore(method, METHODS[method].display_name, scores.deletion.auc, scores.insertion.auc,
                       scores.insertion.auc - scores.deletion.auc)


def method_score(model, image, method: str, target, layer=None, *, steps: int = 20,
                 baseline: str = "blur", **options) -> MethodScore:
    """One method's map of ``target`` (an index or a label) scored by deletion and
    insertion. ``options`` go to ``explain`` (``max_channels``, ``progress``, ``stop``)."""
    from ..engine.cam import explain

    image = as_image(image)
    explanation = explain(model, image, target=target, layer=layer, method=method, **options)
    return map_score(model, image, explanation.heatmap, explanation.target, method, steps=steps, baseline=baseline)


def random_score(model, image, target, layer=None, *, steps: int = 20, baseline: str = "blur") -> MethodScore:
    """The same for random maps at the layer's resolution (the mean of RANDOM_SEEDS)."""
    from ..engine.graph import resolve_layer

    image = as_image(image)
    _check_steps(steps)
    setup = _setup(model, image, target_index(model, target), baseline)
    height, width = model.input_size
    cells = resolve_layer(model, layer).shape[:2]
    randoms = _mean_scores([_score_map(model, setup, random_map(cells, height, width, seed), steps, False, seed)
                            for seed in range(RANDOM_SEEDS)])
    return MethodScore("random", f"Random maps (mean of {RANDOM_SEEDS})", randoms.deletion.auc,
                       randoms.insertion.auc, randoms.insertion.auc - randoms.deletion.auc)


def ranked(rows) -> list[MethodScore]:
    """Most faithful first: by insertion AUC minus deletion AUC."""
    return sorted(rows, key=lambda row: -row.score)


def rank_methods(model, image, target=None, layer=None, methods=None, *, steps: int = 20, baseline: str = "blur",
                 progress=None) -> list[MethodScore]:
    """Every method's map of one class scored by deletion and insertion on this
    photo, most faithful first, with the random maps as one more row.
    ``progress(done, total)`` is called after each method."""
    from ..engine.cam import predict
    from ..engine.methods import methods_for

    check_cost(model)  # before the first method's pass, not after it
    image = as_image(image)
    keys = methods_for(model) if methods is None else list(methods)
    index = predict(model, image, top=1)[0].index if target is None else target_index(model, target)
    rows = []
    for done, key in enumerate(keys, 1):
        rows.append(method_score(model, image, key, index, layer, steps=steps, baseline=baseline))
        if progress is not None:
            progress(done, len(keys))
    rows.append(random_score(model, image, index, layer, steps=steps, baseline=baseline))
    return ranked(rows)


def preview(model, image, heatmap: np.ndarray, fractions=(0.1, 0.3, 0.6), mode: str = "deletion",
            baseline: str = "blur") -> list[Image.Image]:
    """What the network sees at a few steps of a curve: the input (at the
    network's size) with the top ``fraction`` of pixels deleted or inserted."""
    image = as_image(image)
    pixels = network_pixels(model, image)
    height, width = model.input_size
    place = ranks(map_at_input(np.asarray(heatmap, np.float32), height, width))
    fill = baseline_pixels(pixels, baseline)
    shown = []
    for fraction in fractions:
        frame = np.clip(perturbed(pixels, place, fill, fraction, mode), 0, 255).astype(np.uint8)
        shown.append(Image.fromarray(frame[..., 0] if frame.shape[2] == 1 else frame))
    return shown
