"""The audit's doors guarded like the others (issue 30): every hostile input is built here,
run through the public entry point (``gradcam.audit``, ``python -m gradcam audit``), and
the test asserts the sentence, the exception type or exit status, what memory it cost
(measured in a new process where that is the point) and that the next audit is served.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.cli import main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("file", "target", "target_label", "target_probability", "top1_label", "layer", "method", "error", "map")


# --- what the tests build -------------------------------------------------------------


def png_declaring(side: int, colour=(200, 30, 40)) -> bytes:
    """A real PNG of side x side pixels of one colour: ~140 kB for 7000 x 7000 (49 megapixels)."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, "PNG")
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def grid_column(maps: list[np.ndarray | None]):
    """A list<list<float>> column from 2-D arrays, built from offsets (no Python floats)."""
    rows_offsets, cells_offsets, values, valid = [0], [0], [], []
    for m in maps:
        valid.append(m is not None)
        if m is not None:
            for row in np.atleast_2d(m):
                values.append(np.asarray(row, np.float32))
                cells_offsets.append(cells_offsets[-1] + len(row))
            rows_offsets.append(rows_offsets[-1] + len(np.atleast_2d(m)))
        else:
            rows_offsets.append(rows_offsets[-1])
    flat = pa.array(np.concatenate(values) if values else np.zeros(0, np.float32))
    inner = pa.ListArray.from_arrays(pa.array(cells_offsets, pa.int32()), flat)
    mask = pa.array([not v for v in valid])
    return pa.ListArray.from_arrays(pa.array(rows_offsets, pa.int32()), inner, mask=mask)


def ray_table(files: list[str], maps: list, labels: list[str] | None = None, **overrides):
    n = len(files)
    labels = labels or ["red"] * n
    columns = {"file": pa.array(files), "target": pa.array([0] * n, pa.int64()), "target_label": pa.array(labels),
               "target_probability": pa.array([0.9] * n), "top1_label": pa.array(labels),
               "layer": pa.array(["last_conv"] * n), "method": pa.array(["gradcam"] * n),
               "error": pa.array([None] * n, pa.string()), "map": grid_column(maps)}
    columns.update(overrides)
    return pa.table(columns)


def write_parquet(path: Path, table, **options) -> Path:
    pq.write_table(table, path, **options)
    return path


def grown_in_a_new_process(code: str, timeout: float = 600) -> dict:
    """Run ``code`` in a fresh interpreter (tests/ on its path); it fills ``report`` (a dict) and
    calls ``mark()`` after its warm-up. Returns the report with ``grown_mb``: the peak resident
    size after mark() minus the peak before (the process's own memory, not its sandbox workers')."""
    script = textwrap.dedent('''
        import json, resource, sys
        sys.path[:0] = [%r, %r]
        report = {}
        def peak_mb():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        def mark():
            report["before_mb"] = peak_mb()
    ''') % (str(ROOT), str(ROOT / "tests")) + textwrap.dedent(code) + textwrap.dedent('''
        report["after_mb"] = peak_mb()
        report["grown_mb"] = report["after_mb"] - report["before_mb"]
        print("REPORT" + json.dumps(report))
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT")]
    assert lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("REPORT"):])


TINY_MODEL = '''
import keras
from helpers import own_model
keras.utils.set_random_seed(0)
inputs = keras.Input((64, 64, 3))
h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="last_conv")(h)
outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
network = keras.Model(inputs, outputs)
model = own_model(network, ["red", "blue"])
'''


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="last_conv")(h)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    labels = path.with_name("labels.txt")
    labels.write_text("red\nblue\n")
    return path, labels


@pytest.fixture(scope="module")
def tiny_model(tiny_model_file):
    path, labels = tiny_model_file
    return gradcam.load_model(str(path), labels=str(labels))


# --- 1. what the audit decodes is bounded --------------------------------------------


@pytest.mark.slow
def test_a_small_zip_of_huge_pngs_is_audited_in_bounded_memory_in_a_new_process():
    # Issue 30: a 1.3 MB zip of eight 7000 x 7000 PNGs took the server to 4.4 GB.
    report = grown_in_a_new_process(TINY_MODEL + '''
