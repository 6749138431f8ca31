"""The suite passes wherever the checkout lies (issue 32, item 16): a fresh copy in a folder
only its owner may open (mode 700, as ``mktemp -d`` makes it, or a root user's home), run as
root. A sandbox worker gives up root before it takes a task, and unpickling a task imports
the task's module: helpers in tests/ (and the bench's task in bench/) were out of
the sandbox user's reach, so every such test read "it crashed the reader"."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
# What the copied suite needs: the package, the tests' helpers and one sandbox test module, and the
# dashboard's package file (the tests' conftest imports it first: it loads the SRTP binding before TensorFlow).
COPIED = ["pyproject.toml", "gradcam", "samples", "dashboard/__init__.py", "tests/__init__.py", "tests/conftest.py", "tests/helpers.py",
          "tests/sandbox_helpers.py", "tests/intake/__init__.py", "tests/intake/test_sandbox_isolation.py"]


@pytest.mark.slow
def test_sandbox_tests_pass_in_a_checkout_only_its_owner_can_read():
    private = Path(tempfile.mkdtemp(prefix="gradcam-private-"))
    try:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        for name in COPIED:
            source, target = CHECKOUT / name, private / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)
        # The worker-side helpers, the product's photo decoding and who the worker runs as.
        chosen = ["tests/intake/test_sandbox_isolation.py::test_a_worker_sees_no_secrets_and_no_network",
                  "tests/intake/test_sandbox_isolation.py::"
                  "test_as_root_a_worker_runs_as_an_unprivileged_user_and_still_reads_files"]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)  # the copy's own package, not this checkout's
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *chosen, "-q", "-p", "no:randomly", "-p", "no:xdist", "-o",
             "addopts=", "-c", str(private / "pyproject.toml"), "--rootdir", str(private)],
            cwd=private, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
        probe = subprocess.run([sys.executable, "-c", "import gradcam; print(gradcam.__file__)"],
                               cwd=private, env=env, capture_output=True, text=True, timeout=120)
        assert probe.stdout.strip().startswith(str(private)), probe  # the copy ran, not this checkout
    finally:
        shutil.rmtree(private, ignore_errors=True)
