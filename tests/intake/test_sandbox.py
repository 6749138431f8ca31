"""Untrusted files are read in a sandboxed worker; hostile model files are refused
from what they declare, before Keras does any work.

Every hostile input is built here. Each test asserts the sentence, the exception
type, a generous time bound, and that the process (and another caller) still works.
"""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import gradcam
import sandbox_helpers
from gradcam.intake import model_budget, sandbox
from gradcam.intake.images import DISPLAY_MAX_SIDE

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SMALL = sandbox.Budget(memory_mb=256, cpu_seconds=2, wall_seconds=4)
SAFELY = "This file could not be read safely"


def assert_sentence(message: str, phrase: str) -> None:
    assert phrase.casefold() in message.casefold(), message
    assert "\n" not in message and message.endswith("."), message
    assert "Traceback" not in message and "Error" not in message, message


@pytest.fixture
def pool():
    """A pool with small budgets, so each failure mode is quick to reach."""
    pool = sandbox.Pool("image", 2, SMALL, gradcam.InvalidImageError)
    pool.start()
    yield pool
    pool.close()


def still_answers(pool: sandbox.Pool) -> int:
    """Another task in the same pool still gets its answer; returns the worker's pid."""
    reply = pool.run(sandbox_helpers.echo_length, b"12345")
    assert reply["length"] == 5
    return reply["pid"]


# --- the worker: each failure mode on purpose ----------------------------------------


# On a busy machine a CPU second takes several wall seconds: each case gets the budget
# that makes its own limit the one that trips.
CPU_FIRST = sandbox.Budget(memory_mb=256, cpu_seconds=1, wall_seconds=120)
WALL_FIRST = sandbox.Budget(memory_mb=256, cpu_seconds=60, wall_seconds=3)


@pytest.mark.parametrize("task, budget, phrase", [
    pytest.param(sandbox_helpers.segfault, SMALL, "it crashed the reader", id="sigsegv"),
    pytest.param(sandbox_helpers.spin, CPU_FIRST, "it needed more than 1 second.", id="cpu-forever"),
    pytest.param(sandbox_helpers.sleep, WALL_FIRST, "it needed more than 3 seconds", id="sleep-forever"),
    pytest.param(sandbox_helpers.allocate, SMALL, "it needed more than 256 MB of memory", id="8-GB"),
    pytest.param(sandbox_helpers.not_plain_data, SMALL, "it crashed the reader", id="reply-not-plain-data"),
])
def test_a_failing_worker_is_one_sentence_and_is_replaced(pool, task, budget, phrase):
    pool.budget = budget
    seconds = 60 + budget.wall_seconds
    still_answers(pool)
    workers = set(pool._all)
    start = time.monotonic()
    with pytest.raises(gradcam.InvalidImageError) as caught:
        pool.run(task, b"hostile bytes")
    assert time.monotonic() - start < seconds
    assert_sentence(str(caught.value), f"{SAFELY}: {phrase}")
    assert str(caught.value).startswith(SAFELY)
    for _ in range(4):
        still_answers(pool)
    replaced = workers - pool._all
    assert len(replaced) == 1 and next(iter(replaced)).process.poll() is not None, "the failed worker is gone"
    assert len(pool._all) == pool.size and all(w.process.poll() is None for w in pool._all)


def test_a_reply_over_the_largest_image_is_not_received():
    pool = sandbox.Pool("image", 1, sandbox.Budget(1024, 10, 60), gradcam.InvalidImageError)
    try:
        rss = peak_rss_mb()
        with pytest.raises(gradcam.InvalidImageError) as caught:
            pool.run(sandbox_helpers.too_big_reply, b"")
        assert str(caught.value) == f"{SAFELY}: it crashed the reader."
        assert peak_rss_mb() - rss < 150, "the 210 MB reply was not read into this process"
        still_answers(pool)
    finally:
        pool.close()