import io, zipfile
import numpy as np
from PIL import Image
import gradcam
from tests.audit.test_hostile_audit import png_declaring, zip_of
small = zip_of({f"red/{k}.png": png_declaring(64, (10 * k, 90, 200)) for k in range(8)})
gradcam.audit(model, ("warm.zip", small), layer="last_conv")  # TensorFlow, the sandbox and the engine warm
huge = zip_of({f"red/{k}.png": png_declaring(7000, (20 * k, 90, 200)) for k in range(8)})
report["zip_bytes"] = len(huge)
del small
mark()
with gradcam.sandbox_session("one visitor"):
    result = gradcam.audit(model, ("huge.zip", huge), layer="last_conv")
report["explained"] = sum(p.map is not None for p in result.photos)
report["sizes"] = sorted({tuple(p.size) for p in result.photos})
report["map_shapes"] = sorted({p.map.shape for p in result.photos})
report["thumbnail_kb"] = max(len(p.thumbnail) for p in result.photos) / 1024
with gradcam.sandbox_session("another visitor"):  # the process still serves the next session
    report["next"] = len(gradcam.audit(model, ("next.zip", zip_of({"a.png": png_declaring(64)})),
                                       layer="last_conv").photos)
''')
    print("eight 7000 x 7000 PNGs:", report)
    assert report["zip_bytes"] < 1_500_000 and report["explained"] == 8
    assert report["sizes"] == [[7000, 7000]]  # the photo's own size is reported
    assert report["map_shapes"] == [[32, 32]]  # maps at the layer's resolution
    assert report["thumbnail_kb"] < 16
    assert report["grown_mb"] < 400, report  # was 4.4 GB; eight photos at 1024 px and their maps
    assert report["next"] == 1


@pytest.mark.slow
def test_the_cli_audits_32_huge_pngs_in_bounded_memory(tiny_model_file, tmp_path):
    # Issue 30: from the CLI, 32 of them (a 5 MB zip) reached 10.4 GB and died with a MemoryError traceback.
    model, labels = tiny_model_file
    runs = {}
    for name, side in (("small", 64), ("huge", 7000)):
        source = tmp_path / f"{name}.zip"
        source.write_bytes(zip_of({f"red/{k:02d}.png": png_declaring(side, (k * 7, 90, 200)) for k in range(32)}))
        runs[name] = grown_in_a_new_process(f'''
from gradcam.cli import main
mark()
report["status"] = main(["audit", {str(source)!r}, "--model", {str(model)!r}, "--labels", {str(labels)!r},
                         "--layer", "last_conv", "--out", {str(tmp_path / (name + ".html"))!r}])
