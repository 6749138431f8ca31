"""The offline EfficientNet-Lite models are real ImageNet classifiers after conversion."""

import pickle
import struct

import numpy as np
import pytest

import gradcam
from gradcam.zoo import efficientnet_lite
from gradcam.zoo.torch_legacy import read_state_dict

CATS = {"Egyptian cat", "tabby", "tiger cat"}
COFFEE = {"espresso", "cup", "coffee mug"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["EfficientNet-Lite0", "EfficientNet-Lite1", "EfficientNet-Lite2"])
def test_each_lite_model_recognises_real_photos(name, cat, coffee):
    model = gradcam.load_model(name)
    assert gradcam.predict(model, cat)[0].label in CATS
    top = gradcam.predict(model, coffee)[0]
    assert top.label == "espresso" and top.probability > 0.5
    # Probabilities of a softmax classifier: all 1000 sum to one.
    everything = gradcam.predict(model, cat, top=1000)
    assert sum(p.probability for p in everything) == pytest.approx(1.0, abs=1e-4)


def test_lite0_agrees_with_published_sanity_figures(lite0, coffee):
    # DESIGN.md: a coffee-cup photo -> espresso (~0.9) with the original port.
    assert gradcam.predict(lite0, coffee)[0].probability == pytest.approx(0.9, abs=0.05)


def test_conversion_is_cached_and_reloaded(tmp_path, monkeypatch, cat):
    monkeypatch.setenv(efficientnet_lite.CACHE_ENV, str(tmp_path))
    converted = gradcam.load_model("EfficientNet-Lite0")
    cached = list(tmp_path.glob("*.keras"))
    assert [p.name for p in cached] == ["efficientnet-lite0-57934424.keras"]
    reloaded = gradcam.load_model("EfficientNet-Lite0")
    first, again = gradcam.predict(converted, cat), gradcam.predict(reloaded, cat)
    assert [p.index for p in first] == [p.index for p in again]
    assert np.allclose([p.probability for p in first], [p.probability for p in again], atol=1e-6)


def test_a_damaged_cache_entry_is_converted_again(tmp_path, monkeypatch, cat):
    monkeypatch.setenv(efficientnet_lite.CACHE_ENV, str(tmp_path))
    (tmp_path / "efficientnet-lite0-57934424.keras").write_bytes(b"half a file")
    model = gradcam.load_model("EfficientNet-Lite0")
    assert gradcam.predict(model, cat)[0].label in CATS


def test_state_dict_reader_reads_every_tensor():
    state = read_state_dict(efficientnet_lite.weights_file("efficientnet-lite0"))
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype.kind == "f")


def _legacy_file(path, state_pickle: bytes):
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f)
        f.write(state_pickle)
        pickle.dump([], f)


def test_state_dict_reader_refuses_code_in_the_file(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    _legacy_file(path, pickle.dumps({"w": Evil()}))
    with pytest.raises(gradcam.ModelLoadError, match="refusing"):
        read_state_dict(path)
    assert not marker.exists()


def test_state_dict_reader_rejects_other_files(tmp_path):
    path = tmp_path / "not.pth"
    path.write_bytes(pickle.dumps(12345) + struct.pack("<q", 0))
    with pytest.raises(gradcam.ModelLoadError, match="not a legacy PyTorch weights file"):
        read_state_dict(path)
