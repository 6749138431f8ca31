"""The benchmark runs on what requirements.txt installs, and prints no Keras warning."""

import datetime
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import gradcam
from bench.suite import SOAK_PHOTOS, keras_tutorial_gradcam, sample_photo
from bench.timing import machine_line, median_ms

ROOT = Path(__file__).resolve().parents[2]
STRUCTURE_WARNING = "doesn't match the expected structure"

# scikit-image is a test requirement, not an app requirement: the benchmark must not need it.
WITHOUT_SKIMAGE = (
    "import sys; sys.modules['skimage'] = None;"  # `import skimage` now raises ModuleNotFoundError
    "from bench.suite import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.slow
def test_the_benchmark_runs_without_scikit_image_and_prints_its_figures_cleanly():
    done = subprocess.run(
        # The soak's 50-explanation warm-up is too slow for the suite; its photos are checked below.
        # Faster Score-CAM's agreement runs the full 1280-channel Score-CAM per photo (a third of
        # this run's time): one photo shows the row prints; one round of the trust rows likewise.
        [sys.executable, "-c", WITHOUT_SKIMAGE, "--rounds", "1", "--soak", "0", "--cold-runs", "1",
         "--large", "MobileNetV2", "--agreement-photos", "1", "--trust-rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "forward pass" in out and "Keras tutorial's way" in out
    assert "Full Score-CAM on Lite0 (1280 channels)" in out
    assert "cold first explanation" in out and "loading the model" in out and "first explanation (trace" in out
    assert "all targets met" in out or "some targets missed" in out
    assert out.startswith("Measured ") and "load average" in out.splitlines()[0]  # the docs quote that line
    assert STRUCTURE_WARNING not in done.stderr  # the tutorial's way is called as its model expects


def test_the_first_line_says_when_and_how_busy_the_machine_was(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (23.5, 18.25, 9.0))
    when = datetime.datetime(2026, 11, 27, 14, 5, tzinfo=datetime.timezone.utc)
    assert machine_line(when) == (f"Measured 2026-11-27 14:05 UTC, load average 23.50, 18.25, 9.00 "
                                  f"(1, 5, 15 min) on {os.cpu_count()} CPUs")


def test_contenders_are_timed_in_interleaved_rounds_after_their_warm_up():
    calls = []
    times = median_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, warm=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert set(times) == {"a", "b"} and all(ms >= 0 for ms in times.values())


def test_rows_against_the_forward_pass_time_each_method_beside_it(monkeypatch):
    """bench/vit.py and bench/hub.py share one helper: the forward pass and each method, on one
    photo at the model's size, interleaved; the methods really run (their maps are computed)."""
    from bench import timing
    from gradcam.engine import cam

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 16, 3))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    model = gradcam.Model(name="tiny", keras=keras.Model(inputs, keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(features))), input_size=(12, 16), labels=["a", "b"], preprocessing="0..1")
    seen = []
    real = cam.compute_prepared
    monkeypatch.setattr(cam, "compute_prepared",
                        lambda m, x, **kw: seen.append((x.shape, kw["method"])) or real(m, x, **kw))
    row = timing.against_forward(model, {"gradcam": "gradcam", "plusplus": "gradcam++"}, rounds=2)
    assert set(row) == {"forward_ms", "gradcam_ms", "plusplus_ms"} and all(ms > 0 for ms in row.values())
    assert seen == [((1, 12, 16, 3), "gradcam"), ((1, 12, 16, 3), "gradcam++")] * 3  # a warm-up, then 2 rounds


def test_the_engine_and_the_tutorials_way_raise_no_keras_warning(lite0):
    """Explaining and predicting, for a plain and a nested model, run under
    warnings-as-errors: Keras' "inputs structure" warning (or any other) fails."""
    photo = sample_photo("cat.jpg")
    base = keras.Model(lite0.keras.inputs, lite0.keras.get_layer("top_activation").output, name="pretrained")
    inputs = keras.Input((224, 224, 3))
    head = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(base(inputs)))
    nested = gradcam.Model(name="nested", keras=keras.Model(inputs, head), input_size=(224, 224), labels=["a", "b"],
                           preprocessing="efficientnet-lite")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in (lite0, nested):
            gradcam.predict(model, photo)
            gradcam.explain(model, photo)
            gradcam.explain_many(model, photo, top=2, method="gradcam++")
        gradcam.explain(nested, photo, layer="pretrained/block10_add")
        gradcam.explain_layers(nested, photo)
        heatmap = keras_tutorial_gradcam(lite0.keras, lite0.prepare(photo), "top_activation", 285)
    assert np.isfinite(np.asarray(heatmap)).all()


def test_the_soaks_photos_ship_with_the_project():
    assert [sample_photo(name).mode for name in SOAK_PHOTOS] == ["RGB"] * 4
