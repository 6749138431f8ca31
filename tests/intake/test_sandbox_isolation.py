"""A sandbox worker inherits no credentials and has no network (issue 16): a decoder
subverted by a crafted file finds no token in its environment and nothing to connect to."""

import os

import sandbox_helpers
from gradcam.errors import InvalidImageError
from gradcam.intake.sandbox import ENV_ALLOWED, IMAGE_BUDGET, Pool


def test_a_worker_sees_no_secrets_and_no_network(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-workers")
    monkeypatch.setenv("GRADCAM_SERVICE_TOKEN", "not-for-workers")
    pool = Pool("image", 1, IMAGE_BUDGET, InvalidImageError)
    try:
        seen = pool.run(sandbox_helpers.surroundings, b"x")
    finally:
        pool.close()
    assert "AWS_SECRET_ACCESS_KEY" not in seen["env"] and "GRADCAM_SERVICE_TOKEN" not in seen["env"]
    ours = {"PYTHONPATH", "MALLOC_ARENA_MAX", "OPENBLAS_NUM_THREADS", "TF_CPP_MIN_LOG_LEVEL"}
    assert set(seen["env"]) <= {*ENV_ALLOWED, *ours, "GRADCAM_SANDBOX_NETWORK", "LC_CTYPE", "PWD"}, seen["env"]
    if "GRADCAM_SANDBOX_NETWORK" not in seen["env"]:  # where the kernel allows a namespace (here, as root)
        assert seen["interfaces"] == ["lo"], seen["interfaces"]  # no way out; the server still has its own
    else:
        assert os.geteuid() != 0, "as root the network namespace must work"
