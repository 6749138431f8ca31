"""Start the dashboard (`streamlit run explorer.py`, as the README does) on a free loopback
port, and stop it; read what it printed."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / ".streamlit-e2e.log"  # the server's console, one server at a time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(page: str = "explorer.py", timeout: float = 90.0, env: dict | None = None,
                     backend: str | None = None):
    """Yield the base URL of a fresh dashboard server; always stop it afterwards.
    ``page``: what `streamlit run` runs: explorer.py (the README's command: the default model
    warms as the server starts) or streamlit_app.py (the router alone: it warms on the first visit);
    ``env``: extra environment variables (e.g. an empty GRADCAM_CACHE_DIR for a cold start);
    ``backend``: the explanation service's URL for GRADCAM_BACKEND (None: in-process)."""
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "GRADCAM_WARM_START": "1", **(env or {})}  # as users run it
    env.pop("GRADCAM_BACKEND", None)
    if backend:
        env["GRADCAM_BACKEND"] = backend
    command = [
        sys.executable, "-m", "streamlit", "run", page,
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]
    log = open(LOG, "wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {process.returncode}; see .streamlit-e2e.log")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the dashboard did not start in time")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_for_output(text: str, timeout: float) -> None:
    """Wait until the running server has printed ``text`` on its console."""
    deadline = time.monotonic() + timeout
    while text not in LOG.read_text(encoding="utf-8", errors="replace"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not print {text!r} in {timeout:.0f} s; see {LOG.name}")
        time.sleep(0.3)


# Serve gives its HTTP proxy 5 s to start and 10 s to answer a health check, then
# kills it; a shared 2-core machine running tests can be slower than that.
PATIENT_PROXY = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "120", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "120"}


@contextlib.contextmanager
def serve_backend(cpus: int = 2, env: dict | None = None):
    """Yield the URL of the explanation service (``gradcam.scale.serve:app``) on a local
    Ray cluster of ``cpus`` CPUs, on loopback; always shut both down afterwards. ``env``:
    variables set here for as long (the cluster's processes inherit them: e.g. the token)."""
    import ray
    from ray import serve

    from gradcam.scale import dataset as distributed

    port = free_port()
    settings = {**PATIENT_PROXY, **(env or {})}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)  # inherited by the cluster's processes, Serve's controller among them
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             runtime_env=distributed.runtime_env(local=True))
    try:
        from gradcam.scale.serve import app, http_options

        serve.start(http_options=http_options(port))

        serve.run(app, blocking=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
