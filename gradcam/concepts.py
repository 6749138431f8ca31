"""Concepts: what parts does the model see? Deep Feature Factorization.

Deep Feature Factorization (Collins, Achanta & Süsstrunk 2018), as pytorch-grad-cam's
``dff``: the layer's activations of one photo (or of several photos together) are a
(channels x positions) matrix; shifted so every channel's minimum is 0, it is
factorised by non-negative matrix factorisation (scikit-learn's NMF, random
initialisation, seed 0) into K concepts:

- W (channels x K) plus the shift: each concept's direction in the layer's channels;
- H (K x positions): where each concept is, a map per concept per photo, scaled to
  [0, 1] and upsampled to the photo.

Each concept's direction goes on through the rest of the network (the layer's output
replaced by that direction at every position); where the layer feeds a global pooling
and a classifier, that is the classifier applied to the direction, as the reference
applies its classifier to the concept embeddings, and no second pass runs. The
classes whose probabilities it raises most are what the concept supports: "this part is the ears, it votes tabby". Across several
photos of one class, the factorisation is shared, so a concept that appears in most
photos is one the class is seen by.

The photos' activations come from the compiled forward pass of the engine; nothing
here imports Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image

from .engine.cam import as_image, to_probabilities
from .engine.cost import check_explanation
from .engine.graph import resolve_layer
from .engine.methods import method as method_named
from .engine.passes import activations_pass, direction_logits

DEFAULT_CONCEPTS = 5  # pytorch-grad-cam's run_dff_on_image default n_components
MAX_CONCEPTS = 12  # distinct colours; more concepts than this are hard to tell apart in one picture
MAX_PHOTOS = 64  # photos factorised together (their activations are one matrix in memory)
PRESENT = 0.1  # a concept is present in a photo when it holds at least this share of the photo's concept mass

# One colour per concept (Tableau 10 and two more): distinct for people with common colour vision deficiencies.
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 128), (128, 128, 0))
COLOUR_NAMES = ("blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan", "navy",
                "khaki")  # for legends: a caption says "the orange concept"


@dataclass(frozen=True)
class Concept:
    """One concept of a factorisation."""

    number: int  # 0 .. K - 1
    colour: tuple[int, int, int]
    direction: np.ndarray = field(repr=False)  # (channels,) W's column plus the shift, in the layer's units
    supports: list[tuple[int, str, float]] = field(default_factory=list)  # (class, label, probability), most first
    maps: list[np.ndarray] = field(default_factory=list, repr=False)  # per photo: (h, w) at the layer, in [0, 1]
    shares: list[float] = field(default_factory=list)  # per photo: this concept's share of the photo's H mass

    @property
    def colour_name(self) -> str:
        return COLOUR_NAMES[COLOURS.index(self.colour)] if self.colour in COLOURS else "#%02x%02x%02x" % self.colour

    @property
    def label(self) -> str:
        """The class it supports most, for legends: "tabby 0.41"."""
        if not self.supports:
            return f"concept {self.number + 1}"
        _, name, probability = self.supports[0]
        return f"{name.split(',')[0]} {probability:.2f}"

    def heatmap(self, photo: int = 0, size: tuple[int, int] | None = None) -> np.ndarray:
        """The concept's map over photo ``photo``, at ``size`` (width, height), in [0, 1]."""
        raw = self.maps[photo]
        if size is None:
            return raw
        return np.clip(np.asarray(Image.fromarray(raw.astype(np.float32), mode="F").resize(size, Image.BILINEAR)),
                       0.0, 1.0)

    def present_in(self) -> int:
        """In how many photos the concept holds at least PRESENT of the concept mass."""
        return sum(share >= PRESENT for share in self.shares)


@dataclass(frozen=True)
class Concepts:
    """A factorisation of one layer's activations over one or more photos."""

    layer: str
    concepts: list[Concept]
    photos: int

    def picture(self, image, photo: int = 0, alpha: float = 0.6, only: int | None = None) -> Image.Image:
        """``image`` with each pixel tinted by the concept strongest there, in that concept's
        colour, as strongly as that concept's map (the reference's show_factorization_on_image
        idea: one colour per concept, its map as the weight). ``only``: one concept's number,
        tinted alone."""
        image = as_image(image)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be between 0 and 1.")
        size = image.size
        chosen = self.concepts if only is None else [self.concepts[only]]
        stack = np.stack([c.heatmap(photo, size) for c in chosen])  # (K, H, W)
        strongest = stack.argmax(axis=0)
        weight = alpha * stack.max(axis=0)[..., None]
        colours = np.asarray([c.colour for c in chosen], np.float32)[strongest]
        photo_pixels = np.asarray(image, np.float32)
        return Image.fromarray(np.clip(photo_pixels * (1 - weight) + colours * weight, 0, 255).astype(np.uint8))

    def summary(self) -> list[dict]:
        """Numbers only, for JSON."""
        return [{"concept": c.number + 1, "colour": "#%02x%02x%02x" % c.colour, "colour_name": c.colour_name,
                 "supports": [{"class": k, "label": name, "probability": p} for k, name, p in c.supports],
                 "present_in": c.present_in(), "shares": [round(s, 4) for s in c.shares]}
                for c in self.concepts]


