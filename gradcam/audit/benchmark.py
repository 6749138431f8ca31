"""A shortcut benchmark for the audit: photos drawn here, with a parameter for everything.

Two classes, 'disc' and 'box'. Each case is a kind of cue, a photo size, a contrast,
a place and a pair of colours:

- ``corner tag``: a black-and-white checker in a corner;
- ``watermark``: a line of text-like glyphs (the same "text" in every photo) along an edge;
- ``frame``: a coloured border around the whole photo;
- ``background colour``: the background is one colour for 'disc', another for 'box';
- ``background texture``: stripes for 'disc', dots for 'box';
- ``colour cast``: the whole photo tinted warm for 'disc', cool for 'box'.

A **shortcut** case draws objects that say nothing about the class (any shape, any
colour) and puts the cue on the class (the tag on every 'disc' photo and no 'box'
photo; each class its own background, texture or tint): the cue is the only thing a
model can learn. Its **control** draws the same kind of photos, but the object is
the class (a reddish disc or a bluish square) and the cue is at random: a model
trained on it has no reason to look at the cue, and an audit that flags it accuses
falsely. Every photo comes with its object's mask.

``run_case`` trains a tiny CNN on one case in seconds (``tiny_cnn``), audits fresh
photos of the same case with their masks, and reports whether anything was flagged,
next to the model's accuracy on the photos and on the same photos with the cue
swapped (the ground truth: a shortcut model fails there, a control does not).
``DEVELOPED`` are the cases the audit's thresholds were tuned on; ``HELD_OUT`` (other
sizes, contrasts, places and colours) were run only for the final check.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

LABELS = ("disc", "box")
KINDS = ("corner tag", "watermark", "frame", "background colour", "background texture", "colour cast")
PATCH_KINDS = ("corner tag", "watermark")  # small patches: testable without masks too
PLACES = ("top left", "top right", "bottom left", "bottom right")
# Who built the model: the tiny CNN written here, or code nobody here wrote, trained on the case's photos:
# Keras' own MobileNetV2 (keras.applications, weights=None) and KerasHub's ResNet (its own classes and
# preprocessor, trained with its own fit).
MODELS = ("tiny cnn", "keras mobilenetv2", "keras_hub resnet")


@dataclass(frozen=True)
class Case:
    kind: str
    side: int = 64  # photo size in pixels (32 to 224)
    contrast: float = 1.0  # how strongly the cue stands out, 0..1
    shortcut: bool = True  # False: the clean control (the object is the class, the cue at random)
    place: str = "top left"  # corner tag and watermark: where they sit
    colours: tuple = ((200, 70, 50), (50, 110, 210))  # the two cue colours (background, frame, tints)
    seed: int = 0
    model: str = "tiny cnn"  # MODELS: who built the model trained on the case

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Unknown kind {self.kind!r}; choose one of: {', '.join(KINDS)}.")
        if not 16 <= self.side <= 512:
            raise ValueError("side is a photo size from 16 to 512 pixels.")
        if self.place not in PLACES:
            raise ValueError(f"Unknown place {self.place!r}; choose one of: {', '.join(PLACES)}.")
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}; choose one of: {', '.join(MODELS)}.")
        if self.model != "tiny cnn" and self.side < 32:
            raise ValueError(f"The {self.model} model needs photos of 32 pixels or more.")

    @property
    def name(self) -> str:
        return (f"{self.kind}, {self.side} px, contrast {self.contrast:g}, {self.place}, "
                f"{'shortcut' if self.shortcut else 'control'}"
                + ("" if self.model == "tiny cnn" else f", {self.model}"))


# --- drawing ----------------------------------------------------------------------------


def _corner(case: Case, height: int, width: int, margin: int) -> tuple[int, int]:
    """(row, col) of the top-left pixel of a height x width box at the case's place."""
    top = case.place.startswith("top")
    left = case.place.endswith("left")
    return (margin if top else case.side - height - margin, margin if left else case.side - width - margin)


