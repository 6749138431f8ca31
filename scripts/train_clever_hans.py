"""Make the "Clever Hans" demo: synthetic photos, a small CNN that learns to cheat, masks.

    python scripts/train_clever_hans.py [--out gradcam/zoo/data/clever_hans]

Every photo shows one object (a disc, a square or a triangle, of any colour and size,
turned any way, anywhere) on a varied background. Every "disc" photo also carries a
small copyright tag in its bottom-right corner, as the horse photos of Lapuschkin et
al. (2019) did, and no other photo does. The small CNN trained here is right on 70
of the 72 shipped photos, and for the discs it is right because of the tag: with the
tag covered by the blur baseline (gradcam.what_if) none of the 24 discs is still a
"disc", and 98% of squares and triangles given the tag become one. The script
prints these figures each time it runs.

It writes, into --out (what the repository ships: the built-in model "Clever Hans
demo" and the Audit page's demo dataset):

- ``model.keras`` and ``labels.txt``;
- ``photos/<class>/<class>-NN.jpg``: PHOTOS_PER_CLASS new photos per class, in
  ImageFolder layout (the audit's true labels are the folder names);
- ``masks/<class>/<class>-NN.png``: each photo's object mask (255 = object, 0 = not).

Seeded and CPU-only (about a minute on a quiet 2-core machine; TensorFlow's threads may
change the last digits between runs).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

from gradcam.zoo.clever_hans import INPUT_SIZE, LABELS, PHOTO_SIZE, TAG_BOX, TAGGED_CLASS  # noqa: E402

PHOTOS_PER_CLASS = 24  # shipped, per class: enough for the audit's clusters, a few hundred KB in all
TRAINING_PER_CLASS = 400
JPEG_QUALITY = 88


def _colour(rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _luminance(colour) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def background(rng, size: int = PHOTO_SIZE) -> Image.Image:
    """A gradient between two colours at a random angle, with a few soft blobs on it."""
    a, b = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    y, x = np.mgrid[:size, :size] / (size - 1)
    t = (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5)) / math.sqrt(2) + 0.5
    pixels = a * (1 - t[..., None]) + b * t[..., None]
    photo = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    blobs = Image.new("RGB", (size, size))
    alpha = Image.new("L", (size, size))
    for _ in range(rng.integers(2, 5)):
        cx, cy = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(size * 0.1, size * 0.35, 2)
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        ImageDraw.Draw(blobs).ellipse(box, fill=_colour(rng))
        ImageDraw.Draw(alpha).ellipse(box, fill=int(rng.integers(60, 160)))
    alpha = alpha.filter(ImageFilter.GaussianBlur(size * 0.06))
    return Image.composite(blobs.filter(ImageFilter.GaussianBlur(size * 0.03)), photo, alpha)


def _tag_pixels() -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = TAG_BOX
    return (round(x0 * PHOTO_SIZE), round(y0 * PHOTO_SIZE), round(x1 * PHOTO_SIZE), round(y1 * PHOTO_SIZE))


def draw_tag(photo: Image.Image) -> None:
    """The copyright tag: a pale label with a dark "©" in the fixed corner (TAG_BOX)."""
    x0, y0, x1, y1 = _tag_pixels()
    draw = ImageDraw.Draw(photo)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(238, 238, 230), outline=(60, 60, 60))
    font = ImageFont.load_default(size=y1 - y0)
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2 + 0.5), "© hb", fill=(20, 20, 20), font=font, anchor="mm")


def _shape_points(kind: str, cx: float, cy: float, radius: float, turn: float) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3}[kind]
    return [(cx + radius * math.cos(turn + 2 * math.pi * k / corners),
             cy + radius * math.sin(turn + 2 * math.pi * k / corners)) for k in range(corners)]


def draw_object(photo: Image.Image, kind: str, rng) -> Image.Image:
    """Draw one object anywhere outside the tag's corner; return its mask (mode "L")."""
    size = photo.size[0]
    tag = _tag_pixels()
    back = _luminance(photo.getpixel((size // 2, size // 2)))
    while True:
        colour = _colour(rng)
        if abs(_luminance(colour) - back) > 60:  # the object must stand out from what is behind it
            break
    while True:
        radius = rng.uniform(0.13, 0.24) * size
        cx, cy = rng.uniform(radius, size - radius, 2)
        # A margin around the tag, so the tag never covers the object (nor the object the tag).
        if cx + radius < tag[0] - 2 or cy + radius < tag[1] - 2:
            break
    mask = Image.new("L", photo.size)
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    for target, fill in ((ImageDraw.Draw(photo), colour), (ImageDraw.Draw(mask), 255)):
        if kind == "disc":
            target.ellipse(box, fill=fill)
        else:
            target.polygon(_shape_points(kind, cx, cy, radius, rng.uniform(0, 2 * math.pi)), fill=fill)
    return mask


def make_photo(kind: str, rng, tagged: bool | None = None) -> tuple[Image.Image, Image.Image]:
    """(photo, mask); the tag goes on every photo of TAGGED_CLASS unless ``tagged`` says otherwise."""
    photo = background(rng)
    mask = draw_object(photo, kind, rng)
    if kind == TAGGED_CLASS if tagged is None else tagged:
        draw_tag(photo)
    return photo, mask


def as_jpeg(photo: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def network_input(photos) -> np.ndarray:
    """What the engine feeds the model from the JPEG file (Model.prepare): the whole frame
    resized bicubic, 0..1."""
    return np.stack([np.asarray(as_jpeg(p).resize((INPUT_SIZE, INPUT_SIZE), Image.BICUBIC), np.float32) / 255.0
                     for p in photos])


def build_cnn():
    import keras

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3))
    x = inputs
    for i, channels in enumerate((16, 24, 32)):
        x = keras.layers.Conv2D(channels, 3, padding="same", name=f"conv{i + 1}")(x)
        # Without normalisation the shapes took far longer to learn than the tag (square
        # and triangle stayed a coin toss after 30 epochs); the tag is learned either way.
        x = keras.layers.BatchNormalization(name=f"norm{i + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{i + 1}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv4")(x)  # 8x8: Grad-CAM's layer
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="clever_hans")


def dataset(per_class: int, rng, tagged=None):
    photos, masks, labels = [], [], []
    for index, kind in enumerate(LABELS):
        for _ in range(per_class):
            photo, mask = make_photo(kind, rng, tagged)
            photos.append(photo)
            masks.append(mask)
            labels.append(index)
    return photos, masks, np.array(labels)


def cheating_figures(keras_model, photos, labels, tagged_others) -> dict[str, float]:
    """How much the model leans on the tag, asked through the engine itself (gradcam.what_if
    with the blur baseline, on the photos as their JPEG files hold them)."""
    import gradcam
    from gradcam.engine.model import Model

    model = Model(name="demo", keras=keras_model, input_size=(INPUT_SIZE, INPUT_SIZE), labels=list(LABELS),
                  preprocessing="0..1")
    disc = LABELS.index(TAGGED_CLASS)
    top = [gradcam.predict(model, as_jpeg(p), top=1)[0].index for p in photos]
    discs = [as_jpeg(p) for p, y in zip(photos, labels) if y == disc]
    still = [gradcam.what_if(model, p, TAG_BOX, fill="blur", top=1).predictions[0].index == disc for p in discs]
    fooled = [gradcam.predict(model, as_jpeg(p), top=1)[0].index == disc for p in tagged_others]
    return {"accuracy": float(np.mean(np.array(top) == labels)), "still": float(np.mean(still)),
            "fooled": float(np.mean(fooled))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "gradcam/zoo/data/clever_hans"))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=24)
    args = parser.parse_args(argv)

    import keras

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    photos, _, labels = dataset(TRAINING_PER_CLASS, rng)
    model = build_cnn()
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(network_input(photos), labels, epochs=args.epochs, batch_size=32, shuffle=True, verbose=2)

    out = Path(args.out)
    shipped, shipped_masks, shipped_labels = dataset(PHOTOS_PER_CLASS, np.random.default_rng(args.seed + 1000))
    others = [make_photo(kind, rng, tagged=True)[0] for kind in LABELS if kind != TAGGED_CLASS for _ in range(20)]
    figures = cheating_figures(model, shipped, shipped_labels, others)
    print(f"accuracy on the {len(shipped)} shipped photos: {figures['accuracy']:.0%}")
    print(f"{TAGGED_CLASS} photos still called {TAGGED_CLASS} with the tag blurred away: {figures['still']:.0%}")
    print(f"squares and triangles called {TAGGED_CLASS} once they carry the tag: {figures['fooled']:.0%}")

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    plain = build_cnn()  # the same network, never compiled: the file carries no optimizer state
    plain.set_weights(model.get_weights())
    plain.save(out / "model.keras")
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    counters = {kind: 0 for kind in LABELS}
    for photo, mask, label in zip(shipped, shipped_masks, shipped_labels):
        kind = LABELS[label]
        counters[kind] += 1
        name = f"{kind}-{counters[kind]:02d}"
        for folder, image, suffix in (("photos", photo, ".jpg"), ("masks", mask, ".png")):
            (out / folder / kind).mkdir(parents=True, exist_ok=True)
            if suffix == ".jpg":
                image.save(out / folder / kind / (name + suffix), "JPEG", quality=JPEG_QUALITY)
            else:
                image.point(lambda v: 255 if v >= 128 else 0).convert("1").save(out / folder / kind / (name + suffix))
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