''')
    print("the CLI, 32 photos of 64 px and of 7000 px:", runs)
    assert runs["small"]["status"] == runs["huge"]["status"] == 0
    assert (tmp_path / "huge.zip").stat().st_size < 6_000_000
    # The same audit of 64 px photos is the baseline: 32 photos of 49 megapixels add little to it.
    assert runs["huge"]["after_mb"] - runs["small"]["after_mb"] < 400, runs


def test_a_session_that_decoded_its_pixels_gets_one_sentence_per_photo_and_others_are_served(
        tiny_model, monkeypatch):
    from gradcam.intake import pixel_budget

    monkeypatch.setattr(pixel_budget, "MAX_SESSION_PIXELS", 60_000_000)
    huge = zip_of({f"red/{k}.png": png_declaring(7000) for k in range(3)})
    with gradcam.sandbox_session("audit-budget"):
        result = gradcam.audit(tiny_model, ("huge.zip", huge), layer="last_conv")
    assert [p.error == "" for p in result.photos] == [True, False, False]
    assert result.photos[1].error.startswith("This session has decoded 49 megapixels of photos in the last 60 "
                                             "minutes; this photo's 49 megapixels would pass the limit")
    assert result.budget_refused == 2  # the dashboard keeps such an audit for its session alone
    with gradcam.sandbox_session("audit-budget-other"):
        assert not gradcam.audit(tiny_model, ("huge.zip", huge), layer="last_conv").photos[0].error
    with gradcam.sandbox_session("audit-budget-small"):  # nothing refused: nothing counted
        assert gradcam.audit(tiny_model, [("red/a.png", png_declaring(64))], layer="last_conv").budget_refused == 0


def test_masks_given_as_boxes_in_the_photos_own_pixels_land_where_they_say(tiny_model):
    # The audit decodes a 2048 px photo at 1024 px: a box given in its own pixels is scaled with it.
    photo = png_declaring(2048)
    masks = {"red/a": (0.0, 0.0, 1024.0, 2048.0)}  # the left half, in the photo's pixels
    result = gradcam.audit(tiny_model, [("red/a.png", photo), ("red/b.png", png_declaring(64))],
                           masks=masks, layer="last_conv")
    assert result.photo("red/a.png").size == (2048, 2048)
    assert result.photo("red/a.png").mass_on_object == pytest.approx(0.5, abs=0.05)


# --- 2. paths in a Parquet file are data, not places to connect to -------------------


@pytest.fixture
def listener():
    """A loopback port that must see nothing: (port, a function counting connections so far)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.setblocking(False)
    seen = []

    def connections() -> int:
        while True:
            try:
                seen.append(server.accept()[0])
            except BlockingIOError:
                return len(seen)

    yield server.getsockname()[1], connections
    for s in seen:
        s.close()
    server.close()


@pytest.mark.parametrize("allow_uris", [False, True])
def test_a_parquet_file_cannot_make_the_audit_contact_a_host_it_names(tmp_path, listener, allow_uris):
    port, connections = listener
    location = f"s3://bucket/red/{{k}}.png?endpoint_override=127.0.0.1:{port}&scheme=http"
    files = [location.format(k=k) for k in range(6)]
    path = write_parquet(tmp_path / "job.parquet", ray_table(files, [np.eye(7, dtype=np.float32)] * 6))
    masks = {f: (0, 0, 4, 4) for f in files}  # masks need the photos' sizes: every photo is asked for
    result = gradcam.audit(None, path, masks=masks, allow_uris=allow_uris)
    time.sleep(0.2)
    assert connections() == 0
    assert len(result.photos) == 6 and not result.broken  # the maps are audited all the same
    if not allow_uris:
        assert ("6 photos are named by a URI and not read again (the reliance test and masks need the photos): "
                "photos are read from local paths only, unless URIs are allowed (allow_uris=True, --allow-uris).") \
            in result.problems
    # Read directly, each photo says why it is not read.
    from gradcam.audit.sources import read_source

    entry = read_source(path, allow_uris=allow_uris).entries[0]
    with pytest.raises(ValueError) as refused:
        entry.read()
    assert ("carries options, a port or credentials" if allow_uris else "read from local paths only") \
        in str(refused.value)
    assert connections() == 0


def test_the_reliance_test_reads_local_paths_of_a_parquet_file_and_no_uri(tiny_model, tmp_path, listener):
    port, connections = listener
    folder = tmp_path / "photos"
    folder.mkdir()
    files = []
    for k in range(8):
        (folder / f"{k}.png").write_bytes(png_declaring(64, (30 * k, 40, 50)))
        files.append(str(folder / f"{k}.png") if k % 2 else f"gs://bucket/{k}.png?endpoint_override=127.0.0.1:{port}")
    peak = np.zeros((8, 8), np.float32)
    peak[0, 0] = 1.0  # every map on one small corner: a cluster the reliance test examines
    path = write_parquet(tmp_path / "job.parquet", ray_table(files, [peak] * 8))
    result = gradcam.audit(tiny_model, path)
    assert connections() == 0
    assert [c.tested for cls in result.classes for c in cls.clusters] == [4]  # the four local photos


# --- 3. a Parquet file is measured from its footer before it is read ------------------


def test_a_small_parquet_file_declaring_huge_maps_is_refused_from_its_footer(tmp_path):
    # Issue 30: a 3 KB file of 4 maps declared 5000 x 5000 inflated to 2.4 GB.
    zeros = np.zeros((5000, 5000), np.float32)
    path = write_parquet(tmp_path / "huge.parquet", ray_table(["a.png"], [zeros]), compression="zstd")
    del zeros
    assert path.stat().st_size < 100_000
    report = grown_in_a_new_process(f'''
import gradcam
import pyarrow
mark()
try:
    gradcam.audit(None, {str(path)!r})
except ValueError as error:
    report["sentence"] = str(error)
