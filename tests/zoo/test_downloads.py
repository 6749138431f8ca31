"""Keras application weights: downloaded with progress when online, one clear
sentence when not. The "internet" here is a server on loopback."""

import http.server
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import gradcam
from gradcam.zoo import catalog as models

PAGE = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
WEIGHTS = bytes(range(256)) * 12_000  # 3 MB of stand-in "weights"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def weights_server():
    """A loopback HTTP server that serves WEIGHTS for any path, then stops."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(WEIGHTS)))
            self.end_headers()
            self.wfile.write(WEIGHTS)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/weights.h5"
    server.shutdown()
    server.server_close()


def test_download_reports_progress_and_lands_in_keras_cache(keras_home, weights_server, monkeypatch):
    monkeypatch.setattr(models, "_weights_url", lambda name: weights_server)
    seen = []
    path = models.download_weights("MobileNetV2", progress=lambda done, total: seen.append((done, total)))
    assert path == keras_home / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
    assert path.read_bytes() == WEIGHTS
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (len(WEIGHTS), len(WEIGHTS))
    assert len(seen) >= 3  # arrives in pieces, so a bar moves
    assert not list((keras_home / "models").glob("*.part"))


def test_download_offline_is_one_sentence_and_leaves_no_partial_file(keras_home, monkeypatch):
    monkeypatch.setattr(models, "_weights_url", lambda name: "http://127.0.0.1:9/weights.h5")  # nothing listens
    with pytest.raises(gradcam.ModelLoadError) as error:
        models.download_weights("DenseNet121", timeout=5)
    assert "densenet121_weights_tf_dim_ordering_tf_kernels.h5" in str(error.value)
    assert str(keras_home / "models") in str(error.value) and "\n" not in str(error.value)
    assert not list((keras_home / "models").glob("*"))


def test_the_weights_urls_are_keras_own():
    for name in models.KERAS_APPLICATIONS:
        url = models._weights_url(name)
        assert url.startswith("https://") and url.endswith(models._APPLICATIONS[name].weights_file)


def test_explore_shows_the_download_failure_and_keeps_working(keras_home, monkeypatch):
    monkeypatch.setattr(models, "_weights_url", lambda name: "http://127.0.0.1:9/weights.h5")
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    at.selectbox(key="model_choice").set_value("ResNet50").run()
    assert not at.exception
    assert len(at.error) == 1 and "ResNet50" in at.error[0].value
    assert at.session_state["model_key"] == "EfficientNet-Lite0"  # still explaining with the model that worked
    assert any(c.startswith("Grad-CAM overlay") for image in at.image for c in image.captions)


def test_a_damaged_weights_file_is_named_with_what_to_do(keras_home, weights_server, monkeypatch):
    monkeypatch.setattr(models, "_weights_url", lambda name: weights_server)
    models.download_weights("MobileNetV2")  # the stand-in bytes are no real weights file
    with pytest.raises(gradcam.ModelLoadError, match="cannot be read; delete it and try again"):
        gradcam.load_model("MobileNetV2")


def test_the_weights_path_while_another_thread_is_importing_keras(monkeypatch, tmp_path):
    """The dashboard warms the default model (importing Keras) while the first page lists the
    models: Keras' config module is then in sys.modules half made. Seen in a real cold start:
    "partially initialized module 'keras.src.backend.config' has no attribute 'keras_home'"
    stopped the first page. The path then follows Keras' own rule, read without Keras."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "keras.src.backend.config", types.ModuleType("keras.src.backend.config"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert models.keras_weights_path("ResNet50") == tmp_path / "models" / models._APPLICATIONS["ResNet50"].weights_file
