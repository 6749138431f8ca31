"""Nothing a user uploads is kept or leaks: no disk writes, no network, bounded
caches, protections left on, no user text as HTML."""

import ast
import io
import socket
import sys
import tomllib
from pathlib import Path

import keras
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import gradcam
from dashboard.runtime import explanation_cache, long_jobs, model_cache

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "streamlit_app.py")


class WriteWatch:
    """Every file opened for writing (or created) in this process while active.

    An audit hook sees opens from Python, Keras, h5py's Python layer and Pillow
    alike; it cannot be removed, so it only records while switched on."""

    def __init__(self):
        self.active = False
        self.writes: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if not self.active:
            return
        if event == "open" and args and isinstance(args[0], (str, bytes, Path)):
            mode, flags = (args[1] or "r"), (args[2] or 0)
            import os

            writing = any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writing:
                self.writes.append(str(args[0]))
        elif event in ("os.mkdir", "os.rename", "os.replace", "shutil.copyfile", "tempfile.mkstemp", "tempfile.mkdtemp"):
            self.writes.append(f"{event}: {args[0] if args else ''}")


@pytest.fixture(scope="module")
def write_watch():
    return WriteWatch()


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def small_model_bytes(tmp_path) -> bytes:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(tmp_path / "m.keras")
    return (tmp_path / "m.keras").read_bytes()


def test_uploads_and_explanations_write_nothing_to_disk(write_watch, tmp_path, coffee):
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    model_bytes = small_model_bytes(tmp_path)  # made before watching: the test's own file
    write_watch.active = True
    (tmp_path / "probe.txt").write_text("the watch must see this")  # proves the watch works
    assert write_watch.writes == [str(tmp_path / "probe.txt")]
    write_watch.writes.clear()
    try:
        at.file_uploader(key="upload").set_value(("mine.jpg", jpeg(coffee), "image/jpeg"))
        at.run()
        at.selectbox(key="layer").set_value("block10_add")
        at.run()
        at.selectbox(key="model_choice").set_value("Upload a Keras model...")
        at.run()
        at.file_uploader(key="model_upload").set_value(("mine.keras", model_bytes, "application/octet-stream"))
        at.file_uploader(key="labels_upload").set_value(("labels.txt", b"a\nb\nc\n", "text/plain"))
        at.run()
    finally:
        write_watch.active = False
    assert not at.exception and not at.error
    assert at.session_state["model_key"].startswith("own:")
    # Python may write bytecode caches of modules imported for the first time; nothing else.
    assert [w for w in write_watch.writes if "__pycache__" not in w] == []


def test_offline_models_never_open_a_network_connection(monkeypatch, tmp_path, cat):
    attempts = []
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")):
            return real_connect(self, address)
        attempts.append(address)
        raise OSError("network blocked by the test")

    def guarded_lookup(host, *args, **kwargs):
        attempts.append(("getaddrinfo", host))
        raise socket.gaierror("name lookups blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    monkeypatch.setenv("GRADCAM_CACHE_DIR", str(tmp_path))  # convert from scratch, offline
    for name in ("EfficientNet-Lite0", "EfficientNet-Lite1"):
        model = gradcam.load_model(name)
        assert gradcam.explain(model, cat).label in {"Egyptian cat", "tabby", "tiger cat"}
    assert attempts == []


def test_keras_downloads_fail_fast_with_the_network_blocked(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(socket.gaierror("blocked")))
    with pytest.raises(gradcam.ModelLoadError, match="without internet"):
        gradcam.load_model("DenseNet121")


def test_every_cache_of_the_dashboard_is_bounded():
    caches = {name: explanation_cache for name in ("display_image", "_explain_top5", "_explain_class", "_explain_timed")}
    caches.update(builtin_model=model_cache, own_model=model_cache)
    for name, module in caches.items():
        info = getattr(module, name)._info
        assert info.max_entries is not None, name
    for name in ("display_image", "_explain_top5", "_explain_class", "_explain_timed"):
        assert getattr(explanation_cache, name)._info.max_size_bytes is not None, name
    # Score-CAM and Ablation-CAM results live outside st.cache_data (their progress bar
    # must not be replayed): that cache is bounded by count, and each entry is small.
    assert 0 < long_jobs.KEPT_RESULTS <= 256


def test_server_configuration_keeps_protections_on():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["client"]["showErrorDetails"] == "none"
    assert config["browser"]["gatherUsageStats"] is False
    assert 0 < config["server"]["maxUploadSize"] <= 500


def _html_calls(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            unsafe = any(k.arg == "unsafe_allow_html" and getattr(k.value, "value", False) for k in node.keywords)
            if name == "html" or unsafe:
                yield node


def test_raw_html_is_only_ever_our_own_constant_text():
    pages = sorted((ROOT / "dashboard" / "pages").glob("*.py"))
    assert pages, "the pages moved: point this check at them"
    sources = [ROOT / "streamlit_app.py", ROOT / "explorer.py", *sorted((ROOT / "dashboard").rglob("*.py"))]
    for path in sources:
        constants = _module_string_constants(path)
        for call in _html_calls(path):
            first = call.args[0] if call.args else None
            assert _own_text(first, constants), f"{path.name}:{call.lineno} passes computed text as HTML"


def _module_string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {target.id for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for target in node.targets if isinstance(target, ast.Name)}


def _own_text(node, constants: set[str]) -> bool:
    """A string literal, a module-level string constant, or such a constant filled with
    ``json.dumps(<st.Page>.title)``: the sidebar script names the page it runs on, and
    the page titles are the app's own words, never user text."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        right = node.right
        return (_own_text(node.left, constants) and isinstance(right, ast.Call)
                and ast.unparse(right.func) == "json.dumps" and len(right.args) == 1
                and isinstance(right.args[0], ast.Attribute) and right.args[0].attr == "title")
    return False
