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
