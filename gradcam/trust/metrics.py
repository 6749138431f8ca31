"""The metrics registry: every score of a map is one entry, as every method is.

A ``Metric`` says what it is called, where it comes from, what a higher value
means, how it is computed and what its random baseline is; the Trust page, the
report, the CLI and docs/trust.md read ``METRICS`` instead of naming each score
in four places. ``Scores.summary()`` (faithfulness.py) gives one number per key.

The three scores of Domeniconi et al. 2026 (pytorch-grad-cam's ``metrics/arcc.py``)
are computed as the reference does, on the map at the network's input size scaled
to [0, 1] (minus its minimum, over its maximum):

- **Complexity** = the mean of |map| over the pixels: lower is a simpler map.
- **Coherency** = (Pearson(map of the input multiplied by the map, map) + 1) / 2:
  the method explains the photo it kept as it explained the photo; the method is
  run again at the same layer on the prepared input times the map.
- **ARCC** = the harmonic mean of Coherency, 1 - Complexity and ROAD' where ROAD'
  = clip(2 ROAD combined, 0, 1), ROAD combined taken at the percentiles 20, 40,
  60, 80 (ARCC's own; the faithfulness check runs 10 .. 90 and these are four of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ARCC_PERCENTILES = (20, 40, 60, 80)  # pytorch-grad-cam's ARCC(road_percentiles=[20, 40, 60, 80])

RANDOM_MAPS = "the same score for maps of random values at the map's resolution (the mean of three seeds)"


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One score of a map, and what a reader needs to weigh it."""

    name: str  # the key in Scores.summary(), JSON, CSV
    display_name: str
    paper: str
    higher: str  # "better", "worse" or "yes": what a higher value means
    computed: str  # one sentence: how
    random_baseline: str  # one sentence: what it is compared with
    form: str = "{:.3f}"  # how a value is printed
    needs_method: bool = False  # computed only for a method's map (it runs the method again), not a bare map
    needs_road: bool = False  # computed only when ROAD was

    @property
    def title(self) -> str:
        """"Deletion AUC (lower is better)": the row title in tables."""
        if self.higher == "yes":
            return f"{self.display_name} (yes or no)"
        return f"{self.display_name} ({'higher' if self.higher == 'better' else 'lower'} is better)"


_RISE = "Petsiuk et al. 2018, RISE: Randomized Input Sampling for Explanation of Black-box Models"
_ROAD = "Rong et al. 2022, A Consistent and Efficient Evaluation Strategy for Attribution Methods"
_PLUSPLUS = "Chattopadhyay et al. 2018, Grad-CAM++: Improved Visual Explanations for Deep Convolutional Networks"
_ARCC = "Domeniconi et al. 2026, How to Evaluate and Refine your CAM"

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric(name="deletion_auc", display_name="Deletion AUC", paper=_RISE, higher="worse",
           computed="The photo's pixels are replaced by the baseline, most important first; the area under the "
           "class's probability after each step.", random_baseline=RANDOM_MAPS),
    Metric(name="insertion_auc", display_name="Insertion AUC", paper=_RISE, higher="better",
           computed="The photo's pixels are put into the baseline, most important first; the area under the "
           "class's probability after each step.", random_baseline=RANDOM_MAPS),
    Metric(name="road_combined", display_name="ROAD combined", paper=_ROAD, higher="better", needs_road=True,
           computed="Pixels removed by noisy linear imputation at 10 .. 90 %, least relevant first minus most "
           "relevant first, halved (pytorch-grad-cam's ROADCombined).",
           random_baseline="the same score for the first seed's random map"),
    Metric(name="average_drop", display_name="Average Drop %", paper=_PLUSPLUS, higher="worse", form="{:.1f}",
           computed="How much the class's probability drops when the photo is multiplied by the map, in percent "
           "of the photo's.", random_baseline=RANDOM_MAPS),
    Metric(name="increase_in_confidence", display_name="Increase in Confidence", paper=_PLUSPLUS, higher="yes",
           form="{:.2f}", computed="Whether the photo multiplied by the map gives the class a higher probability "
           "than the photo.", random_baseline="the share of random maps for which it does"),
    Metric(name="complexity", display_name="Complexity", paper=_ARCC, higher="worse",
           computed="The mean of the map over the pixels, the map scaled to [0, 1]: a map that lights up "
           "everything explains nothing.", random_baseline=RANDOM_MAPS),
    Metric(name="coherency", display_name="Coherency", paper=_ARCC, higher="better", needs_method=True,
           computed="The method is run again on the photo multiplied by its map; (Pearson correlation of the two "
           "maps + 1) / 2.", random_baseline="the same for random maps: the method run on the photo times each "
           "random map, against that map"),
    Metric(name="arcc", display_name="ARCC", paper=_ARCC, higher="better", needs_method=True, needs_road=True,
           computed="The harmonic mean of Coherency, 1 - Complexity and ROAD combined at 20, 40, 60, 80 % "
           "doubled and clipped to [0, 1].", random_baseline="the same for random maps"),
)}


def metric(key: str) -> Metric:
    """The registry entry for ``key``, or a one-sentence ValueError."""
    if key not in METRICS:
        raise ValueError(f'Unknown metric "{key}"; choose one of: {", ".join(METRICS)}.')
    return METRICS[key]


# --- the formulas -------------------------------------------------------------------------


def scaled_to_unit(saliency: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's scale_cam_image: minus the minimum, over 1e-7 + the maximum left."""
    shifted = np.asarray(saliency, np.float64) - float(np.min(saliency))
    return shifted / (1e-7 + shifted.max())


def complexity(saliency: np.ndarray) -> float:
    """The L1 norm of the map scaled to [0, 1], over its number of pixels."""
    return float(np.abs(scaled_to_unit(saliency)).mean())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-grad-cam's batch_pearson_coherency for one pair (n - 1 in both, eps 1e-8)."""
    a = np.ravel(a).astype(np.float64)
    b = np.ravel(b).astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    n = a.size - 1
    return float(((a * b).sum() / n) / (np.sqrt((a**2).sum() / n) * np.sqrt((b**2).sum() / n) + 1e-8))


def coherency(saliency: np.ndarray, remade: np.ndarray) -> float:
    """(Pearson(the map of the masked input, the map) + 1) / 2."""
    return (pearson(remade, saliency) + 1.0) / 2.0


def road_for_arcc(most_relevant_first: np.ndarray, least_relevant_first: np.ndarray, percentiles) -> float:
    """ROAD combined over ARCC's percentiles only, from a ROAD run over more."""
    keep = [i for i, p in enumerate(percentiles) if p in ARCC_PERCENTILES]
    return float((np.mean(least_relevant_first[keep]) - np.mean(most_relevant_first[keep])) / 2)


def arcc(coherency_: float, complexity_: float, road_combined: float) -> float:
    """3 / (1 / coherency + 1 / (1 - complexity) + 1 / ROAD'), each with 1e-8, ROAD' = clip(2 ROAD, 0, 1)."""
    road_ = float(np.clip(road_combined * 2.0, 0.0, 1.0))
    return 3.0 / (1.0 / (coherency_ + 1e-8) + 1.0 / ((1.0 - complexity_) + 1e-8) + 1.0 / (road_ + 1e-8))
