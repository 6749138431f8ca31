"""The explanation service (Ray Serve) on loopback, started once for this module on
a local 2-CPU Ray cluster: its maps equal the in-process ones, concurrent requests
share engine calls and each gets its own photo's answer, and the dashboard's
pages show the service's maps when GRADCAM_BACKEND points at it. The cluster runs
with GRADCAM_SERVICE_TOKEN set (the client here sends it, as the dashboard does), so
a hostile client's requests are refused by the real service too (issue 16): no
token (401), a body over the limit (413), too many maps (400)."""

import http.client
import io
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

import gradcam
from helpers import photo
from e2e.server import serve_backend
from gradcam.scale import wire as service
from dashboard.runtime import explanation_service
from gradcam.intake import DISPLAY_MAX_SIDE

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PAGE = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
FLOAT16_STEP = 1e-3  # the wire sends map / peak in float16: about 3 significant digits
TOKEN = "not-a-real-token-16"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def url():
    with serve_backend(cpus=2, env={"GRADCAM_SERVICE_TOKEN": TOKEN}) as url:
        yield url


def assert_same_maps(served, explanations):
    assert [m.target for m in served.maps] == [e.target for e in explanations]
    assert [p.index for p in served.predictions] == [p.index for p in explanations[0].predictions]
    for m, e in zip(served.maps, explanations):
        assert m.label == e.label and m.no_positive_evidence == e.no_positive_evidence
        assert abs(m.probability - e.probability) < 1e-5
        assert np.abs(m.raw - e.raw).max() <= FLOAT16_STEP * max(float(e.raw.max()), 1e-12)


def test_the_service_answers_the_in_process_maps(url, lite0):
    cat = photo("chelsea")
    served = service.explain_remote(url, png(cat), "EfficientNet-Lite0", top=5)
    assert_same_maps(served, gradcam.explain_many(lite0, cat, top=5))
    assert served.layer == "top_activation" and served.maps[0].label in ("Egyptian cat", "tabby", "tiger cat")
    coffee = photo("coffee")
    served = service.explain_remote(url, png(coffee), "EfficientNet-Lite0", layer="block10_add",
                                    method="gradcam++", targets=[967, 285])
    assert_same_maps(served, gradcam.explain_many(lite0, coffee, targets=[967, 285], layer="block10_add",
                                                  method="gradcam++"))


def test_concurrent_requests_share_engine_calls_and_each_gets_its_own_answer(url, lite0):
    photos = [photo(n) for n in ("chelsea", "coffee", "rocket", "astronaut")]
    photos += [p.transpose(0) for p in photos]
    with ThreadPoolExecutor(len(photos)) as pool:
        answers = list(pool.map(lambda p: service.explain_remote(url, png(p), "EfficientNet-Lite0", top=1),
                                photos))
    for image, served in zip(photos, answers):
        assert_same_maps(served, gradcam.explain_many(lite0, image, top=1))
    # The raw JSON says how many requests shared an engine call: some did.

    def batched_with(image):
        request = urllib.request.Request(f"{url}/?model=EfficientNet-Lite0&top=1", data=png(image), method="POST",
                                         headers=BEARER)
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())["batched_with"]

    with ThreadPoolExecutor(len(photos)) as pool:
        assert max(pool.map(batched_with, photos)) > 1


@pytest.mark.parametrize("data, params, sentence", [
    (b"not an image", {}, "not an image"),
    (None, {"model": "my.keras"}, "built-in models only"),
    (None, {"layer": "nope"}, 'no layer "nope"'),
    (None, {"targets": "5000"}, "Class 5000 does not exist"),
    (None, {"method": "nope"}, 'Unknown method "nope"'),
])
def test_bad_requests_are_one_sentence(url, data, params, sentence):
    data = data if data is not None else png(photo("coffee"))
    with pytest.raises(ValueError, match=sentence):
        service.explain_remote(url, data, params.get("model", "EfficientNet-Lite0"), params.get("layer"),
                               params.get("method", "gradcam"),
                               targets=[int(params["targets"])] if "targets" in params else None)


