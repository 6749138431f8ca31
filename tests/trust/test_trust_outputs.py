"""Trust scores where people take them away: the report (HTML and PDF), the batch
records and CSV."""

import csv
import dataclasses
import io

import pytest
from PIL import Image

import gradcam
from gradcam import report
from gradcam.report import batch


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def scored(lite0, coffee):
    explanation = gradcam.explain(lite0, coffee, target="espresso")
    scores = gradcam.faithfulness(lite0, coffee, explanation, steps=6, seeds=1)
    check = gradcam.sanity_check(lite0, coffee, target="espresso")
    item = report.ReportItem.from_explanation(coffee, "coffee.jpg", "ab" * 32, explanation)
    return scores, check, item


def test_the_html_report_carries_each_score_with_its_random_baseline_and_the_sanity_verdict(scored):
    scores, check, item = scored
    plain = report.report_html([item])
    assert "Can this map be trusted?" not in plain  # nothing claimed when nothing was measured
    with_trust = dataclasses.replace(item, faithfulness=scores.numbers(), sanity=check.summary())
    html = report.report_html([with_trust])
    assert "Can this map be trusted? Faithfulness, next to random maps" in html
    for value in (scores.deletion.auc, scores.random.deletion.auc, scores.blob.deletion.auc,
                  scores.insertion.auc, scores.random.insertion.auc, scores.road.combined):
        assert f'<td class="num">{value:.3f}</td>' in html
    assert f'<td class="num">{scores.average_drop:.1f}</td>' in html
    assert scores.verdict.replace("'", "&#x27;") in html
    assert check.verdict.replace("'", "&#x27;") in html


def test_the_pdf_report_carries_them_too(scored):
    scores, check, item = scored
    with_trust = dataclasses.replace(item, faithfulness=scores.numbers(), sanity=check.summary())
    pdf = report.report_pdf([with_trust])
    assert pdf.startswith(b"%PDF") and len(pdf) > len(report.report_pdf([item]))


def test_batch_records_and_csv_add_the_aucs_only_when_asked(lite0, cat, coffee):
    plain = batch.explain_for_batch(lite0, jpeg(cat))
    assert plain["faithfulness"] is None
    assert next(csv.reader(io.StringIO(batch.predictions_csv([{"file": "cat.jpg", "sha256": "", **plain,
                                                                "error": None}])))) == list(batch.CSV_COLUMNS)
    record = batch.explain_for_batch(lite0, jpeg(coffee), faithfulness=True)
    numbers = record["faithfulness"]
    assert numbers["map"]["deletion_auc"] < numbers["random"]["deletion_auc"]
    records = [{"file": "coffee.jpg", "sha256": "", **record, "error": None},
               {"file": "cat.jpg", "sha256": "", **plain, "error": None},
               {"file": "broken.jpg", "sha256": "", "error": "The file is not an image."}]
    rows = list(csv.DictReader(io.StringIO(batch.predictions_csv(records))))
    assert float(rows[0]["deletion_auc"]) == pytest.approx(numbers["map"]["deletion_auc"], abs=1e-6)
    assert float(rows[0]["random_insertion_auc"]) == pytest.approx(numbers["random"]["insertion_auc"], abs=1e-6)
    assert rows[1]["deletion_auc"] == "" and rows[2]["insertion_auc"] == ""  # not scored, or not explained
    assert batch.batch_report_items(records)[0].faithfulness == numbers
