"""Thirty students on one server: shared cached models, no cross-talk, no growth."""

import gc
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import ImageOps

import gradcam
from helpers import photo

LAYERS = ["top_activation", "block14_add", "block10_add", "block5_project_bn"]


def jobs():
    """Eight different requests: photos, classes, layers and methods all vary."""
    photos = [photo("chelsea"), photo("coffee"), photo("rocket"), photo("astronaut")]
    photos += [ImageOps.mirror(p) for p in photos]
    return [
        (image, [None, 967, 285, 504][i % 4], LAYERS[i % len(LAYERS)], ["gradcam", "gradcam++"][i // 4])
        for i, image in enumerate(photos)
    ]


def test_concurrent_explanations_equal_the_same_explanations_alone():
    # A fresh model: its compiled functions are traced for the first time by the
    # threads themselves, at once, which is when sessions would race hardest.
    model = gradcam.load_model("EfficientNet-Lite0")
    model._compiled.clear()
    requests = jobs() * 2  # 16 requests, each of the 8 twice, in flight together

    def run(request):
        image, target, layer, method = request
        return gradcam.explain(model, image, target=target, layer=layer, method=method)

    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(run, requests))
    alone = [run(request) for request in requests]
    for request, a, b in zip(requests, together, alone):
        assert (a.target, a.layer, a.method) == (b.target, b.layer, b.method)
        assert np.allclose(a.raw, b.raw, rtol=1e-4, atol=1e-6 * max(1.0, float(b.raw.max())))
        assert a.heatmap.shape == (request[0].height, request[0].width)
        assert [p.index for p in a.predictions] == [p.index for p in b.predictions]


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_stays_flat_over_many_explanations(lite0, cat, coffee):
    """A loose bound (the benchmark's soak measures 300): after warm-up, 120 more
    explanations of alternating photos, classes and both methods leave resident
    memory within 60 MB of where it was."""
    def one(i):
        image = cat if i % 2 else coffee
        gradcam.explain(lite0, image, target=[None, 967, 285][i % 3], method=["gradcam", "gradcam++"][i % 2])
        gradcam.explain_many(lite0, image, top=5)

    for i in range(20):
        one(i)
    gc.collect()
    before = resident_mb()
    for i in range(120):
        one(i)
    gc.collect()
    assert resident_mb() - before < 60