def factorize(activations: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """pytorch-grad-cam's dff on (photos, h, w, channels): (directions (channels, n),
    maps (photos, n, h, w) unscaled)."""
    from sklearn.decomposition import NMF

    photos, height, width, channels = activations.shape
    matrix = np.nan_to_num(activations.transpose(3, 0, 1, 2).reshape(channels, -1)).astype(np.float64)
    shift = matrix.min(axis=1)
    # NMF needs non-negative data: every channel shifted to start at 0, the shift added back to the directions.
    model = NMF(n_components=n, init="random", random_state=0, max_iter=400)
    w = model.fit_transform(matrix - shift[:, None])
    h = model.components_
    return w + shift[:, None], h.reshape(n, photos, height, width).transpose(1, 0, 2, 3)


def _scaled(maps: np.ndarray) -> np.ndarray:
    """Each map minus its minimum, over 1e-7 + the maximum left (scale_cam_image)."""
    shifted = maps - maps.min(axis=(-2, -1), keepdims=True)
    return shifted / (1e-7 + shifted.max(axis=(-2, -1), keepdims=True))


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_CONCEPTS:
        raise ValueError(f"The number of concepts is a whole number from 1 to {MAX_CONCEPTS}; got {n!r}.")
    return int(n)


def find_concepts(model, images: Sequence | object, n: int = DEFAULT_CONCEPTS, layer=None,
                  top_classes: int = 3) -> Concepts:
    """K concepts of ``layer`` (default: the model's default layer) over one photo or a
    list of photos factorised together; each with its map per photo, its share of each
    photo and the ``top_classes`` classes its direction supports most."""
    n = _check_count(n)
    photos = list(images) if isinstance(images, (list, tuple)) else [images]
    if not photos:
        raise ValueError("Concepts need at least one photo.")
    if len(photos) > MAX_PHOTOS:
        raise ValueError(f"Concepts are found over at most {MAX_PHOTOS} photos at once; got {len(photos)}.")
    target = resolve_layer(model, layer)
    if target.grid is not None:
        raise ValueError("Concepts are found on a convolutional layer's feature maps; this layer holds tokens.")
    check_explanation(model, method_named("eigencam"), 1, photos=len(photos))  # forward passes, no gradients
    run = activations_pass(model, target.name)
    prepared = [model.prepare(as_image(photo)) for photo in photos]
    activations = np.concatenate([run(x).numpy() for x in prepared])
    positions = activations.shape[1] * activations.shape[2] * len(photos)
    if n > min(positions, activations.shape[3]):
        raise ValueError(f"This layer has {positions} positions and {activations.shape[3]} channels over these "
                         f"photos: too few for {n} concepts.")
    directions, maps = factorize(activations, n)
    mass = maps.sum(axis=(2, 3))  # (photos, n)
    shares = mass / np.where(mass.sum(axis=1, keepdims=True) > 0, mass.sum(axis=1, keepdims=True), 1.0)
    # prepared[0] feeds whatever joins the rest of the network from before the layer (none at a last layer).
    logits = direction_logits(model, target, prepared[0], directions.T)
    top = max(1, min(int(top_classes), len(model.labels)))
    concepts = []
    for k in range(n):
        probabilities = to_probabilities(model, logits[k])
        order = np.argsort(-probabilities, kind="stable")[:top]
        concepts.append(Concept(
            number=k, colour=COLOURS[k % len(COLOURS)], direction=directions[:, k].astype(np.float32),
            supports=[(int(i), model.labels[i], float(probabilities[i])) for i in order],
            maps=[m.astype(np.float32) for m in _scaled(maps[:, k])], shares=[float(s) for s in shares[:, k]]))
    return Concepts(layer=target.name, concepts=concepts, photos=len(photos))


def _most_present_first(concepts: list[Concept]) -> list[Concept]:
    return sorted(concepts, key=lambda c: (-c.present_in(), -float(np.mean(c.shares))))


def shared_concepts(model, images: Sequence, n: int = DEFAULT_CONCEPTS, layer=None,
                    top_classes: int = 3) -> list[Concept]:
    """The concepts of several photos of one class, factorised together, those present
    in most photos first (see ``Concept.present_in``)."""
    return _most_present_first(find_concepts(model, list(images), n, layer, top_classes).concepts)


@dataclass(frozen=True)
class ConceptStrip:
    """One concept shared across photos, and the photos where it holds the most of their
    concept mass, each tinted by that concept alone: what a strip of thumbnails shows."""

    concept: Concept
    photos: list[int]  # indices into the photos given, the concept's largest share first
    pictures: list[Image.Image] = field(repr=False)


def concept_strips(model, images: Sequence, n: int = DEFAULT_CONCEPTS, layer=None, per_concept: int = 6,
                   top_classes: int = 3, alpha: float = 0.7) -> list[ConceptStrip]:
    """``shared_concepts`` with, for each concept, up to ``per_concept`` of the photos it
    is present in (at least PRESENT of their concept mass; the single strongest photo when
    it is present in none), strongest first, each drawn with that concept alone."""
    photos = [as_image(image) for image in images]
    found = find_concepts(model, photos, n, layer, top_classes)
    strips = []
    for concept in _most_present_first(found.concepts):
        ranked = sorted(range(found.photos), key=lambda i: -concept.shares[i])
        chosen = [i for i in ranked if concept.shares[i] >= PRESENT][:max(1, int(per_concept))] or ranked[:1]
        strips.append(ConceptStrip(concept, chosen, [found.picture(photos[i], photo=i, alpha=alpha,
                                                                   only=concept.number) for i in chosen]))
    return strips
