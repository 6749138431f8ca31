"""The HTML report on a phone (issue 32, item 7): 702 px wide on a 390 px screen before. Opened in
headless Chromium at 390 px, the page is no wider than the screen; a wide table scrolls inside itself."""

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam import report
from e2e.browser import browser_page
from synthetic import SIDE, centre_reader
from tests.e2e.test_browser import require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LONG_NAME = "IMG_20260101_123456789_HDR_portrait_mode_final_final_v3_from_the_shared_album_export.jpg"


def test_the_html_report_fits_a_390_px_phone(lite0, cat, tmp_path):
    require_chromium()
    model = centre_reader()
    photo = Image.fromarray(np.random.default_rng(2).integers(120, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    explanation = gradcam.explain(model, photo, target=0, layer="feature")
    scores = gradcam.faithfulness(model, photo, explanation, steps=6, baseline="mean", road=False, seeds=2)
    scored = report.ReportItem(**{**vars(report.ReportItem.from_explanation(photo, "scored.png", "0" * 64,
                                                                              explanation)),
                                  "faithfulness": scores.numbers(),
                                  "evidence": (("Deletion and insertion curves",
                                                report.content.curves_picture(scores)),)})
    real = report.ReportItem.from_explanation(cat, LONG_NAME, "1" * 64, gradcam.explain(lite0, cat))
    page_file = tmp_path / "report.html"
    page_file.write_text(report.report_html([real, scored], model=lite0), encoding="utf-8")

    with browser_page(width=390, height=844, touch=True) as (page, _):
        page.goto(page_file.as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # Every photo and picture fits the screen, and the scores' table keeps all its columns (it scrolls).
        widest_image = page.evaluate("Math.max(...Array.from(document.images).map(i => i.getBoundingClientRect().right))")
        assert widest_image <= 390
        headers = page.locator("table.trust th").all_inner_texts()
        assert {"This map", "Random maps", "Centred blob"} <= {h.strip() for h in headers}