def test_a_reused_worker_gets_its_whole_cpu_budget_for_every_task():
    pool = sandbox.Pool("image", 1, sandbox.Budget(256, 2, 120), gradcam.InvalidImageError)
    try:
        pids = {pool.run(sandbox_helpers.spin_for, b"", 1.2)["pid"] for _ in range(4)}  # 4.8 s in all
        assert len(pids) == 1, "one worker, reused, never killed"
    finally:
        pool.close()


def test_other_callers_carry_on_while_one_worker_hangs(pool):
    still_answers(pool)
    outcome = []

    def hang() -> None:
        try:
            pool.run(sandbox_helpers.sleep, b"x")
        except gradcam.InvalidImageError as error:
            outcome.append(str(error))

    hung = threading.Thread(target=hang)
    hung.start()
    time.sleep(0.5)
    start = time.monotonic()
    for _ in range(5):
        still_answers(pool)
    assert time.monotonic() - start < 3, "the other worker should answer while one hangs"
    hung.join(30)
    assert outcome == [f"{SAFELY}: it needed more than 4 seconds."]


def test_the_process_itself_is_untouched_by_a_crash(pool):
    with pytest.raises(gradcam.InvalidImageError):
        pool.run(sandbox_helpers.segfault, b"")
    assert os.getpid() > 0 and threading.main_thread().is_alive()
    image = gradcam.load_image_safely((SAMPLES / "cat.jpg").read_bytes())
    assert image.mode == "RGB"


# --- images ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.jpg")))
def test_a_sandboxed_photo_is_the_same_photo(name):
    data = (SAMPLES / name).read_bytes()
    expected = gradcam.load_image(data)
    assert np.array_equal(np.asarray(gradcam.load_image_safely(data)), np.asarray(expected))
    assert np.array_equal(np.asarray(gradcam.load_image_safely(SAMPLES / name)), np.asarray(expected))
    expected.thumbnail((64, 64), Image.LANCZOS)
    assert np.array_equal(np.asarray(gradcam.load_image_safely(data, max_side=64)), np.asarray(expected))


def test_a_large_photo_comes_back_at_display_size():
    from skimage import data as skimage_data

    big = Image.fromarray(skimage_data.astronaut()).resize((4032, 3024))
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    image = gradcam.load_image_safely(buffer.getvalue(), max_side=DISPLAY_MAX_SIDE)
    assert image.size == (DISPLAY_MAX_SIDE, 960)