def post(url: str, body: bytes, query: str = "model=EfficientNet-Lite0&top=1", headers=None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/?{query}", data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_the_real_service_refuses_a_hostile_clients_requests_and_serves_the_next(url):
    from gradcam.scale.serve import MAX_MAPS, MAX_PHOTO_BYTES

    coffee = png(photo("coffee"))
    assert post(url, coffee) == (401, {"error": "This explanation service needs its token."})
    assert post(url, coffee, headers={"Authorization": "Bearer " + TOKEN[:-1]})[0] == 401
    # 50 MB and one byte declared, a kilobyte sent: refused by its length, the rest never read.
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.putrequest("POST", "/?model=EfficientNet-Lite0&top=1")
    for name, value in {**BEARER, "Content-Length": str(MAX_PHOTO_BYTES + 1)}.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(b"\0" * 1024)
    answer = connection.getresponse()
    assert answer.status == 413 and json.loads(answer.read()) == {"error": "The photo is larger than 50 MB."}
    connection.close()
    for query in (f"model=EfficientNet-Lite0&top={MAX_MAPS + 1}",
                  "model=EfficientNet-Lite0&targets=" + ",".join(str(i) for i in range(MAX_MAPS + 1))):
        status, refused = post(url, coffee, query, BEARER)
        assert status == 400 and refused["error"] == f"Ask for between 1 and {MAX_MAPS} classes.", refused
    status, served = post(url, coffee, headers=BEARER)  # and the service still answers
    assert status == 200 and served["maps"][0]["label"] in ("espresso", "cup", "coffee mug"), served.get("error")


def test_an_unreachable_service_is_one_sentence():
    with pytest.raises(ValueError, match="cannot be reached"):
        service.explain_remote("http://127.0.0.1:9", b"x", "EfficientNet-Lite0")


def test_the_explore_page_shows_the_services_maps(url, lite0, monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        seen.append(service.explain_remote(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(explanation_service, "explain_remote", spy)
    monkeypatch.setenv("GRADCAM_BACKEND", url)
    st.cache_data.clear()
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception and not at.error
    assert len(seen) == 1  # the page's top-5 maps came from the service, in one request
    image = gradcam.load_image(Path(__file__).resolve().parents[2] / "samples" / "cat.jpg")
    image.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.LANCZOS)  # as the page shows it
    assert_same_maps(seen[0], gradcam.explain_many(lite0, image, top=5))

    # A class outside the top-5 is one more request; the in-process page shows the same top-5.
    at.selectbox(key="target").set_value(1).run()
    assert not at.exception and len(seen) == 2 and [m.target for m in seen[1].maps] == [1]
    monkeypatch.delenv("GRADCAM_BACKEND")
    local = AppTest.from_file(PAGE, default_timeout=180).run()
    assert [o for o in local.radio(key="target_pick").options] == [o for o in at.radio(key="target_pick").options]
    assert len(seen) == 2


def test_the_dashboard_and_the_cli_never_import_ray():
    # Ray is an optional extra: README's first command installs requirements.txt only.
    import subprocess
    import sys

    code = ("import sys, dashboard.runtime.explanation_cache, dashboard.parts.shared_state, gradcam, gradcam.cli, gradcam.report.batch; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'ray'], 'ray imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-500:]
    assert "ray" not in (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()


def test_a_page_says_when_the_service_cannot_be_reached(monkeypatch):
    monkeypatch.setenv("GRADCAM_BACKEND", "http://127.0.0.1:9")  # nothing listens on the discard port
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception
    shown = [e.value.replace("\\", "") for e in at.error]  # Markdown escapes removed
    assert shown == ["The explanation service at http://127.0.0.1:9 cannot be reached "
                     "([Errno 111] Connection refused)."]
