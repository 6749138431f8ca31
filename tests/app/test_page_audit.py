"""Audit a dataset through AppTest: it opens on the Clever Hans demo and catches the
cheating model; the view travels in the link; a broken .zip costs one sentence."""

import io
import zipfile
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

from gradcam.zoo import clever_hans
from tests.app.test_app import run

ROOT = Path(__file__).resolve().parents[2]
PAGE = "audit"


def opened(link: dict | None = None) -> AppTest:
    at = page_app(PAGE, default_timeout=240)
    at.query_params.update(link or {})
    return run(at)


def test_the_page_opens_on_the_demo_and_shows_the_cheating_cluster_first():
    at = opened()
    assert at.radio(key="audit_source").value == "demo"
    assert at.selectbox(key="audit_model").value == "Clever Hans demo"
    assert [h.value for h in at.header][:2] == ["Flagged clusters", "Classes"]
    assert "1 cluster looks like a shortcut" in at.error[0].value
    reason = at.error[1].value  # the flagged cluster's own sentence, beside its mosaic
    assert "'disc'" in reason and "bottom right" in reason and "off the object" in reason
    removed, elsewhere = at.metric
    before, after = (float(v) for v in removed.value.split(" → "))
    assert before > 0.9 and after < 0.2  # removing the tag's patch: "disc" collapses ...
    unmoved, moved = (float(v) for v in elsewhere.value.split(" → "))
    assert unmoved == before and unmoved - moved < 0.1  # ... a patch of the same size elsewhere hardly matters
    table = at.dataframe[0].value
    assert list(table["Class"]) == ["disc", "square", "triangle"] and list(table["Flagged"]) == [1, 0, 0]
    assert list(table["Photos"]) == [24, 24, 24]
    assert dict(at.query_params) == {}  # the default view: nothing to say in the link


def test_a_link_opens_its_class_and_photo_and_the_page_writes_them_back():
    photo = "square/square-03.jpg"
    at = opened({"audit_class": "square", "audit_photo": photo})
    assert at.selectbox(key="audit_class").value == "square"
    captions = [caption.replace("\\", "") for image in at.image for caption in image.captions]
    assert any(caption.startswith(photo + ": 'square'") for caption in captions)  # the linked photo's overlay
    assert at.query_params["audit_class"] == "square" and at.query_params["audit_photo"] == photo

    at.selectbox(key="audit_class").set_value("triangle")
    run(at)
    # Another class: the square photo is not one of its points, so it leaves the view and the link.
    assert at.query_params["audit_class"] == "triangle" and "audit_photo" not in at.query_params
    assert "Click a point" in at.info[-1].value


def test_a_broken_zip_gives_one_sentence():
    at = opened()
    at.radio(key="audit_source").set_value("mine")
    run(at)
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("notes.txt", "no photos in here")
    at.file_uploader(key="audit_zip").set_value([("photos.zip", broken.getvalue(), "application/zip")])
    run(at)
    at.button(key="audit_go").click()
    run(at)
    assert len(at.error) == 1 and "\n" not in at.error[0].value
    assert "Flagged clusters" not in [h.value for h in at.header]

    at.file_uploader(key="audit_zip").set_value([("photos.zip", b"PK\x03\x04 but not an archive", "application/zip")])
    run(at)
    at.button(key="audit_go").click()
    run(at)
    assert len(at.error) == 1 and "\n" not in at.error[0].value


def zipped(folder: Path, pattern: str) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for path in sorted(folder.glob(pattern)):
            archive.write(path, path.relative_to(folder).as_posix())
    return data.getvalue()


