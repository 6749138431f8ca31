"""Loading models: built-in names, a user's own file (safely), labels files."""

import io
import json

import keras
import numpy as np
import pytest

import gradcam
from gradcam.zoo.labels import imagenet_labels, parse_labels


def small_classifier(classes=3, activation="softmax", rescale=False):
    keras.utils.set_random_seed(11)
    inputs = keras.Input((40, 40, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs) if rescale else inputs
    x = keras.layers.Conv2D(6, 3, activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))


def saved(model, tmp_path, name="model.keras"):
    path = tmp_path / name
    model.save(path)
    return path


def test_available_models_lists_offline_models_first():
    names = [name for name, _ in gradcam.available_models()]
    assert names[:3] == ["EfficientNet-Lite0", "EfficientNet-Lite1", "EfficientNet-Lite2"]
    assert {"VGG16", "ResNet50", "MobileNetV2", "EfficientNetB0", "InceptionV3", "DenseNet121"} <= set(names)
    assert gradcam.DEFAULT_MODEL == "EfficientNet-Lite0"


def test_imagenet_labels_are_the_1000_classes():
    labels = imagenet_labels()
    assert len(labels) == 1000 == len(set(labels))
    assert (labels[0], labels[285], labels[967]) == ("tench", "Egyptian cat", "espresso")


def test_keras_application_offline_names_the_weights_file_and_where_it_goes(tmp_path, monkeypatch):
    """Whatever the network does, a failed download becomes one sentence that names
    the file and the folder Keras reads it from."""
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(gradcam.ModelLoadError) as error:
        gradcam.load_model("MobileNetV2")
    message = str(error.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in message
    assert str(tmp_path / "models") in message and "\n" not in message


@pytest.mark.parametrize("name,size", [("ResNet50", 224), ("InceptionV3", 299)])
def test_keras_applications_explain_with_their_own_input_size(name, size, cat):
    model = gradcam.load_model(name, weights=None)
    assert model.input_size == (size, size) and len(model.labels) == 1000
    explanation = gradcam.explain(model, cat)
    assert explanation.heatmap.shape == (cat.height, cat.width)


def test_own_keras_file_with_text_labels_and_preprocessing(tmp_path, cat):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    model = gradcam.load_model(saved(small_classifier(), tmp_path), labels=labels, preprocessing="-1..1")
    assert (model.input_size, model.labels, model.preprocessing) == ((40, 40), ["cat", "dog", "bird"], "-1..1")
    assert [t.name for t in gradcam.target_layers(model)] == ["features"]
    assert gradcam.explain(model, cat, target="dog").label == "dog"


def test_own_model_from_bytes_and_h5(tmp_path, cat):
    keras_model = small_classifier()
    from_bytes = gradcam.load_model(saved(keras_model, tmp_path).read_bytes())
    h5_path = tmp_path / "model.h5"
    keras_model.save(h5_path)
    from_h5 = gradcam.load_model(h5_path)
    a, b = gradcam.explain(from_bytes, cat, target=1), gradcam.explain(from_h5, cat, target=1)
    assert np.allclose(a.raw, b.raw, atol=1e-6)


def test_preprocessing_defaults_to_none_when_the_model_rescales_itself(tmp_path):
    assert gradcam.load_model(saved(small_classifier(rescale=True), tmp_path)).preprocessing == "none"
    assert gradcam.load_model(saved(small_classifier(), tmp_path, "plain.keras")).preprocessing == "0..1"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("a\nb\nc\n\n", ["a", "b", "c"]),
        ('["a", "b", "c"]', ["a", "b", "c"]),
        ('{"2": "c", "0": "a", "1": "b"}', ["a", "b", "c"]),
        ('{"0": ["n1", "a"], "1": ["n2", "b"], "2": ["n3", "c"]}', ["a", "b", "c"]),
        ("<b>bold</b>\nb\nc", ["<b>bold</b>", "b", "c"]),  # kept as text; never rendered
    ],
)
def test_labels_files_in_every_accepted_form(text, expected):
    assert parse_labels(text.encode(), 3) == expected


@pytest.mark.parametrize(
    "data,words",
    [
        (b"a\nb\n", "has 2 labels but the model has 3 outputs"),
        (b"", "empty"),
        (b'{"a": 1}', "class numbers"),
        (b"[1, 2", "cannot be read as JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_bad_labels_files_say_what_is_wrong(data, words):
    with pytest.raises(gradcam.ModelLoadError, match=words):
        parse_labels(data, 3)


def two_inputs():
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3)(keras.layers.Concatenate()([a, b]))
    return keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Flatten()(x)))


def no_feature_map():
    inputs = keras.Input((10,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def dense_only_image_model():
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))


@pytest.mark.parametrize(
    "build,words",
    [(two_inputs, "2 inputs"), (no_feature_map, "not an image"), (dense_only_image_model, "no convolutional layer")],
)
def test_models_grad_cam_cannot_explain_are_refused(tmp_path, build, words):
    with pytest.raises(gradcam.ModelLoadError, match=words):
        gradcam.load_model(saved(build(), tmp_path))


def test_lambda_layer_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "ran.txt"
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3)(inputs)
    # The lambda's code touches a marker file when it runs; its path is a constant in the code.
    touching = eval(f"lambda t: t * 2 if __import__('pathlib').Path({str(marker)!r}).touch() is None else t")
    x = keras.layers.Lambda(touching)(x)
    path = saved(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x))), tmp_path)
    marker.unlink(missing_ok=True)  # saving traced the lambda once; start clean
    with pytest.raises(gradcam.ModelLoadError, match="Lambda"):
        gradcam.load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "data,words",
    [
        (b"", "empty"),
        (b"just some text", "not a Keras model"),
        (b"PK\x03\x04" + b"\x00" * 100, "damaged"),
        (b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, "damaged"),
    ],
)
def test_broken_model_files_give_one_sentence(data, words):
    with pytest.raises(gradcam.ModelLoadError, match=words) as error:
        gradcam.load_model(data)
    assert "\n" not in str(error.value) and str(error.value).endswith(".")


def test_a_truncated_keras_file_is_refused(tmp_path):
    data = saved(small_classifier(), tmp_path).read_bytes()
    with pytest.raises(gradcam.ModelLoadError, match="damaged"):
        gradcam.load_model(io.BytesIO(data[: len(data) // 2]))


def test_wrong_label_count_for_an_own_model(tmp_path):
    with pytest.raises(gradcam.ModelLoadError, match="has 2 labels but the model has 3 outputs"):
        gradcam.load_model(saved(small_classifier(), tmp_path), labels=json.dumps(["a", "b"]).encode())


def test_regression_model_is_explained_as_the_output(tmp_path, cat):
    model = gradcam.load_model(saved(small_classifier(classes=1, activation=None), tmp_path))
    assert model.labels == ["the output"]
    explanation = gradcam.explain(model, cat)
    assert explanation.label == "the output" and explanation.heatmap.shape == (cat.height, cat.width)
