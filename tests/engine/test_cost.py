"""An explanation's memory is bounded before any pass runs (gradcam.engine.cost).

The hostile model of the review, built here: a 21 kB ``.keras`` file with a
2048 x 2048 input, one 1x1 convolution of 24 filters, pooling and Dense(10). It
loads in milliseconds; explaining it the way Explore does (top-5 Grad-CAM) held
~2.8 GB in the server process. It must be refused with a sentence in well under
a second and without the memory, and an ordinary model must still be explained.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import gradcam
from helpers import own_model
from gradcam.engine import cost
from gradcam.engine.batched import BUCKETS


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class PeakMemory:
    """The largest resident memory seen while the block ran, sampled every 5 ms, minus the start."""

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._done.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.grew = self.peak - self.start


def wide_model(filters: int, side: int = 2048) -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential([
        keras.Input((side, side, 3)),
        keras.layers.Conv2D(filters, 1, name="wide"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])


def keras_file(model: keras.Model, tmp_path) -> bytes:
    path = tmp_path / "wide.keras"
    model.save(path)
    return path.read_bytes()


def photo(side: int = 64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(2).integers(0, 256, (side, side, 3), dtype=np.uint8))


def test_the_hostile_file_is_refused_in_well_under_a_second_without_the_memory(tmp_path):
    data = keras_file(wide_model(24), tmp_path)
    assert len(data) < 30_000  # the attack is a small file
    model = gradcam.load_model(data)  # loading it is cheap, and stays allowed
    with PeakMemory() as memory:
        started = time.perf_counter()
        with pytest.raises(gradcam.ExplanationTooCostly) as refused:
            gradcam.explain_many(model, photo(), top=5)
        seconds = time.perf_counter() - started
    sentence = str(refused.value)
    assert "\n" not in sentence and sentence.endswith("."), sentence
    assert "2048 x 2048" in sentence and "the limit is 2.0 GB" in sentence, sentence
    assert isinstance(refused.value, ValueError)  # every front end shows a ValueError's sentence
    assert seconds < 0.5, seconds
    assert memory.grew < 200 * 2**20, memory.grew / 2**20  # explaining it held ~2.8 GB
    assert model.compiled_keys() == [], "a pass was built before the refusal"
    # The same process still explains an ordinary model.
    small = own_model(wide_model(4, side=64), [f"class {i}" for i in range(10)])
    assert len(gradcam.explain_many(small, photo(), top=5)) == 5


def test_the_sizes_are_the_layers_output_shapes_written_out():
    model = own_model(wide_model(8, side=64), [f"class {i}" for i in range(10)])
    pixels, conv, pooled, dense = 64 * 64 * 3, 64 * 64 * 8, 8, 10
    found = cost.activations(model)
    assert found.total == pixels + conv + pooled + dense
    assert found.largest_layer == conv
    assert found.largest == max(pixels, conv)
    gradient, eigen = gradcam.METHODS["gradcam"], gradcam.METHODS["eigencam"]
    assert cost.explanation_bytes(model, gradient, 5) == 4 * (pixels + conv + pooled + dense + 2 * 5 * conv)
    assert cost.explanation_bytes(model, eigen, 5) == 4 * 4 * conv  # no tape: a few of the widest tensor


def measured_growth() -> tuple[int, int]:
    """(resident memory an explanation added, the estimate) for a 1024 x 1024 input with 6
    filters: small enough to run here, large enough to measure."""
    model = own_model(wide_model(6, side=1024), [f"class {i}" for i in range(10)])
    image = photo(1024)
    gradcam.explain_many(model, photo(64), top=5)  # traced once, so tracing is not measured
    estimate = cost.explanation_bytes(model, gradcam.METHODS["gradcam"], 5)
    with PeakMemory() as memory:
        gradcam.explain_many(model, image, top=5)
    return memory.grew, estimate


def test_the_estimate_is_not_below_what_an_explanation_really_holds():
    # In a new process: in a worker that ran other tests, the allocator reuses memory those freed,
    # the resident size hardly grows, and the comparison would prove nothing (seen in a full run).
    tests = Path(__file__).resolve().parents[1]
    code = (f"import sys; sys.path[:0] = [{str(tests)!r}, {str(tests.parent)!r}]; "
            "from tests.engine.test_cost import measured_growth; print(*measured_growth())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    grew, estimate = map(int, done.stdout.split()[-2:])
    assert grew <= estimate, (grew / 2**20, estimate / 2**20)
    assert grew > estimate / 8, "the measurement saw nothing: the comparison would prove nothing"


def test_every_method_of_the_offline_model_fits_the_default_budget(lite0):
    for method in gradcam.METHODS.values():
        assert cost.check_explanation(lite0, method, 5) < cost.memory_budget_bytes() / 2, method.name


def test_a_lower_budget_set_by_the_operator_applies(monkeypatch):
    model = own_model(wide_model(8, side=512), [f"class {i}" for i in range(10)])  # ~28 MB
    monkeypatch.setenv("GRADCAM_EXPLAIN_MEMORY_MB", "10")
    with pytest.raises(gradcam.ExplanationTooCostly, match="the limit is 10 MB"):
        gradcam.explain(model, photo())
    monkeypatch.setenv("GRADCAM_EXPLAIN_MEMORY_MB", "not a number")  # a typo keeps the default, not no limit
    assert cost.memory_budget_bytes() == cost.DEFAULT_MEMORY_MB * 2**20


def test_a_batch_runs_in_smaller_calls_when_a_full_one_would_be_over_budget(monkeypatch):
    model = own_model(wide_model(8, side=128), [f"class {i}" for i in range(10)])
    per_photo = cost.explanation_bytes(model, gradcam.METHODS["gradcam"], 1)
    monkeypatch.setenv("GRADCAM_EXPLAIN_MEMORY_MB", str(per_photo * 5 // 2**20))  # four photos fit, eight do not
    results = gradcam.explain_batch(model, [photo(128)] * 9, top=1)
    assert len(results) == 9
    buckets = {key[3] for key in model.compiled_keys() if isinstance(key, tuple) and key[0] == "batch"}
    assert buckets and max(buckets) <= 4 < BUCKETS[-1], buckets
