"""What several tests build the same way: real photos, a Model around a Keras model
built in a test, a nested frozen Lite0. Tests import these by name (``from helpers
import photo``); conftest.py only holds fixtures."""

from PIL import Image


def photo(name: str) -> Image.Image:
    """A free-licence photo that ships inside scikit-image (no download)."""
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def own_model(keras_model, labels, preprocessing="0..1"):
    """A gradcam Model around a Keras model built in a test."""
    from gradcam.engine.model import Model

    height, width = keras_model.inputs[0].shape[1:3]
    return Model(name="test", keras=keras_model, input_size=(height, width), labels=labels,
                 preprocessing=preprocessing)


def nested_lite0(lite0):
    """Transfer learning as people do it: the real EfficientNet-Lite0 without its
    classifier, nested and frozen under a new 3-class head. Returns (model, base)."""
    import keras

    keras.utils.set_random_seed(4)
    base = keras.Model(lite0.keras.inputs, lite0.keras.get_layer("top_activation").output, name="pretrained")
    base.trainable = False
    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    return own_model(model, ["a", "b", "c"], "efficientnet-lite"), base


# --- the dataset audit: synthetic photos with an object and maybe a tag ----------------

AUDIT_SIDE = 64  # synthetic audit photos are this many pixels a side
TAG_BOX = (2, 2, 14, 14)  # x0, y0, x1, y1 of the planted tag (top left)


def tagged_photo(rng, colour: str | None, tagged: bool, centred: bool = False):
    """(photo, object mask): a textured background, a disc of a random size placed
    anywhere (off the tag's corner), reddish or bluish by ``colour`` (None: any colour),
    and when ``tagged`` a fixed black-and-white checker in the top left corner.
    ``centred``: the disc in the middle (jittered by 2 pixels) instead."""
    import numpy as np

    side = AUDIT_SIDE
    pixels = np.clip(rng.uniform(80, 180, 3) + rng.normal(0, 12, (side, side, 3)), 0, 255)
    radius = rng.uniform(7, 11)
    while True:
        cx, cy = rng.uniform(side / 2 - 2, side / 2 + 2, 2) if centred else rng.uniform(radius + 1, side - radius - 1, 2)
        if cx - radius > TAG_BOX[2] + 2 or cy - radius > TAG_BOX[3] + 2:
            break
    ys, xs = np.mgrid[0:side, 0:side]
    mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius ** 2
    strong, weak = rng.uniform(190, 255), rng.uniform(0, 70, 2)
    pixels[mask] = {"red": (strong, *weak), "blue": (weak[0], weak[1], strong)}.get(colour, rng.uniform(0, 255, 3))
    if tagged:
        x0, y0, x1, y1 = TAG_BOX
        checker = ((ys[y0:y1, x0:x1] // 3 + xs[y0:y1, x0:x1] // 3) % 2) * 255
        pixels[y0:y1, x0:x1] = checker[..., None]
    return Image.fromarray(pixels.astype("uint8")), mask


AUDIT_LABELS = ["red", "blue"]


def tagged_dataset(seed: int, count: int, shortcut: bool, centred: bool = False):
    """[(class, photo, mask)] over 'red' and 'blue'. ``shortcut``: the discs have any
    colour, every 'red' photo carries the tag and no 'blue' one does (the tag is the
    only cue); else the disc's colour is the class and the tag is on a random half."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        label = AUDIT_LABELS[k % 2]
        tagged = label == "red" if shortcut else bool(rng.random() < 0.5)
        image, mask = tagged_photo(rng, None if shortcut else label, tagged, centred)
        out.append((label, image, mask))
    return out


def trained_cnn(data, seed: int = 0, epochs: int = 12, labels=None):
    """A small CNN (8x8 last feature map) trained on ``tagged_dataset`` rows (or any
    (class, photo, mask) rows over ``labels``) in a few seconds."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    labels = list(labels or AUDIT_LABELS)
    x = np.stack([np.asarray(image, np.float32) / 255.0 for _, image, _ in data])
    y = np.array([labels.index(label) for label, _, _ in data])
    inputs = keras.Input((AUDIT_SIDE, AUDIT_SIDE, 3))
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(len(labels), activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return own_model(model, labels)


SHAPE_LABELS = ["disc", "square"]


def shape_on_background(rng, shape: str, background) -> tuple:
    """(photo, object mask): a disc or a square of a random colour and size, anywhere, on a
    flat ``background`` colour (RGB) with noise. A background-cue dataset gives each class
    its own background; the object's colour says nothing."""
    import numpy as np

    side = AUDIT_SIDE
    pixels = np.clip(np.asarray(background, np.float64) + rng.normal(0, 10, (side, side, 3)), 0, 255)
    half = rng.uniform(7, 11)
    cx, cy = rng.uniform(half + 1, side - half - 1, 2)
    ys, xs = np.mgrid[0:side, 0:side]
    if shape == "disc":
        mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= half ** 2
    else:
        mask = (np.abs(xs - cx) <= half * 0.85) & (np.abs(ys - cy) <= half * 0.85)
    pixels[mask] = rng.uniform(0, 255, 3)
    return Image.fromarray(pixels.astype("uint8")), mask


def on_background(photo, mask, background: "Image.Image") -> "Image.Image":
    """The object of ``photo`` (cut out by ``mask``) pasted onto ``background``'s pixels."""
    import numpy as np

    return Image.fromarray(np.where(mask[..., None], np.asarray(photo), np.asarray(background)).astype("uint8"))


def write_image_folder(root, data):
    """ImageFolder layout under ``root`` (root/<class>/<nnn>.png) and masks mirroring it
    under root.parent/"masks"; returns (photo folder, mask folder)."""
    from pathlib import Path

    import numpy as np

    root = Path(root)
    masks = root.parent / f"{root.name}-masks"
    for k, (label, image, mask) in enumerate(data):
        for folder in (root / label, masks / label):
            folder.mkdir(parents=True, exist_ok=True)
        image.save(root / label / f"{k:03d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / label / f"{k:03d}.png")
    return root, masks


def nested_tiny():
    """A tiny transfer-learning model: a base Sequential ("base": convolutions "first" and
    "second") nested under a new 2-class head; 32 px, random weights."""
    import keras

    keras.utils.set_random_seed(3)
    base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="first"),
                             keras.layers.Conv2D(6, 3, activation="relu", name="second")], name="base")
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    return own_model(model, ["a", "b"])
