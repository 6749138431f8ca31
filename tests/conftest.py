"""Shared fixtures: the real offline model and real photos, loaded once per run.
Helpers that tests call themselves live in tests/helpers.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# AppTest runs the app in this process: no background warm-up of the default model (dashboard.runtime.boot),
# so each test's engine-call counts are its own. The browser tests' real servers warm up (e2e/server.py).
os.environ.setdefault("GRADCAM_WARM_START", "0")

# AppTest imports the dashboard into this process, often after a test loaded TensorFlow, and the
# Live page's SRTP binding segfaults when it loads after TensorFlow: the dashboard package loads it
# (dashboard/__init__.py, the one place), so it is imported here, before any test module imports gradcam.
import dashboard  # noqa: E402,F401

import numpy as np
import pytest
from PIL import Image

from helpers import photo  # noqa: E402  (the fixtures below build their photos with it)


@pytest.fixture(scope="session")
def lite0():
    import gradcam

    return gradcam.load_model("EfficientNet-Lite0")


@pytest.fixture(scope="session")
def cat():
    return photo("chelsea")  # Chelsea the cat: ImageNet calls her an Egyptian cat / tabby


@pytest.fixture(scope="session")
def coffee():
    return photo("coffee")  # a cup of espresso on a saucer


@pytest.fixture(scope="session")
def noise_image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marks into groups
def pytest_collection_modifyitems(items):
    """With pytest-xdist (scripts/test.sh runs two workers, `--dist loadgroup`), every Ray
    test keeps to one worker and every browser test to one: two local Ray clusters on a
    2-CPU machine starve each other, and two Chromiums beside two servers make the browser
    tests' waits a measure of the machine's load. Every other test stays with its module,
    in order: some modules' tests share a page or a model through a module fixture and
    build on what the one before did. Without xdist these groups do nothing."""
    for item in items:
        group = next((mark for mark in ("ray", "browser") if item.get_closest_marker(mark)), item.nodeid.split("::")[0])
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_make_parametrize_id(config, val, argname):
    """Bytes built at collection time (zips carry the time they were written) would give
    each xdist worker different test ids, and xdist refuses to run then: name them by
    their length instead."""
    if isinstance(val, (bytes, bytearray)):
        return f"{argname}-{len(val)}-bytes"
    return None