''')
    assert report["sentence"] == (
        "huge.parquet declares 25,000,000 map cells in 1 rows; an audit holds at most 16,000,000 (maps are at a "
        "layer's resolution, 7 x 7 for EfficientNet-Lite0), so the file is not read.")
    assert report["grown_mb"] < 50, report


def test_a_parquet_file_of_a_million_rows_is_refused_by_its_row_count(tmp_path):
    n = 1_000_000
    cells = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), pa.array(np.zeros(n, np.float32)))
    maps = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), cells)
    table = ray_table(["a.png"], [np.zeros((1, 1))])
    table = pa.table({c: pa.concat_arrays([table.column(c).chunk(0)] * n) if c != "map" else maps for c in COLUMNS})
    path = write_parquet(tmp_path / "rows.parquet", table)
    started = time.monotonic()
    with pytest.raises(ValueError) as refused:
        gradcam.audit(None, path)
    assert time.monotonic() - started < 5
    assert str(refused.value) == ("rows.parquet declares 1,000,000 rows; an audit reads at most 50,000 rows. "
                                  "Audit a part of the dataset.")


def test_a_path_repeated_through_the_dictionary_is_refused_before_it_is_unpacked(tmp_path):
    long_path = "x" * 1_000_000 + ".png"
    table = ray_table([long_path] * 2000, [np.eye(2, dtype=np.float32)] * 2000)
    path = write_parquet(tmp_path / "long.parquet", table, compression="zstd")  # 2 GB as Python strings
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError, match=r"^long.parquet holds a 'file' value of 1,000,004 bytes; a path or a label "
                                         r"is at most 4,096, so the file is not read\.$"):
        gradcam.audit(None, path)


@pytest.mark.parametrize("column, value, kind", [
    ("map", pa.array(["not a map"]), "string"),
    ("target", pa.array(["seven"]), "string"),
    ("file", pa.array([3]), "int64"),
    ("map", pa.array([[1.0, 2.0]]), "list<item: double>".replace("item", "element")),
])
def test_parquet_columns_of_the_wrong_type_are_one_sentence(tmp_path, column, value, kind):
    # Issue 30: they raised AttributeError.
    path = write_parquet(tmp_path / "typed.parquet", ray_table(["a.png"], [np.eye(2)], **{column: value}))
    with pytest.raises(ValueError) as refused:
        gradcam.audit(None, path)
    assert type(refused.value) is ValueError
    assert str(refused.value).startswith(f"typed.parquet is not a 'gradcam explain --ray' output: its column "
                                         f"'{column}' holds {kind}")


def test_maps_of_nan_or_infinity_are_rows_with_a_sentence_and_json_stays_valid(tmp_path, capsys):
    finite = [np.eye(7, dtype=np.float32) + 0.01 * k for k in range(6)]
    maps = finite + [np.full((7, 7), np.nan, np.float32), np.full((7, 7), np.inf, np.float32)]
    table = ray_table([f"/nowhere/red/{k}.png" for k in range(8)], maps,
                      target_probability=pa.array([0.9] * 6 + [float("nan"), float("inf")]))
    path = write_parquet(tmp_path / "nan.parquet", table)
    result = gradcam.audit(None, path)
    assert [p.error for p in result.broken] == ["Its map in the dataset holds NaN or infinite values."] * 2
    assert main(["audit", str(path), "--no-model", "--json", "--out", str(tmp_path / "nan.html")]) == 0
    printed = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"bare {constant} in --json's output")

    parsed = json.loads(printed, parse_constant=refuse)
    assert len(parsed["photos"]) == 8


# --- 5. the smaller doors --------------------------------------------------------------


def test_a_fifo_or_a_device_named_zip_or_masks_csv_is_one_sentence_at_once(tiny_model, tmp_path):
    fifo = tmp_path / "masks.csv"
    os.mkfifo(fifo)
    device = tmp_path / "photos.zip"
    device.symlink_to("/dev/zero")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    for call, shown in [(lambda: gradcam.audit(None, device), str(device)),
                        (lambda: gradcam.audit(tiny_model, tmp_path / "a.png", masks=str(fifo)), str(fifo))]:
        started = time.monotonic()
        with pytest.raises(ValueError) as refused:
            call()
        assert time.monotonic() - started < 2
        assert str(refused.value) == f"{shown} is not a regular file (it is a device, a pipe or a socket)."


def test_a_masks_csv_field_over_128_kb_and_too_many_lines_are_one_sentence(tiny_model, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    wide = tmp_path / "wide.csv"
    wide.write_text("path,x0,y0,x1,y1\n" + "a.png," + "1" * 200_000 + ",0,4,4\n")
    with pytest.raises(ValueError) as refused:  # was _csv.Error
        gradcam.audit(tiny_model, tmp_path / "a.png", masks=str(wide))
    assert type(refused.value) is ValueError
    assert str(refused.value) == ("Line 2 of the boxes CSV cannot be read: a field is longer than 128 KB or holds "
                                  "a NUL character; a box is path,x0,y0,x1,y1.")
    many = tmp_path / "many.csv"
    many.write_text("a.png,0,0,4,4\n" * 1_000_000)
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"^The boxes CSV has more than 100,000 lines; an audit takes at most "
                                         r"100,000 boxes\.$"):
        gradcam.audit(tiny_model, tmp_path / "a.png", masks=str(many))
    assert time.monotonic() - started < 10


def test_zip_entries_named_outside_the_archive_are_called_what_they_are(tiny_model):
    photo = png_declaring(64)
    upload = zip_of({"../../etc/cron.d/x.png": photo, "/abs/y.png": photo, "red/ok.png": photo,
                     "__MACOSX/._ok.png": b"junk"})
    result = gradcam.audit(tiny_model, ("slip.zip", upload), layer="last_conv")
    assert [p.path for p in result.photos] == ["red/ok.png"]
    assert ("2 files named outside the archive's folder (../ or /) and 1 hidden or system file skipped."
            in result.problems)


def test_the_html_report_of_ten_thousand_classes_is_capped(tmp_path):
    from gradcam.report.audit_report import MAX_REPORT_CLASSES, audit_html

    classes = [gradcam.AuditClass(label=f"class {k}", count=1, accuracy=None, mean_map=np.eye(7, dtype=np.float32),
                                  mass_on_object=None, pointing_rate=None, clusters=[], eigenvalues=[1.0])
               for k in range(10_000)]
    photos = [gradcam.AuditPhoto(index=k, path=f"{k}.png", true_label=None, label=f"class {k}", target=k,
                                 probability=0.5, predicted=f"class {k}", correct=None,
                                 map=np.eye(7, dtype=np.float32)) for k in range(10_000)]
    audit = gradcam.Audit(photos=photos, classes=classes, model="m", layer="l", method="gradcam", explain="label",
                          source="s", masks=False, problems=[])
    page = audit_html(audit)
    assert len(page) < 10 * 2**20  # was 121 MB
    assert (f"The report shows the {MAX_REPORT_CLASSES:,} classes with the most photos of 10,000; the CSV and "
            "the JSON hold every class.") in page


# --- the command line: the report's file checked before the audit runs -------------------


@pytest.mark.parametrize("case", ["folder", "device", "under-a-file", "the-source-photo", "a-photo-in-the-folder"])
def test_audit_out_is_checked_before_the_audit_runs(tmp_path, capsys, case):
    photos = tmp_path / "photos"
    (photos / "red").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(photos / "red" / "a.png")
    (tmp_path / "file.txt").write_text("x")
    source, out, sentence = str(photos), None, None
    if case == "folder":
        out, sentence = str(tmp_path), f"--out {tmp_path} is a folder; give a file name"
    elif case == "device":
        out, sentence = "/dev/full", "--out /dev/full is not a regular file (it is a device, a pipe or a socket)."
    elif case == "under-a-file":
        out, sentence = str(tmp_path / "file.txt" / "audit.html"), "cannot be written"
    elif case == "the-source-photo":
        source = out = str(photos / "red" / "a.png")
        sentence = f"--out {out} would overwrite the input {photos / 'red' / 'a.png'}; write it elsewhere."
    else:
        out = str(photos / "red" / "a.png")
        sentence = f"--out {out} would overwrite a file among the inputs in {photos}; write it elsewhere."
    before = (photos / "red" / "a.png").read_bytes()
    started = time.monotonic()
    # No model is loaded for it: a model name that does not exist would be the error otherwise.
    assert main(["audit", source, "--model", "no-such-model.keras", "--out", out]) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.startswith("error: ") and sentence in err and "Traceback" not in err, err
    assert (photos / "red" / "a.png").read_bytes() == before


def test_an_audit_in_which_no_photo_could_be_read_exits_non_zero(tiny_model_file, tmp_path, capsys):
    model, labels = tiny_model_file
    broken = tmp_path / "broken.zip"
    broken.write_bytes(zip_of({"red/a.png": b"\x89PNG\r\n\x1a\n not a photo", "red/b.png": png_declaring(100)[:60]}))
    out = tmp_path / "broken.html"
    assert main(["audit", str(broken), "--model", str(model), "--labels", str(labels), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "error: none of the 2 photos could be read; the report lists why." in captured.err
    assert out.exists()  # the report says why, photo by photo
    good = tmp_path / "good.zip"
    good.write_bytes(zip_of({"red/a.png": png_declaring(64)}))
    assert main(["audit", str(good), "--model", str(model), "--labels", str(labels), "--layer", "last_conv",
                 "--out", str(tmp_path / "good.html")]) == 0
