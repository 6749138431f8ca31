"""The command line, checked the way a person would: real photos in, files and text out.

Most tests call ``main([...])`` in-process (the CLI keeps loaded models, so the
model loads once); one runs ``python -m gradcam`` for real.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.cli import main

REPO = Path(__file__).resolve().parents[1]
CAT_CLASSES = {"Egyptian cat", "tabby", "tiger cat"}


def _photo(name: str) -> Image.Image:
    from skimage import data  # real photos shipped inside scikit-image, no download

    return Image.fromarray(getattr(data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    _photo("chelsea").save(folder / "cat.jpg", quality=95)
    _photo("coffee").save(folder / "coffee.png")
    return folder


@pytest.fixture(scope="module")
def cat_jpg(photos):
    return photos / "cat.jpg"


@pytest.fixture(scope="module")
def coffee_png(photos):
    return photos / "coffee.png"


@pytest.fixture(scope="module")
def broken_jpg(tmp_path_factory):
    path = tmp_path_factory.mktemp("broken") / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An own .keras model whose class "no" has only negative evidence: non-negative
    features (ReLU) times a negative dense weight give an empty Grad-CAM map."""
    import keras

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(1, 3, activation="relu", kernel_initializer="ones", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    dense = keras.layers.Dense(2, activation="softmax", name="scores")
    outputs = dense(pooled)
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.array([[1.0, -1.0]], np.float32), np.zeros(2, np.float32)])
    folder = tmp_path_factory.mktemp("own")
    model.save(folder / "tiny.keras")
    (folder / "labels.txt").write_text("yes\nno\n")
    (folder / "three-labels.txt").write_text("a\nb\nc\n")
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- models and layers ----------------------------------------------------------


def test_models_lists_the_default_model(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("*") and "EfficientNet-Lite0" in line and "offline" in line for line in lines)
    assert any("ResNet50" in line for line in lines)


def test_layers_marks_top_activation_as_default(capsys):
    code, out, _ = run(capsys, "layers")
    assert code == 0
    marked = [line for line in out.splitlines() if "default" in line]
    assert len(marked) == 1 and marked[0].split()[:2] == ["top_activation", "7x7x1280"]
    names = [line.split()[0] for line in out.splitlines()]
    assert names[0] == "stem_conv" and names.index("top_conv") < names.index("top_activation")


def test_layers_of_an_own_model_file(capsys, tiny_model):
    code, out, _ = run(capsys, "layers", tiny_model / "tiny.keras", "--labels", tiny_model / "labels.txt")
    assert code == 0
    assert out.split() == ["features", "30x30x1", "(default)"]


# --- predict --------------------------------------------------------------------


def test_predict_names_the_cat_first(capsys, cat_jpg):
    code, out, err = run(capsys, "predict", cat_jpg)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 5
    assert any(name in lines[0] for name in CAT_CLASSES)