def float_tiff(side: int) -> bytes:
    """A 32-bit float TIFF, all zeros but one pixel, deflated: a small file whose
    conversion to 8 bits (stretching its value range) needs several copies of it."""
    image = Image.new("F", (side, side))
    image.putpixel((0, 0), 1.0)
    buffer = io.BytesIO()
    image.save(buffer, "TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


def test_a_small_image_file_that_needs_too_much_memory_is_refused(pool):
    # 19 megapixels: under the pixel limit and under load_image's own memory estimate
    # (decode_budget: ~370 MB), so it is the worker's 256 MB limit that refuses it.
    data = float_tiff(4400)
    assert len(data) < 200_000
    with pytest.raises(gradcam.InvalidImageError) as caught:
        pool.run(sandbox.decoded_image, data, None)
    assert str(caught.value) == f"{SAFELY}: it needed more than 256 MB of memory."
    still_answers(pool)


@pytest.mark.parametrize("data, phrase", [
    (b"just some text\n", "contains text"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PNG"),
])
def test_a_broken_image_gets_the_same_sentence_as_in_process(data, phrase):
    with pytest.raises(gradcam.InvalidImageError) as in_process:
        gradcam.load_image(data)
    with pytest.raises(gradcam.InvalidImageError) as sandboxed:
        gradcam.load_image_safely(data)
    assert str(sandboxed.value) == str(in_process.value)
    assert phrase.casefold() in str(sandboxed.value).casefold()


# --- model files: built here, then made hostile -----------------------------------------


def small_model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="scores")(x))


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("models") / "small.keras"
    small_model().save(path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def h5_file(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("models") / "small.h5"
    small_model().save(path)
    return path.read_bytes()


def members(keras_bytes: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(keras_bytes)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def stored_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zeros_deflated(size: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``size`` zero bytes and its CRC, without compressing
    ``size`` bytes: after a full flush the compressor forgets everything, so each
    mebibyte compresses to the same block."""
    chunk = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    crc = 0
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return block * (size // len(chunk)) + compressor.flush(), crc


def zip_with_bomb(entries: dict[str, bytes], bomb_name: str, size: int) -> bytes:
    """The archive of ``entries`` with ``bomb_name`` replaced by ``size`` deflated zeros: an
    honest member that really unpacks to ``size`` bytes, written by hand (local header, data,
    central directory, end record)."""
    out, central = io.BytesIO(), []
    for name, data in entries.items():
        method, crc, usize = 0, zlib.crc32(data), len(data)
        if name == bomb_name:
            (data, crc), method, usize = zeros_deflated(size), 8, size
        encoded, offset = name.encode(), out.tell()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), usize,
                              len(encoded), 0) + encoded + data)
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                                   len(data), usize, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    directory = b"".join(central)
    start = out.tell()
    out.write(directory)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), start, 0))
    return out.getvalue()


def with_config(keras_bytes: bytes, change) -> bytes:
    entries = members(keras_bytes)
    config = json.loads(entries["config.json"])
    change(config)
    entries["config.json"] = json.dumps(config).encode()
    return stored_zip(entries)


def layer(config: dict, class_name: str) -> dict:
    return next(item for item in config["config"]["layers"] if item["class_name"] == class_name)


def dense_of_100m_units(config: dict) -> None:
    layer(config, "Dense")["config"]["units"] = 100_000_000


def input_of_100000_squared(config: dict) -> None:
    layer(config, "InputLayer")["config"]["batch_shape"] = [None, 100_000, 100_000, 3]


def h5_with_config(h5_bytes: bytes, change) -> bytes:
    import h5py

    buffer = io.BytesIO(h5_bytes)
    with h5py.File(buffer, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        change(config)
        h5.attrs["model_config"] = json.dumps(config)
    return buffer.getvalue()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


HOSTILE_KERAS = {
    "config-unpacks-to-1.5-GiB": (
        lambda k: zip_with_bomb(members(k), "config.json", 3 * 2**29),
        "config.json unpacks to 1,536 MB; the limit is 16 MB"),
    "weights-unpack-to-1.5-GiB": (
        lambda k: zip_with_bomb(members(k), "model.weights.h5", 3 * 2**29),
        "model.weights.h5 unpacks to 1,536 MB; the limit is 1,000 MB"),
    "dense-of-100M-units": (
        lambda k: with_config(k, dense_of_100m_units),
        "more than 300 million parameters"),
    "input-of-100000x100000": (
        lambda k: with_config(k, input_of_100000_squared),
        "declares a 100000 x 100000 input"),
    "lone-surrogate-in-a-name": (
        lambda k: with_config(k, lambda c: layer(c, "Conv2D").update(name="\ud800")),
        "not valid Unicode"),
}


@pytest.mark.parametrize("sandboxed", [False, True], ids=["in-process", "sandboxed"])
@pytest.mark.parametrize("case", list(HOSTILE_KERAS))
def test_a_hostile_keras_file_is_refused_from_what_it_declares(keras_file, case, sandboxed):
    make, phrase = HOSTILE_KERAS[case]
    hostile = make(keras_file)
    assert len(hostile) < 3_000_000  # small files, gigabytes declared
    rss = peak_rss_mb()
    start = time.monotonic()
    with pytest.raises(gradcam.ModelLoadError) as caught:
        gradcam.load_model(hostile, sandbox=sandboxed)
    assert time.monotonic() - start < (60 if sandboxed else 5)
    assert_sentence(str(caught.value), phrase)
    assert peak_rss_mb() - rss < 300, "the refusal cost memory it should not have"
    model = gradcam.load_model(keras_file, sandbox=sandboxed)  # the process carries on
    assert model.keras.get_layer("features") is not None


@pytest.mark.parametrize("change, phrase", [
    (dense_of_100m_units, "more than 300 million parameters"),
    (input_of_100000_squared, "declares a 100000 x 100000 input"),
])
def test_a_hostile_h5_config_is_refused_before_any_layer_is_built(h5_file, change, phrase):
    hostile = h5_with_config(h5_file, change)
    for sandboxed in (False, True):
        start = time.monotonic()
        with pytest.raises(gradcam.ModelLoadError) as caught:
            gradcam.load_model(hostile, sandbox=sandboxed)
        assert time.monotonic() - start < 60
        assert_sentence(str(caught.value), phrase)


def test_a_zip_of_many_entries_is_refused_from_its_end_record(keras_file):
    entries = members(keras_file)
    entries.update({f"assets/{i}": b"" for i in range(1500)})
    with pytest.raises(gradcam.ModelLoadError) as caught:
        gradcam.load_model(stored_zip(entries))
    assert_sentence(str(caught.value), "has 1,503 entries")
    # The count is read before the directory is listed: an end record claiming 60,000
    # entries is refused on its word (listing them would have said "damaged").
    claimed = bytearray(keras_file)
    at = claimed.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", claimed, at + 8, 60_000, 60_000)
    with pytest.raises(gradcam.ModelLoadError) as caught:
        gradcam.load_model(bytes(claimed))
    assert_sentence(str(caught.value), "has 60,000 entries")


def declared_parameters(config: dict) -> int:
    return sum(model_budget._parameters(item) for item in model_budget._layers(config))


def test_the_parameter_estimate_is_exact_for_ordinary_networks(keras_file):
    """Read from the config alone, before anything is built: it equals Keras' own count."""
    assert declared_parameters(json.loads(members(keras_file)["config.json"])) == small_model().count_params()
    mobilenet = keras.applications.MobileNetV2(weights=None)  # depthwise and pointwise convs, no biases, BN
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(mobilenet)))
    assert declared_parameters(config) == mobilenet.count_params() == 3_538_984


def test_a_sandboxed_model_is_the_same_model(keras_file, h5_file, cat):
    for data in (keras_file, h5_file):
        in_process = gradcam.load_model(data, labels=["a", "b", "c"])
        sandboxed = gradcam.load_model(data, labels=["a", "b", "c"], sandbox=True)
        for mine, theirs in zip(sandboxed.keras.get_weights(), in_process.keras.get_weights()):
            assert np.array_equal(mine, theirs)
        assert gradcam.predict(sandboxed, cat) == gradcam.predict(in_process, cat)
        assert np.array_equal(gradcam.explain(sandboxed, cat).heatmap, gradcam.explain(in_process, cat).heatmap)


def test_a_lambda_model_is_still_refused_in_the_sandbox(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3)(inputs)
    x = keras.layers.Lambda(lambda t: t * 2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(2)(x)).save(tmp_path / "lambda.keras")
    with pytest.raises(gradcam.ModelLoadError) as caught:
        gradcam.load_model((tmp_path / "lambda.keras").read_bytes(), sandbox=True)
    assert_sentence(str(caught.value), "Lambda layer")


# Damaged .h5 files: one byte changed at a place found by fuzzing this very model.
# Whatever h5py does with each (refuse, crash, hang, allocate), the answer is a sentence.

def corrupted(h5_bytes: bytes, marker: bytes, delta: int, value: int) -> bytes:
    at = h5_bytes.index(marker) + delta
    data = bytearray(h5_bytes)
    data[at] = value
    return bytes(data)


def test_one_byte_changes_in_the_layer_names_attribute_are_sentences(fuzzed_model_file, keras_file):
    """A sweep of one-byte changes where h5py is fragile (the attribute's dataspace and type):
    whatever each does to h5py, it ends as a ModelLoadError sentence and the process lives on."""
    cases = [corrupted(fuzzed_model_file, b"layer_names", delta, value)
             for delta in range(56, 80, 2) for value in (0xFF, 88)]
    outcomes = set()
    start = time.monotonic()
    for data in cases:
        try:
            gradcam.load_model(data, sandbox=True)
            outcomes.add("loaded")
        except gradcam.ModelLoadError as error:
            assert "\n" not in str(error) and str(error).endswith("."), str(error)
            outcomes.add(str(error))
    assert time.monotonic() - start < 600
    assert len(outcomes - {"loaded"}) >= 1, outcomes
    assert gradcam.load_model(keras_file, sandbox=True).keras is not None


# --- model and labels readers: one exception type ---------------------------------------


def test_model_readers_raise_only_model_load_error(tmp_path, keras_file):
    fifo = tmp_path / "fifo.keras"
    os.mkfifo(fifo)
    closed = io.BytesIO(keras_file)
    closed.close()
    text_mode = open(SAMPLES / "README.md")
    try:
        for source, phrase in [
            (str(fifo), "is not a model file"),
            ("/dev/zero", "is not a model file"),
            (str(tmp_path), "is not a model file"),
            (str(tmp_path / "missing.keras"), "No such model file"),
            ("bad\x00name.keras", "No such model file"),
            (closed, "could not be read"),
            (text_mode, "binary mode"),
            (12345, "not int"),
        ]:
            start = time.monotonic()
            with pytest.raises(gradcam.ModelLoadError) as caught:
                gradcam.load_model(source)
            assert time.monotonic() - start < 5
            assert_sentence(str(caught.value), phrase)
    finally:
        text_mode.close()


def test_labels_readers_raise_only_model_load_error(tmp_path, keras_file):
    fifo = tmp_path / "labels.txt"
    os.mkfifo(fifo)
    for labels, phrase in [
        (str(fifo), "is not a labels file"),
        ("bad\x00name.txt", "No such labels file"),
        (3.5, "not float"),
        ([["nested"], "b", "c"], "must be text"),
        ("[1, 2", "No such labels file"),
    ]:
        with pytest.raises(ValueError) as caught:
            gradcam.load_model(keras_file, labels=labels)
        assert isinstance(caught.value, gradcam.ModelLoadError)
        assert_sentence(str(caught.value), phrase)


def test_a_lone_surrogate_in_labels_becomes_the_replacement_character(keras_file, cat):
    model = gradcam.load_model(keras_file, labels=b'["\\ud800cat", "dog", "\\udfff"]')
    assert model.labels == ["\ufffdcat", "dog", "\ufffd"]
    for label in model.labels:
        label.encode("utf-8")  # every encoder accepts them now
    listed = gradcam.load_model(keras_file, labels=["a\ud800", "b", "c"])
    assert listed.labels[0] == "a\ufffd"
    assert gradcam.predict(model, cat)[0].label.encode("utf-8")


# --- a damaged .h5 from fuzzing, and the dashboard that survives it ---------------------------


def greedy_h5(h5_bytes: bytes) -> bytes:
    """One byte of the layer_names attribute changed: fuzzing found that h5py then asks for
    about 1.4 GB (in a process of its own: +1.4 GB peak RSS, then an OSError) from an 18 KB file."""
    return corrupted(h5_bytes, b"layer_names", 67, 88)


@pytest.fixture(scope="module")
def fuzzed_model_file(tmp_path_factory) -> bytes:
    """The exact model the fuzzing ran on: its file layout is what the offset above is for."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 3), name="input_layer"), keras.layers.Conv2D(2, 3, name="features"),
                              keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d"),
                              keras.layers.Dense(2, name="dense")], name="sequential")  # names fix the layout
    path = tmp_path_factory.mktemp("fuzzed") / "tiny.h5"
    model.save(path)
    return path.read_bytes()


def test_a_small_model_file_gets_a_small_memory_budget():
    assert sandbox.model_memory_mb(18_000) == 517
    assert sandbox.model_memory_mb(100 * 2**20) == 1012
    assert sandbox.model_memory_mb(10**9) == sandbox.MODEL_BUDGET.memory_mb


def test_a_damaged_h5_that_wants_gigabytes_is_refused_in_bounded_memory(fuzzed_model_file, keras_file):
    rss = peak_rss_mb()
    start = time.monotonic()
    with pytest.raises(gradcam.ModelLoadError) as caught:
        gradcam.load_model(greedy_h5(fuzzed_model_file), sandbox=True)
    assert time.monotonic() - start < 120
    # h5py turns the refused allocation into an error of its own: a sentence either way.
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message and ("damaged" in message or SAFELY in message), message
    assert peak_rss_mb() - rss < 300
    assert gradcam.load_model(keras_file, sandbox=True).keras is not None  # the next model loads


def test_explore_page_survives_hostile_models_and_a_crashing_image(fuzzed_model_file, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard.parts.model_picker import UPLOAD

    page = str(SAMPLES.parent / "streamlit_app.py")

    def run(at):
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    def errors(at):
        return [error.value.replace("\\", "") for error in at.error]

    def explained(at):
        assert at.selectbox(key="target").value is not None
        assert any(c.startswith("Grad-CAM overlay") for image in at.image for c in image.captions)

    def upload_model(at, name, data):
        at.file_uploader(key="model_upload").set_value((name, data, "application/octet-stream"))
        run(at)
        shown = errors(at)
        assert len(shown) == 1 and shown[0].endswith("."), shown
        explained(at)  # with the model that worked before
        assert at.session_state["model_key"] == gradcam.DEFAULT_MODEL
        return shown[0]

    at = run(AppTest.from_file(page, default_timeout=300))
    at.selectbox(key="model_choice").set_value(UPLOAD)
    run(at)
    assert "damaged" in upload_model(at, "fuzzed.h5", greedy_h5(fuzzed_model_file))

    # A model file whose reader segfaults, as h5py does on some damaged files.
    monkeypatch.setattr(sandbox, "verified_model", sandbox_helpers.segfault)
    assert upload_model(at, "crash.h5", b"\x89HDF\r\n\x1a\nsegfault") == f"{SAFELY}: it crashed the reader."

    # An image whose decoder segfaults: one sentence, the current photo stays.
    monkeypatch.setattr(sandbox, "decoded_image", sandbox_helpers.segfault)
    at.file_uploader(key="upload").set_value(("crash.png", b"\x89PNG\r\n\x1a\nanything", "image/png"))
    run(at)
    assert f"crash.png: {SAFELY}: it crashed the reader. The current photo stays: cat.jpg." in errors(at)
    assert at.session_state["image_name"] == "cat.jpg"
    explained(at)
    monkeypatch.undo()

    # Another session, started after all that, works from scratch.
    other = run(AppTest.from_file(page, default_timeout=300))
    other.file_uploader(key="upload").set_value(("coffee.jpg", (SAMPLES / "coffee.jpg").read_bytes(), "image/jpeg"))
    run(other)
    assert other.session_state["image_name"] == "coffee.jpg" and not other.error
    explained(other)


def test_workers_outlive_the_thread_that_started_them():
    """Streamlit runs each page in a thread that ends; the workers it started must stay
    and keep answering (a worker tied to its starting thread died with it, and the next
    upload waited forever)."""
    pool = sandbox.Pool("image", 1, SMALL, gradcam.InvalidImageError)
    try:
        first = {}
        starter = threading.Thread(target=lambda: first.update(pid=still_answers(pool)))
        starter.start()
        starter.join()
        time.sleep(1)
        assert all(worker.process.poll() is None for worker in pool._all)
        assert still_answers(pool) == first["pid"]
    finally:
        pool.close()


def test_a_caller_stopped_mid_call_does_not_lose_the_worker(pool):
    """A superseded Streamlit run is stopped by an exception raised in its thread; the pool
    replaces that worker instead of waiting for it forever."""

    class Stopped(BaseException):
        pass

    def stop_during_call(worker, *args, **kwargs):
        raise Stopped

    original = sandbox._Worker.call
    sandbox._Worker.call = stop_during_call
    try:
        for _ in range(pool.size + 1):
            with pytest.raises(Stopped):
                pool.run(sandbox_helpers.echo_length, b"1")
    finally:
        sandbox._Worker.call = original
    start = time.monotonic()
    still_answers(pool)
    assert time.monotonic() - start < 120
    assert len(pool._all) == pool.size