def test_an_uploaded_zip_with_masks_is_audited_through_the_upload_path_and_flagged_alike():
    at = opened()
    at.radio(key="audit_source").set_value("mine")
    run(at)
    assert at.selectbox(key="audit_model").value == "EfficientNet-Lite0"  # own photos: Explore's model
    at.selectbox(key="audit_model").set_value("Clever Hans demo")
    at.file_uploader(key="audit_zip").set_value(
        [("shapes.zip", zipped(clever_hans.PHOTOS, "*/*.jpg"), "application/zip")])
    at.file_uploader(key="audit_masks").set_value(
        [("masks.zip", zipped(clever_hans.MASKS, "*/*.png"), "application/zip")])
    run(at)
    assert "Flagged clusters" not in [h.value for h in at.header]  # an upload waits for the button
    at.button(key="audit_go").click()
    run(at)
    assert "1 cluster looks like a shortcut" in at.error[0].value and "off the object" in at.error[1].value
    assert at.query_params["audit_photos"] == "mine" and "audit_photo" not in at.query_params


def test_the_demo_shows_the_transplant_and_the_background_swap_as_pictures_with_answers():
    at = opened()
    transplant = next(m.value for m in at.markdown if m.value.startswith("**Transplant:**"))
    assert "photos of other classes, the region made" in transplant and "'disc'" in transplant
    assert any("strongest drop with the region" in c.value for c in at.caption)
    # The class whose backgrounds make other objects 'disc': its subheader, its sentence in red.
    assert "'disc': the answer follows the background" in [s.value for s in at.subheader]
    assert any(e.value.replace("\\", "").startswith("Background swap: 'disc' objects") for e in at.error)
    # Before/after pictures, each with the model's answer.
    captions = [caption.replace("\\", "") for image in at.image for caption in image.captions]
    befores = [c for c in captions if c.startswith("before: '")]
    afters = [c for c in captions if c.startswith("after: '")]
    assert len(befores) == len(afters) >= 6 and "after: 'disc'" in afters
    assert "What was not tested" not in [h.value for h in at.header]  # with masks, everything was


def test_without_masks_the_page_says_what_was_not_tested_and_gives_no_all_clear():
    at = opened()
    at.radio(key="audit_source").set_value("mine")
    run(at)
    at.selectbox(key="audit_model").set_value("Clever Hans demo")
    at.file_uploader(key="audit_zip").set_value(
        [("shapes.zip", zipped(clever_hans.PHOTOS, "*/*.jpg"), "application/zip")])
    run(at)
    at.button(key="audit_go").click()
    run(at)
    assert not at.success  # no green box: backgrounds were not tested
    # Without masks the demo's tag is caught too (its pixels that are the same in every 'disc'
    # photo, pasted alone, make other photos 'disc'); what was not tested is still said.
    assert "1 cluster looks like a shortcut" in at.error[0].value
    assert any("the pixels of it that are the same in all these photos" in e.value for e in at.error)
    headers = [h.value for h in at.header]
    assert headers.index("Classes") < headers.index("What was not tested")
    assert any("need object masks or boxes" in w.value for w in at.warning)
    assert any("Colour swap" in c.value for c in at.caption), [c.value[:60] for c in at.caption]


def test_on_a_phone_each_class_is_a_card_with_the_tables_figures():
    """Below 640 px the class table is drawn as cards (a CSS rule shows one of the two): the same figures."""
    at = opened()
    cards = {m.value.split("**")[1]: m.value for m in at.markdown if m.value.startswith("**") and " photos · " in m.value}
    table = at.dataframe[0].value
    assert list(cards) == list(table["Class"]) == ["disc", "square", "triangle"]
    for _, row in table.iterrows():
        card = cards[row["Class"]]
        assert f"{row['Photos']} photos" in card and f"accuracy {row['Accuracy']}" in card
        assert f"mass on object {row['Mass on object']}" in card and f"pointing game {row['Pointing game']}" in card
        assert f"{row['Clusters']} cluster" in card
    assert "**1 flagged**" in cards["disc"] and "0 flagged" in cards["square"]
    assert any(".st-key-audit_classes_wide" in h.value and "max-width: 640px" in h.value for h in at.get("html"))