def test_predict_json(capsys, coffee_png):
    code, out, _ = run(capsys, "predict", coffee_png, "--top", "3", "--json")
    assert code == 0
    report = json.loads(out)
    assert [p["label"] for p in report["predictions"]][0] == "espresso"
    assert len(report["predictions"]) == 3
    probabilities = [p["probability"] for p in report["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1


# --- explain one image ----------------------------------------------------------


def test_explain_writes_an_overlay_of_the_photo_size(capsys, cat_jpg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output goes to the current folder
    code, out, err = run(capsys, "explain", cat_jpg)
    assert code == 0 and err == ""
    written = tmp_path / "cat-gradcam.png"
    photo = Image.open(cat_jpg).convert("RGB")
    with Image.open(written) as overlay:
        assert overlay.format == "PNG" and overlay.size == photo.size
        difference = np.abs(np.asarray(overlay.convert("RGB"), int) - np.asarray(photo, int))
    assert difference.mean() > 10  # a heatmap really was painted over the photo
    assert len(out.splitlines()) == 1
    assert any(name in out for name in CAT_CLASSES)
    assert "top_activation" in out and "Grad-CAM" in out
    # No --out: the line says where the file went, in full, and why there.
    assert f"-> {written} (no --out given: written in the current folder)" in out, out


def test_a_tiny_photo_gets_the_dashboards_warning(capsys, tmp_path):
    """A 1 x 1 photo (and one 40 x 50: both sides under a quarter of Lite0's 224) is explained, with the
    dashboard's sentence as a warning; a 60 x 20 photo (one side over a quarter) is not warned about."""
    model = gradcam.load_model(gradcam.DEFAULT_MODEL)
    for size, warned in (((1, 1), True), ((40, 50), True), ((60, 20), False)):
        path = tmp_path / f"small-{size[0]}x{size[1]}.png"
        Image.new("RGB", size, (120, 80, 40)).save(path)
        code, out, err = run(capsys, "explain", str(path), "--out", str(tmp_path / "out.png"))
        assert code == 0, err
        if warned:
            sentence = gradcam.small_photo_note(size, model)
            assert sentence.startswith(f"This photo is only {size[0]} x {size[1]} pixels; EfficientNet-Lite0 "
                                       "looks at 224 x 224")
            assert err.strip() == f"warning: {path.name}: {sentence}", err
        else:
            assert "warning" not in err, err


def test_explain_saves_the_heatmap(capsys, cat_jpg, tmp_path):
    out_png, cam = tmp_path / "overlay.png", tmp_path / "cam.npy"
    code, _, _ = run(capsys, "explain", cat_jpg, "--out", out_png, "--heatmap", cam)
    assert code == 0 and out_png.is_file()
    heatmap = np.load(cam)
    width, height = Image.open(cat_jpg).size
    assert heatmap.shape == (height, width)
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0 and heatmap.max() > 0.5


def test_explain_json_names_the_class(capsys, cat_jpg, tmp_path):
    out_png = tmp_path / "cat.png"
    code, out, _ = run(capsys, "explain", cat_jpg, "--out", out_png, "--json", "--method", "gradcam++")
    assert code == 0
    report = json.loads(out)
    assert report["label"] in CAT_CLASSES and report["target"] == report["predictions"][0]["index"]
    assert report["model"] == "EfficientNet-Lite0" and report["layer"] == "top_activation"
    assert report["method"] == "gradcam++" and report["no_positive_evidence"] is False
    assert len(report["predictions"]) == 5 and report["overlay"] == str(out_png)
    assert len(report["sha256"]) == 64 and report["heatmap"] is None


def test_explain_target_by_label(capsys, coffee_png, tmp_path):
    code, out, _ = run(capsys, "explain", coffee_png, "--target", "espresso", "--out", tmp_path / "e.png", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["label"] == "espresso" and report["target"] == 967


def test_explain_target_by_index_and_keras_style_label(capsys, cat_jpg, tmp_path):
    code, out, _ = run(capsys, "explain", cat_jpg, "--target", "281", "--out", tmp_path / "a.png", "--json")
    assert code == 0 and json.loads(out)["label"] == "tabby"
    code, out, _ = run(capsys, "explain", cat_jpg, "--target", "Egyptian_cat", "--out", tmp_path / "b.png", "--json")
    assert code == 0 and json.loads(out)["target"] == 285


def test_explain_another_layer_and_colormap(capsys, cat_jpg, tmp_path):
    code, out, _ = run(capsys, "explain", cat_jpg, "--layer", "block15_project_bn", "--colormap", "viridis",
                       "--alpha", "1", "--out", tmp_path / "v.png", "--json")
    assert code == 0 and json.loads(out)["layer"] == "block15_project_bn"


def test_explain_notes_when_nothing_speaks_for_the_class(capsys, cat_jpg, tiny_model, tmp_path):
    code, out, err = run(capsys, "explain", cat_jpg, "--model", tiny_model / "tiny.keras",
                         "--labels", tiny_model / "labels.txt", "--target", "no", "--out", tmp_path / "no.png")
    assert code == 0 and (tmp_path / "no.png").is_file()
    assert out.startswith("no (class 1")
    assert err.startswith("note:") and "heatmap is empty" in err


# --- explain a folder -----------------------------------------------------------


def test_explain_folder_keeps_going_past_a_broken_image(capsys, cat_jpg, coffee_png, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for source in (cat_jpg, coffee_png):
        (folder / source.name).write_bytes(source.read_bytes())
    (folder / "broken.jpg").write_text("not an image at all")
    (folder / "notes.txt").write_text("not a photo either, and skipped")

    code, out, err = run(capsys, "explain", folder)
    assert code == 0
    out_dir = tmp_path / "mixed-gradcam"
    assert sorted(p.name for p in out_dir.glob("*.png")) == ["cat-gradcam.png", "coffee-gradcam.png"]
    with (out_dir / "summary.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == ["broken.jpg", "cat.jpg", "coffee.png"]
    broken, cat, coffee = rows
    assert broken["error"] and not broken["overlay"]
    assert cat["top1_label"] in CAT_CLASSES and not cat["error"] and Path(cat["overlay"]).is_file()
    assert coffee["target_label"] == "espresso" and 0 < float(coffee["top1_probability"]) <= 1
    assert "broken.jpg" in err and "Explaining" in err  # reported, with the progress bar
    assert "2 of 3" in out


def test_explain_folder_of_only_broken_images_fails(capsys, broken_jpg, tmp_path):
    code, _, err = run(capsys, "explain", broken_jpg.parent, "--out", tmp_path / "out")
    assert code == 1
    assert "broken.jpg" in err
    assert (tmp_path / "out" / "summary.csv").is_file()


def test_methods_lists_every_method_with_its_paper(capsys):
    import gradcam

    code, out, _ = run(capsys, "methods")
    assert code == 0
    for key, method in gradcam.METHODS.items():
        assert f"{key}  " in out and method.display_name in out and method.paper in out
    assert "same map for every class" in out.split("eigencam", 1)[1].split("\n")[0]


@pytest.mark.parametrize("method", ["xgradcam", "hirescam", "gradcam-elementwise", "layercam", "eigencam",
                                    "eigengradcam", "scorecam", "ablationcam", "guided-backprop", "guided-gradcam"])
def test_explain_with_every_method(capsys, cat_jpg, tmp_path, method):
    import gradcam

    budget = ["--channels", "8"] if method == "scorecam" else []
    code, out, _ = run(capsys, "explain", cat_jpg, "--method", method, *budget, "--out", tmp_path / "cam.png",
                       "--heatmap", tmp_path / "cam.npy", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["method"] == method and report["label"] in CAT_CLASSES
    heatmap = np.load(tmp_path / "cam.npy")
    assert heatmap.shape == Image.open(cat_jpg).size[::-1] and heatmap.max() == pytest.approx(1.0)
    code, out, _ = run(capsys, "explain", cat_jpg, "--method", method, *budget, "--out", tmp_path / "cam.png")
    assert gradcam.METHODS[method].display_name in out


def test_explain_with_occlusion_takes_its_patch_options(capsys, cat_jpg, tmp_path):
    code, out, _ = run(capsys, "explain", cat_jpg, "--method", "occlusion", "--window", "112", "--stride", "56",
                       "--fill", "mean", "--out", tmp_path / "cam.png", "--heatmap", tmp_path / "cam.npy", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["method"] == "occlusion" and report["label"] in CAT_CLASSES
    heatmap = np.load(tmp_path / "cam.npy")
    assert heatmap.shape == Image.open(cat_jpg).size[::-1] and heatmap.max() == pytest.approx(1.0)
    code, _, err = run(capsys, "explain", cat_jpg, "--window", "8", "--out", tmp_path / "cam.png")
    assert code != 0 and "--window shape Occlusion's patch only." in err and "Traceback" not in err


def test_explain_smooth_differs_from_one_pass(capsys, cat_jpg, tmp_path):
    run(capsys, "explain", cat_jpg, "--layer", "block10_add", "--heatmap", tmp_path / "one.npy",
        "--out", tmp_path / "one.png")
    code, _, _ = run(capsys, "explain", cat_jpg, "--layer", "block10_add", "--smooth", "--heatmap",
                     tmp_path / "smooth.npy", "--out", tmp_path / "smooth.png")
    assert code == 0
    one, smooth = np.load(tmp_path / "one.npy"), np.load(tmp_path / "smooth.npy")
    assert one.shape == smooth.shape and np.corrcoef(one.ravel(), smooth.ravel())[0, 1] > 0.8
    assert not np.allclose(one, smooth, atol=1e-3)


# --- bad input ------------------------------------------------------------------


BAD_INPUT = {
    "missing image": ["predict", "{tmp}/missing.jpg"],
    "missing image (explain)": ["explain", "{tmp}/missing.jpg"],
    "broken image": ["explain", "{broken}"],
    "unknown model": ["predict", "{cat}", "--model", "NoSuchNet"],
    "missing model file": ["layers", "{tmp}/missing.keras"],
    "not a model file": ["layers", "{broken}"],
    "unknown layer": ["explain", "{cat}", "--layer", "no_such_layer"],
    "unknown class label": ["explain", "{cat}", "--target", "flux capacitor"],
    "class index out of range": ["explain", "{cat}", "--target", "1000"],
    "bad alpha": ["explain", "{cat}", "--alpha", "1.5"],
    "unknown colormap": ["explain", "{cat}", "--colormap", "rainbow-unicorn"],
    "labels for a built-in model": ["layers", "EfficientNet-Lite0", "--labels", "{own}/labels.txt"],
    "labels that do not fit": ["layers", "{own}/tiny.keras", "--labels", "{own}/three-labels.txt"],
    "unknown layer for a folder": ["explain", "{photos}", "--layer", "nope", "--out", "{tmp}/out"],
    "a channel budget for a method without channels": ["explain", "{cat}", "--channels", "8", "--out", "{tmp}/out"],
}


@pytest.mark.parametrize("argv", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_error_line_and_status_2(argv, capsys, tmp_path, cat_jpg, broken_jpg, photos, tiny_model):
    paths = dict(tmp=tmp_path, cat=cat_jpg, broken=broken_jpg, photos=photos, own=tiny_model)
    code, out, err = run(capsys, *(a.format(**paths) for a in argv))
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written before the input was checked


def test_usage_errors_keep_argparse_behaviour(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "x.jpg", "--method", "lime"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --- the real entry point -------------------------------------------------------


def test_python_m_gradcam_explain(tmp_path, cat_jpg):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must quiet TensorFlow by itself
    result = subprocess.run(
        [sys.executable, "-m", "gradcam", "explain", str(cat_jpg), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no TensorFlow log noise, no traceback
    report = json.loads(result.stdout)
    assert report["label"] in CAT_CLASSES
    assert (tmp_path / "cat-gradcam.png").is_file()

    bad = subprocess.run(
        [sys.executable, "-m", "gradcam", "explain", str(tmp_path / "missing.jpg")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr == f"error: No such file: {tmp_path / 'missing.jpg'}.\n"


def test_explain_folder_equals_each_image_alone(capsys, cat_jpg, coffee_png, tmp_path):
    # The folder goes through the batched engine; each overlay is the one-image command's.
    code, _, _ = run(capsys, "explain", cat_jpg.parent, "--out", tmp_path / "all", "--method", "gradcam++")
    assert code == 0
    for source in (cat_jpg, coffee_png):
        alone = tmp_path / f"{source.stem}-alone.png"
        assert run(capsys, "explain", source, "--out", alone, "--method", "gradcam++")[0] == 0
        together = np.asarray(Image.open(tmp_path / "all" / f"{source.stem}-gradcam.png"), np.int16)
        difference = np.abs(together - np.asarray(Image.open(alone), np.int16))
        # Maps equal to 1e-5 can fall on either side of a colormap step: at most one
        # step (a few levels) on a few pixels.
        assert difference.max() <= 4 and (difference > 1).mean() < 0.001


# --- lines said during a progress bar, and reports not replaced (issue 32, item 13) -------


def as_a_terminal_shows_it(stream: str) -> list[str]:
    """Each line as a terminal leaves it: what follows the last carriage return."""
    return [line.rsplit("\r", 1)[-1] for line in stream.split("\n")]


def test_folder_mode_writes_errors_and_notes_on_lines_of_their_own(capsys, cat_jpg, tiny_model, broken_jpg,
                                                                    tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(cat_jpg.read_bytes())
    (folder / "broken.jpg").write_bytes(broken_jpg.read_bytes())
    code, _, err = run(capsys, "explain", folder, "--model", tiny_model / "tiny.keras", "--labels",
                       tiny_model / "labels.txt", "--target", "no")
    assert code == 0 and "Explaining" in err
    shown = as_a_terminal_shows_it(err)
    assert any(line.startswith("error: broken.jpg: ") for line in shown), shown
    assert any(line.startswith("note: cat.jpg: nothing in layer features speaks for no") for line in shown), shown
    assert not any("Explaining" in line and ("error:" in line or "note:" in line) for line in shown), shown


def test_an_error_after_a_progress_line_starts_a_line_of_its_own(capsys):
    from gradcam.cli import _Progress, _say

    progress = _Progress("Explaining")
    progress.set(3, 40)
    _say("error: the disk is full")
    assert capsys.readouterr().err == "\rExplaining 3/40 photos\nerror: the disk is full\n"
    _say("error: once more")  # no progress line open: no blank line
    assert capsys.readouterr().err == "error: once more\n"


def test_audit_does_not_replace_an_earlier_report_without_a_word(capsys, tmp_path, monkeypatch, photos):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.html").write_text("last week's audit")
    # Refused before anything is loaded: the model named here does not even exist.
    code, out, err = run(capsys, "audit", photos, "--model", tmp_path / "no-such-model.keras")
    assert code == 2 and out == ""
    assert err == ("error: audit.html already exists here (an earlier audit's report?); name the report with "
                   "--out, or say --out audit.html to replace it.\n")
    assert (tmp_path / "audit.html").read_text() == "last week's audit"


def test_models_says_keras_weights_not_on_disk_are_fetched_on_first_use(capsys, monkeypatch, tmp_path):
    """Issue 32, item 14: "weights downloaded (528 MB)" read as if they were on disk."""
    from gradcam.zoo import catalog

    monkeypatch.setattr(catalog, "keras_weights_path", lambda name: tmp_path / f"{name}.weights.h5")
    (tmp_path / "ResNet50.weights.h5").write_bytes(b"stands in for the cached file")
    _, out, _ = run(capsys, "models")
    vgg = next(line for line in out.splitlines() if "VGG16" in line)
    resnet = next(line for line in out.splitlines() if "ResNet50" in line)
    assert "weights fetched on first use (528 MB)" in vgg and "downloaded" not in vgg
    assert "weights cached" in resnet


def test_counts_read_as_sentences_say_them():
    from gradcam.intake.text import counted

    assert [counted(1, "photo"), counted(3, "photo"), counted(1200, "photo"), counted(0, "class", "classes")] == [
        "1 photo", "3 photos", "1,200 photos", "0 classes"]
