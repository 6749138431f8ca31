"""The trust scores on the Report and Batch pages, through AppTest: off by default,
there when asked for, and the same numbers the engine gives."""

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

import gradcam
from dashboard.parts import trust_scores
from dashboard.runtime import model_cache
from dashboard.runtime import explanation_cache



def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def offered(monkeypatch):
    """The data behind each download button, by file name (AppTest cannot click a download)."""
    files = {}
    add_deferred = MediaFileManager.add_deferred

    def record_deferred(self, make, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            files[file_name] = make
        return add_deferred(self, make, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return files


def test_the_report_adds_the_scores_with_their_random_baseline_when_asked(offered):
    at = run(page_app("report", default_timeout=900))
    assert "Can this map be trusted?" not in offered["gradcam-report-cat.html"]()
    at.checkbox(key="report_trust").check()
    run(at)
    html = offered["gradcam-report-cat.html"]()
    image = explanation_cache.display_image(at.session_state["image_hash"], at.session_state["image_data"])
    model = model_cache.builtin_model(gradcam.DEFAULT_MODEL)
    target = gradcam.predict(model, image, top=1)[0].index
    scores = trust_scores.scores(at.session_state["image_hash"], gradcam.DEFAULT_MODEL, "top_activation", "gradcam", target,
                          "blur", image, model, None)  # None: the cache answers from its key (the page drew it)
    assert "Can this map be trusted? Faithfulness, next to random maps and a centred blob" in html
    assert "Deleted pixels became a strongly blurred copy of the photo, 50 steps each way" in html
    assert f'<td class="num">{scores.deletion.auc:.3f}</td><td class="num">{scores.random.deletion.auc:.3f}</td>' in html
    assert offered["gradcam-report-cat.pdf"]().startswith(b"%PDF")
    # The evidence, not only numbers: the curves as a picture, and one bottom line; the sanity check not run here.
    assert '<figure class="evidence"><img src="data:image/png;base64,' in html
    assert "Deletion and insertion curves of this map, random maps and a centred blob" in html
    assert "<strong>Bottom line</strong>: Beats random maps" in html and "; sanity check not run.</p>" in html
    contains = next(c.value for c in at.caption if "section" in c.value and "bottom line" in c.value)
    assert "faithfulness scores next to random maps" in contains and "sanity check's verdict" in contains
    # "Add faithfulness scores" travels in the link: a new session opening it has the scores.
    link = dict(at.query_params)
    assert link.get("trust") == "1"
    opened = page_app("report", default_timeout=900)
    opened.query_params.update(link)
    run(opened)
    assert opened.checkbox(key="report_trust").value is True


def test_batch_adds_the_aucs_to_the_contact_sheet_and_the_csv_when_asked(offered):
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, format="JPEG", quality=90)
    at = run(page_app("batch", default_timeout=900))
    at.file_uploader(key="batch_upload").set_value([("coffee.jpg", buffer.getvalue(), "image/jpeg")])
    run(at)
    assert at.checkbox(key="batch_faithfulness").value is False  # off by default: it costs more
    at.checkbox(key="batch_faithfulness").check()
    at.button(key="batch_explain").click()
    run(at)
    record = at.session_state["batch_results"][0]
    numbers = record["faithfulness"]
    caption = at.image[0].captions[0]
    expected = (f"deletion AUC {numbers['map']['deletion_auc']:.2f} (random {numbers['random']['deletion_auc']:.2f})"
                f" · insertion {numbers['map']['insertion_auc']:.2f}")
    assert expected in re.sub(r"\\(.)", r"\1", caption)
    assert "worse than a random map" not in caption  # Grad-CAM on the cup beats a random map
    sort = at.selectbox(key="batch_sort")
    assert [o for o in sort.options if o.startswith("Faithfulness")] == ["Faithfulness, worst first",
                                                                         "Faithfulness, best first"]
