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


def test_the_pool_is_a_hard_cap_and_a_caller_waits_a_bounded_time(monkeypatch):
    import threading
    import time

    from gradcam.intake import sandbox

    monkeypatch.setattr(sandbox, "BUSY_WAIT_SECONDS", 1)
    pool = Pool("image", 1, sandbox.Budget(memory_mb=256, cpu_seconds=30, wall_seconds=6), InvalidImageError)
    try:
        pool.run(sandbox_helpers.echo_length, b"boot")  # booted: the wait below is the busy worker alone
        hog = threading.Thread(target=lambda: _swallow(pool.run, sandbox_helpers.sleep, b"x"))
        hog.start()
        time.sleep(0.5)
        started = time.monotonic()
        try:
            pool.run(sandbox_helpers.echo_length, b"12345")
            raise AssertionError("a second caller got a worker beyond the cap")
        except InvalidImageError as busy:
            assert str(busy) == sandbox.BUSY
        assert time.monotonic() - started < 5
        assert len(pool._all) == 1  # no extra worker was started
        hog.join()
        assert pool.run(sandbox_helpers.echo_length, b"12345")["length"] == 5  # and it serves again
    finally:
        pool.close()


def _swallow(call, *args):
    try:
        call(*args)
    except InvalidImageError:
        pass  # the sleeping task ends at its wall budget, as it should


def test_as_root_a_worker_runs_as_an_unprivileged_user_and_still_reads_files(tmp_path):
    """The server's own files are out of a subverted decoder's reach: as root, workers become
    ``nobody`` once their libraries are loaded, and still decode photos. (Model workers take
    the same path; tests/intake/test_sandbox.py reads models through them.)"""
    import pwd
    from pathlib import Path

    from gradcam.intake import sandbox

    secret = tmp_path / "only-the-server.txt"
    secret.write_text("server's own")
    secret.chmod(0o600)
    pool = Pool("image", 1, IMAGE_BUDGET, InvalidImageError)
    try:
        seen = pool.run(sandbox_helpers.who, b"x", str(secret))
        photo = pool.run(sandbox.decoded_image, (Path(__file__).parents[2] / "samples" / "cat.jpg").read_bytes(), 64)
    finally:
        pool.close()
    assert max(photo["pixels"].shape[:2]) == 64
    if os.geteuid() != 0:  # not root: the worker is the server's user, as before
        assert seen["uid"] == os.getuid()
        return
    nobody = pwd.getpwnam("nobody")
    assert seen["uid"] == nobody.pw_uid != 0 and seen["gid"] != 0 and seen["groups"] == [], seen
    assert not seen["reads"]  # the server's 0600 file: not for the worker
