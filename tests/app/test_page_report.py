"""The Report page through Streamlit's AppTest, and the very file its button offers."""

import base64
import hashlib
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

import gradcam
from gradcam.zoo.labels import imagenet_labels

PAGE = "report"
ON_A_CNN = [k for k, m in gradcam.METHODS.items() if m.kind != "attention"]  # rollout needs attention layers


@pytest.fixture
def offered(monkeypatch):
    """What each download button offers, by file name: AppTest cannot click a
    download, so record the data (or the deferred callable) the page hands Streamlit."""
    files: dict[str, object] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record_add(self, data, mimetype, coordinates, file_name=None, *args, **kwargs):
        if file_name:
            files[file_name] = (mimetype, data)
        return add(self, data, mimetype, coordinates, file_name, *args, **kwargs)

    def record_deferred(self, make, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            files[file_name] = (mimetype, make)
        return add_deferred(self, make, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", record_add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return files


def content(files: dict, name: str) -> tuple[str, bytes | str]:
    mimetype, data = files[name]
    return mimetype, data() if callable(data) else data


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


class Images(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.sources, self.scripts = [], 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.sources += [dict(attrs)["src"]] if tag == "img" else []
        self.scripts += tag == "script"


def embedded(html_text: str) -> list[Image.Image]:
    parsed = Images(html_text)
    assert parsed.scripts == 0
    images = []
    for source in parsed.sources:
        match = re.fullmatch(r"data:image/(?:png|jpeg);base64,(.+)", source)
        assert match, source[:60]
        images.append(Image.open(io.BytesIO(base64.b64decode(match.group(1)))))
    return images


def test_the_report_page_offers_a_self_contained_report_of_the_current_view(offered):
    at = run(page_app(PAGE, default_timeout=180))
    assert not at.error
    buttons = {b.label for b in at.get("download_button")}
    assert {"Download report (HTML)", "Download report (PDF)"} <= buttons

    # The preview: the overlay, the top-5 and the metadata of the sample photo.
    assert any(c.startswith("Overlay, opacity 0.40") for image in at.image for c in image.captions)
    top5, facts = at.dataframe[0].value, at.dataframe[1].value
    assert len(top5) == 5 and top5["explained"].tolist()[0] == "yes"
    explained = top5["class"].tolist()[0]
    assert explained in {"Egyptian cat", "tabby", "tiger cat"}
    assert "cat.jpg" in facts["value"].tolist()

    mimetype, page = content(offered, "gradcam-report-cat.html")
    assert mimetype == "text/html"
    assert len(embedded(page)) == 3  # photo, overlay, colour scale
    assert explained in page and "EfficientNet-Lite0" in page and at.session_state["image_hash"] in page
    assert "http://" not in page and "https://" not in page

    mimetype, pdf = content(offered, "gradcam-report-cat.pdf")
    assert mimetype == "application/pdf" and pdf.startswith(b"%PDF")


def test_including_more_explanations_adds_sections(offered):
    at = run(page_app(PAGE, default_timeout=180))
    include = at.multiselect[0]
    methods = len(ON_A_CNN)
    assert len(include.value) == 1 and len(include.options) == 5 * methods  # top-5 classes x every method
    target, method = include.value[0]
    second_label = include.options[methods].split(" (")[0]  # "tiger cat (8.5%), Grad-CAM"
    include.set_value([(target, method), (target, "gradcam++"), (imagenet_labels().index(second_label), method)])
    run(at)
    assert len(at.image) == 3 and len(at.dataframe) == 6
    _, page = content(offered, "gradcam-report-cat.html")
    assert len(embedded(page)) == 9 and "Grad-CAM++" in page and "Contents" in page
    assert second_label in page


def test_a_hostile_file_name_stays_text(offered, coffee):
    hostile = "<script>alert(1)</script> **bold** [x](javascript:alert(1)).jpg"
    buffer = io.BytesIO()
    coffee.save(buffer, format="JPEG")
    data = buffer.getvalue()
    at = page_app(PAGE, default_timeout=180)
    # The shared photo as the Explore page's uploader leaves it.
    at.session_state["image_data"] = data
    at.session_state["image_name"] = hostile
    at.session_state["image_hash"] = hashlib.sha256(data).hexdigest()
    at.session_state["image_source"] = "upload"
    run(at)
    intro = at.markdown[0].value
    assert "\\*\\*bold\\*\\*" in intro and "\\[x\\]\\(javascript" in intro  # escaped Markdown, shown as typed
    assert hostile in at.dataframe[1].value["value"].tolist()  # dataframes show plain text
    (name,) = [n for n in offered if n.endswith(".html")]
    assert re.fullmatch(r"gradcam-report-[A-Za-z0-9._-]+\.html", name)  # a safe download name
    _, page = content(offered, name)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; **bold**" in page
