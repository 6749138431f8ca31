"""A model may have at most 100,000 classes (ImageNet-21k has 21,843): a Dense(1,000,000)
head is an 8 MB file whose every class would become a name and a picker option."""

import keras
import pytest

import gradcam
from gradcam.zoo.own_models import MAX_CLASSES


def keras_file(classes: int, tmp_path) -> bytes:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(1, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(classes)(x)).save(tmp_path / "wide.keras")
    return (tmp_path / "wide.keras").read_bytes()


def test_more_than_100000_classes_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(gradcam.ModelLoadError) as refused:
        gradcam.load_model(keras_file(MAX_CLASSES + 1, tmp_path))
    assert str(refused.value) == "The model has 100,001 classes; the limit is 100,000."


def test_an_imagenet_21k_sized_head_loads(tmp_path):
    model = gradcam.load_model(keras_file(21_843, tmp_path))
    assert len(model.labels) == 21_843 and model.labels[21_842] == "class 21842"
