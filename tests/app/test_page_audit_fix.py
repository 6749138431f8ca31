"""The Audit page's last steps through AppTest: from the demo's flagged cluster, one
click fixes the shortcut (P-ClArC) and audits the corrected model again; the page says
what the fix cannot do, sets both models side by side and offers the corrected model;
a second model can be compared on the same photos."""

from tests.app.test_page_audit import opened
from tests.app.test_app import run


def _fixed():
    at = opened()
    at.button(key="audit_fix_disc_0").click()
    return run(at)


def test_the_fix_step_re_audits_and_says_what_the_fix_cannot_do():
    at = _fixed()
    warning = at.warning[0].value.replace("\\", "")  # the page escapes Markdown
    assert warning == ("The correction makes the model ignore the cue; it does not teach it what it never learned: "
                       "without the cue it calls 24 of 24 'disc' photos 'square'. It must be retrained on data "
                       "without the cue.")
    said = [e.value.replace("\\", "") for e in [*at.error, *at.success]]
    before = next(text for text in said if text.startswith("**Clever Hans demo**"))
    after = next(text for text in said if text.startswith("**Clever Hans demo (corrected)**"))
    assert "1 cluster looks like a shortcut" in before
    assert "no cluster looks like a shortcut" in after
    table = next(d.value for d in at.dataframe if "Accuracy: Clever Hans demo" in d.value.columns)
    assert list(table["Class"]) == ["disc", "square", "triangle"]
    assert list(table["Flagged: Clever Hans demo (corrected)"]) == ["0", "0", "0"]
    assert table["Accuracy: Clever Hans demo (corrected)"][1] == "100%"  # squares keep their answers
    pasted = next(d.value for d in at.dataframe if "Photos" in d.value.columns and "Count" in d.value.columns)
    row = pasted[pasted["Photos"] == "other photos, 'disc' patch pasted in"].iloc[0]
    assert row["Clever Hans demo (corrected)"] == "16 right"
    labels = [b.label for b in at.get("download_button")]
    assert "Corrected model (.keras)" in labels and "Comparison report (HTML)" in labels


def test_another_model_with_other_classes_is_refused_with_one_sentence():
    at = opened()
    at.selectbox(key="audit_compare").set_value("EfficientNet-Lite0")
    run(at)
    refused = [e.value.replace("\\", "") for e in at.error]
    assert "EfficientNet-Lite0 names other classes than Clever Hans demo: a comparison needs the same classes." in \
        refused