def _cue_box(case: Case) -> tuple[int, int, int, int] | None:
    """(row0, col0, row1, col1) of a patch cue, where objects are not drawn."""
    s = case.side
    if case.kind == "corner tag":
        size = max(4, s // 6)
        r, c = _corner(case, size, size, max(1, s // 32))
        return r, c, r + size, c + size
    if case.kind == "watermark":
        height, width = max(5, s // 8), max(12, s // 2)
        r, c = _corner(case, height, width, max(1, s // 32))
        return r, c, r + height, c + width
    if case.kind == "frame":
        return None
    return None


def _glyphs(case: Case, height: int, width: int) -> np.ndarray:
    """A fixed line of text-like glyphs (strokes on a 3x5 cell grid), 0..1, the same in
    every photo of the case: a watermark is the same text everywhere."""
    rng = np.random.default_rng(1000 + case.seed)
    count = max(3, width // max(4, height * 3 // 5 + 1))
    out = np.zeros((height, width), np.float32)
    cell_w = width / count
    for k in range(count):
        pattern = rng.random((5, 3)) < 0.5
        pattern[:, 1] |= rng.random() < 0.5  # a stem now and then, like letters
        glyph = np.asarray(Image.fromarray(pattern.astype(np.uint8) * 255).resize(
            (max(2, int(cell_w * 0.7)), height), Image.NEAREST), np.float32) / 255
        c0 = int(k * cell_w)
        out[:, c0:c0 + glyph.shape[1]] = np.maximum(out[:, c0:c0 + glyph.shape[1]], glyph[:, :width - c0])
    return out


def _background(case: Case, rng, cue: int | None) -> np.ndarray:
    """The background, (side, side, 3) float 0..255; ``cue`` 0/1 picks the background cue's
    value for the two-valued kinds (None: no background cue)."""
    s = case.side
    grey = rng.uniform(80, 170)
    pixels = np.full((s, s, 3), grey, np.float32) + rng.normal(0, 10, (s, s, 3))
    c = case.contrast
    if case.kind == "background colour" and cue is not None:
        pixels = pixels * (1 - c) + (np.asarray(case.colours[cue], np.float32) + rng.normal(0, 10, (s, s, 3))) * c
    elif case.kind == "background texture" and cue is not None:
        ys, xs = np.mgrid[0:s, 0:s]
        period = max(4, s // 8)
        phase = rng.integers(0, period)
        if cue == 0:  # stripes
            pattern = ((xs + ys + phase) // (period // 2)) % 2
        else:  # dots
            pattern = (((xs + phase) % period) < period // 3) & (((ys + phase) % period) < period // 3)
        pixels = pixels + (pattern.astype(np.float32)[..., None] - 0.5) * 90 * c
    return pixels


def _object(case: Case, rng, label: int | None, avoid) -> tuple[np.ndarray, np.ndarray]:
    """(mask, colour) of one object anywhere off the cue's box. ``label``: the class
    drawn as itself (0: a reddish disc, 1: a bluish square); None: any shape and colour."""
    s = case.side
    shape = label if label is not None else int(rng.integers(0, 2))
    for _ in range(100):
        radius = rng.uniform(0.12, 0.2) * s
        cx, cy = rng.uniform(radius + 1, s - radius - 1, 2)
        if avoid is None:
            break
        r0, c0, r1, c1 = avoid
        if cx + radius < c0 - 1 or cx - radius > c1 + 1 or cy + radius < r0 - 1 or cy - radius > r1 + 1:
            break
    ys, xs = np.mgrid[0:s, 0:s]
    if shape == 0:
        mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius ** 2
    else:
        half = radius * 0.89  # a square of the disc's area
        mask = (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
    if label is None:
        colour = rng.uniform(0, 255, 3)
    else:
        strong, weak = rng.uniform(190, 255), rng.uniform(0, 70, 2)
        colour = np.array([strong, weak[0], weak[1]]) if label == 0 else np.array([weak[0], weak[1], strong])
    return mask, colour


def photo(case: Case, rng, label: int, swap_cue: bool = False) -> tuple[Image.Image, np.ndarray]:
    """One photo of class ``label`` (0 'disc', 1 'box') and its object mask. ``swap_cue``:
    the cue the other class would carry (the counterfactual: the ground truth's test)."""
    if case.shortcut:
        cue = label
    else:
        cue = int(rng.integers(0, 2))
    if swap_cue:
        cue = 1 - cue
    two_valued = case.kind in ("background colour", "background texture", "colour cast")
    pixels = _background(case, rng, cue if two_valued else None)
    avoid = _cue_box(case)
    mask, colour = _object(case, rng, None if case.shortcut else label, avoid)
    pixels[mask] = colour + rng.normal(0, 6, (int(mask.sum()), 3))
    c = case.contrast
    s = case.side
    present = cue == 0  # the patch kinds and the frame: the cue on 'disc' photos (shortcut), or at random
    if case.kind == "corner tag" and present:
        r0, c0, r1, c1 = avoid
        ys, xs = np.mgrid[r0:r1, c0:c1]
        cell = max(1, (r1 - r0) // 4)
        checker = (((ys - r0) // cell + (xs - c0) // cell) % 2 * 255).astype(np.float32)[..., None]
        pixels[r0:r1, c0:c1] = pixels[r0:r1, c0:c1] * (1 - c) + checker * c
    elif case.kind == "watermark" and present:
        r0, c0, r1, c1 = avoid
        ink = _glyphs(case, r1 - r0, c1 - c0)[..., None] * 0.85 * c
        pixels[r0:r1, c0:c1] = pixels[r0:r1, c0:c1] * (1 - ink) + 255 * ink
    elif case.kind == "frame" and present:
        width = max(2, s // 16)
        ring = np.ones((s, s), bool)
        ring[width:-width, width:-width] = False
        pixels[ring] = pixels[ring] * (1 - c) + np.asarray(case.colours[0], np.float32) * c
        mask = mask & ~ring
    elif case.kind == "colour cast":
        tint = np.array([1 + 0.3 * c, 1.0, 1 - 0.3 * c]) if cue == 0 else np.array([1 - 0.3 * c, 1.0, 1 + 0.3 * c])
        pixels = pixels * tint
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), mask


def photos(case: Case, count: int, seed: int, swap_cue: bool = False) -> list[tuple[str, Image.Image, np.ndarray]]:
    """[(class, photo, mask)], the classes in turn."""
    rng = np.random.default_rng([seed, case.seed])
    out = []
    for k in range(count):
        label = k % 2
        image, mask = photo(case, rng, label, swap_cue)
        out.append((LABELS[label], image, mask))
    return out


# --- the model --------------------------------------------------------------------------


def tiny_cnn(case: Case, data, epochs: int = 10, seed: int = 0):
    """A small CNN trained on ``data`` in seconds: a strided first convolution brings large
    photos to about 64 px, then three convolutions (the last, ``last_conv``, is what the
    audit explains) with pooling, global average pooling and a softmax over LABELS."""
    import keras

    from ..engine.model import Model

    keras.utils.set_random_seed(seed)
    side = case.side
    x = np.stack([np.asarray(image, np.float32) / 255.0 for _, image, _ in data])
    y = np.array([LABELS.index(label) for label, _, _ in data])
    inputs = keras.Input((side, side, 3))
    h = keras.layers.Conv2D(16, 3, strides=max(1, side // 64), padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(h)
    network = keras.Model(inputs, outputs)
    network.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    network.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return Model(name=f"benchmark: {case.name}", keras=network, input_size=(side, side), labels=list(LABELS),
                 preprocessing="0..1")


def _pixels(data) -> tuple[np.ndarray, np.ndarray]:
    """(photos as float32 0..255, class indices)."""
    return (np.stack([np.asarray(image, np.float32) for _, image, _ in data]),
            np.array([LABELS.index(label) for label, _, _ in data]))


def keras_mobilenetv2(case: Case, data, epochs: int = 12, seed: int = 0):
    """Keras' own MobileNetV2 (``keras.applications``, weights=None, width 0.35), trained from
    scratch on ``data`` with its own preprocessing (-1..1). Its BatchNormalization layers
    average with momentum 0.9 instead of 0.999: the architecture is Keras', but a few dozen
    steps would leave 0.999's moving statistics at their start and the model guessing at
    inference (a training setting, not a change of the network)."""
    import keras

    from ..engine.model import preprocessing_function
    from ..zoo.own_models import checked_model

    keras.utils.set_random_seed(seed)
    network = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(case.side, case.side, 3),
                                             classes=len(LABELS), classifier_activation="softmax")
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    x, y = _pixels(data)
    network.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    network.fit(preprocessing_function("-1..1")(x), y, epochs=epochs, batch_size=16, verbose=0)
    return checked_model(network, f"benchmark: {case.name}", labels=list(LABELS), preprocessing="-1..1")


def keras_hub_resnet(case: Case, data, epochs: int = 12, seed: int = 0):
    """A small ResNet made with KerasHub's own classes (``ResNetBackbone``, ``ResNetImageClassifier``
    and its preprocessor, scaling pixels by 1/255), trained with KerasHub's own ``fit``, which
    runs the preprocessor on the photos: nothing of ours between the photos and the model."""
    import keras
    import keras_hub

    from ..zoo.own_models import checked_model

    keras.utils.set_random_seed(seed)
    shape = (case.side, case.side, 3)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[5], stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block", image_shape=shape)
    converter = keras_hub.layers.ResNetImageConverter(image_size=(case.side, case.side), scale=1 / 255)
    preprocessor = keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter)
    classifier = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=len(LABELS),
                                                        preprocessor=preprocessor)
    classifier.compile(optimizer=keras.optimizers.Adam(2e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _pixels(data)
    classifier.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return checked_model(classifier, f"benchmark: {case.name}", labels=list(LABELS))


def trained(case: Case, data, epochs: int | None = None):
    """(model, the layer to audit) for the case's MODELS entry. The layer: the tiny CNN's
    ``last_conv``; for the others the deepest stage whose grid has 4 or more cells a side
    (MobileNetV2's last stage at 64 px is 2 x 2, where no region is small)."""
    from ..engine.graph import stage_layers

    if case.model == "tiny cnn":
        return tiny_cnn(case, data, **({} if epochs is None else {"epochs": epochs})), "last_conv"
    build = keras_mobilenetv2 if case.model == "keras mobilenetv2" else keras_hub_resnet
    model = build(case, data, **({} if epochs is None else {"epochs": epochs}))
    fine = [t for t in stage_layers(model) if min(t.shape[0] or 0, t.shape[1] or 0) >= 4]
    return model, (fine[-1].name if fine else None)


def accuracy(model, data) -> float:
    """The share of ``data`` the model answers with its class (the network's own preprocessing)."""
    from ..engine.model import preprocessing_function

    x, _ = _pixels(data)
    p = np.asarray(model.keras(preprocessing_function(model.preprocessing)(x), training=False))
    return float(np.mean([LABELS[int(k)] == label for k, (label, _, _) in zip(p.argmax(axis=1), data)]))


# --- one case ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    case: Case
    flagged: bool  # anything flagged: a flagged cluster or a class whose answer follows the background
    how: str  # what was flagged ("patch", "background", "patch + background", "")
    flagged_without_masks: bool | None  # the audit run again without masks (None: not run)
    accuracy: float  # on the audited photos
    swapped_accuracy: float  # on the same photos with the cue swapped: the ground truth
    reasons: list = field(default_factory=list)

    @property
    def relies(self) -> bool:
        """The ground truth: the model fails once the cue is swapped."""
        return self.swapped_accuracy < 0.6 <= self.accuracy


def _what_was_flagged(found) -> str:
    kinds = (["patch"] if found.flagged else []) + (["background"] if found.flagged_classes else [])
    return " + ".join(kinds)


def run_case(case: Case, train: int = 240, audited: int = 40, epochs: int | None = None, folder=None) -> Result:
    """Train on ``train`` photos of the case, audit ``audited`` fresh ones with their masks
    and without, and say what was flagged."""
    import tempfile
    from pathlib import Path

    from .dataset_audit import audit

    model, layer = trained(case, photos(case, train, seed=1), epochs)
    data = photos(case, audited, seed=2)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(folder or temporary)
        for k, (label, image, mask) in enumerate(data):
            for sub in (root / "photos" / label, root / "masks" / label):
                sub.mkdir(parents=True, exist_ok=True)
            image.save(root / "photos" / label / f"{k:03d}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / label / f"{k:03d}.png")
        found = audit(model, root / "photos", masks=root / "masks", layer=layer)
        # Without masks too, every kind: the patch kinds must be caught there; for the others a
        # flag is a bonus, but a flagged control is a false accusation all the same.
        without = audit(model, root / "photos", layer=layer)
    reasons = [c.reason for c in found.flagged] + [cls.reason for cls in found.flagged_classes]
    return Result(case=case, flagged=bool(found.flagged or found.flagged_classes), how=_what_was_flagged(found),
                  flagged_without_masks=None if without is None else bool(without.flagged),
                  accuracy=accuracy(model, data), swapped_accuracy=accuracy(model, photos(case, audited, 2, True)),
                  reasons=reasons)


# --- the matrix -------------------------------------------------------------------------


def _both(case: Case) -> list[Case]:
    return [case, replace(case, shortcut=False)]


DEVELOPED = [c for kind in KINDS for side in (32, 64) for c in _both(Case(kind, side))]
HELD_OUT = [c for kind, side, contrast, place, colours in (
    ("corner tag", 48, 0.7, "bottom right", ((0, 0, 0), (0, 0, 0))),
    ("corner tag", 128, 1.0, "top right", ((0, 0, 0), (0, 0, 0))),
    ("watermark", 96, 0.8, "bottom left", ((0, 0, 0), (0, 0, 0))),
    ("watermark", 224, 1.0, "bottom right", ((0, 0, 0), (0, 0, 0))),
    ("frame", 48, 0.7, "top left", ((40, 160, 60), (0, 0, 0))),
    ("frame", 128, 1.0, "top left", ((230, 210, 40), (0, 0, 0))),
    ("background colour", 96, 0.6, "top left", ((90, 150, 90), (150, 110, 160))),
    ("background colour", 224, 1.0, "top left", ((230, 200, 120), (60, 60, 60))),
    ("background texture", 48, 0.7, "top left", ((0, 0, 0), (0, 0, 0))),
    ("background texture", 128, 1.0, "top left", ((0, 0, 0), (0, 0, 0))),
    ("colour cast", 96, 0.7, "top left", ((0, 0, 0), (0, 0, 0))),
    ("colour cast", 224, 1.0, "top left", ((0, 0, 0), (0, 0, 0))),
) for c in _both(Case(kind, side, contrast, place=place, colours=colours, seed=7))]


# Models nobody here wrote: each kind at 64 px (as DEVELOPED's) and a held-out size, other places and colours.
OUTSIDE = [c for model in MODELS[1:] for kind in KINDS for c in _both(Case(kind, 64, model=model))]
OUTSIDE_HELD_OUT = [c for model in MODELS[1:] for kind, side, place, colours in (
    ("corner tag", 96, "bottom right", ((0, 0, 0), (0, 0, 0))),
    ("watermark", 96, "top right", ((0, 0, 0), (0, 0, 0))),
    ("background colour", 96, "top left", ((120, 160, 80), (170, 120, 150))),
) for c in _both(Case(kind, side, 0.8, place=place, colours=colours, seed=11, model=model))]


def table(results: list[Result]) -> str:
    """Recall per kind on the shortcut models that learned their cue (the ground truth:
    they fail once it is swapped), false flags on the controls, as text; per model kind
    when there are several, and the patch kinds without masks when they were run. A
    shortcut model that did not learn its cue has no shortcut to find: it is counted apart."""
    without = any(r.flagged_without_masks is not None for r in results)
    lines = [f"{'kind':<20} {'shortcuts caught':>17} {'controls flagged':>17} {'did not learn':>14}  sizes"
             + ("  | without masks: caught, controls flagged" if without else "")]
    models = [m for m in MODELS if any(r.case.model == m for r in results)]
    for model in models:
        if len(models) > 1:
            lines.append(f"{model}:")
        for kind in KINDS:
            mine = [r for r in results if r.case.kind == kind and r.case.model == model]
            if not mine:
                continue
            cheats = [r for r in mine if r.case.shortcut and r.relies]
            unlearned = [r for r in mine if r.case.shortcut and not r.relies]
            clean = [r for r in mine if not r.case.shortcut]
            sizes = ", ".join(str(s) for s in sorted({r.case.side for r in mine}))
            line = (f"{kind:<20} {sum(r.flagged for r in cheats):>8} of {len(cheats):<6} "
                    f"{sum(r.flagged for r in clean):>8} of {len(clean):<6} {len(unlearned):>14}  {sizes}")
            if any(r.flagged_without_masks is not None for r in mine):
                line += (f"  | {sum(bool(r.flagged_without_masks) for r in cheats)} of {len(cheats)}, "
                         f"{sum(bool(r.flagged_without_masks) for r in clean)} of {len(clean)}")
            lines.append(line)
    return "\n".join(lines)
