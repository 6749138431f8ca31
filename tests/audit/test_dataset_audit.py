"""The dataset audit (gradcam.audit): a small CNN trained here on synthetic photos.

Two models, trained once per module (about 15 s each):
- "shortcut": the discs have any colour and every 'red' photo carries a checker tag
  in the top left corner: the tag is the only cue, so the model cheats with it;
- "honest": the disc's colour is the class, the tag sits on a random half of both
  classes, and the discs lie anywhere: the maps follow the discs.
"""

import io
import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers import AUDIT_SIDE, TAG_BOX, tagged_dataset, trained_cnn, write_image_folder

import gradcam
from gradcam.report.audit_report import audit_csv

pytestmark = pytest.mark.slow  # every test here needs a model trained in the module


@pytest.fixture(scope="module")
def shortcut(tmp_path_factory):
    model = trained_cnn(tagged_dataset(1, 300, shortcut=True), epochs=10)
    folder, masks = write_image_folder(tmp_path_factory.mktemp("shortcut") / "photos",
                                       tagged_dataset(2, 40, shortcut=True))
    return model, folder, masks, gradcam.audit(model, folder)


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    model = trained_cnn(tagged_dataset(1, 300, shortcut=False), epochs=10)
    folder, masks = write_image_folder(tmp_path_factory.mktemp("honest") / "photos",
                                       tagged_dataset(2, 40, shortcut=False))
    return model, folder, masks, gradcam.audit(model, folder, masks=masks)


def _at_the_tag(region) -> bool:
    """The region (fractions) holds the tag's centre."""
    x = (TAG_BOX[0] + TAG_BOX[2]) / 2 / AUDIT_SIDE
    y = (TAG_BOX[1] + TAG_BOX[3]) / 2 / AUDIT_SIDE
    x0, y0, x1, y1 = region
    return x0 <= x <= x1 and y0 <= y <= y1


def test_a_planted_tag_is_flagged_with_the_region_at_the_tag_and_a_reason(shortcut):
    _, _, _, audit = shortcut
    assert [p.true_label for p in audit.photos].count("red") == 20  # true labels from the class folders
    assert audit.flagged, audit.summary()
    top = audit.flagged[0]
    assert top.label == "red"
    assert _at_the_tag(top.region) and top.area <= 0.2
    assert top.reliance > 0.5 and top.random_reliance < 0.1  # the score lives on the tag, not anywhere
    assert top.tested == min(16, len(top.members))
    assert "'red' photos" in top.reason and "top left" in top.reason and "removing that patch" in top.reason
    # Most suspicious first; every flagged cluster is the tag's.
    assert [c.suspicion for c in audit.flagged] == sorted((c.suspicion for c in audit.flagged), reverse=True)
    assert all(_at_the_tag(c.region) for c in audit.flagged)
    assert sum(len(c.members) for c in audit.flagged) >= 15  # of the 20 'red' photos
    # The headline counts; the summary adds the most suspicious cluster's reason to it.
    assert "like a shortcut." in audit.headline() and top.reason not in audit.headline()
    assert audit.summary() == f"{audit.headline()} {top.reason}"


def test_a_tag_independent_of_the_class_is_not_flagged(honest):
    _, _, _, audit = honest
    assert not audit.flagged, [c.reason for c in audit.flagged]
    assert all(cls.accuracy >= 0.9 for cls in audit.classes)


def test_objects_placed_anywhere_with_maps_that_follow_them_are_not_flagged(honest):
    _, _, _, audit = honest
    # The maps follow the discs: the peak of nearly every map is on its disc.
    assert all(cls.pointing_rate >= 0.8 for cls in audit.classes), [cls.pointing_rate for cls in audit.classes]
    # ... which lie in different places, so the clusters of a class sit in different places,
    regions = {c.region for cls in audit.classes for c in cls.clusters if len(c.members) >= 4}
    assert len(regions) >= 2
    # ... and none of them is flagged, with a sentence that says why.
    for cls in audit.classes:
        for cluster in cls.clusters:
            assert not cluster.flagged and cluster.reason.startswith("In ")


def test_a_centred_object_is_not_a_shortcut(honest, tmp_path):
    model, _, _, _ = honest
    folder, _ = write_image_folder(tmp_path / "centred", tagged_dataset(3, 40, shortcut=False, centred=True))
    audit = gradcam.audit(model, folder)
    # Every map agrees on the middle (some on a small patch there), yet nothing is flagged:
    # the discs differ from photo to photo and the score does not hang on that patch alone.
    assert all(0.25 <= (c.region[0] + c.region[2]) / 2 <= 0.75 for cls in audit.classes for c in cls.clusters)
    assert not audit.flagged, [c.reason for c in audit.flagged]


def test_masks_give_the_relevance_mass_on_the_object(honest):
    _, folder, masks, audit = honest
    for photo in audit.photos[:5]:
        mask = np.asarray(Image.open(masks / photo.path)) > 0
        # mass on object = sum over the object's pixels of M / sum over all pixels of M, with M
        # the map (negatives cut) upsampled bilinearly to the photo's size (64 x 64).
        upsampled = np.asarray(Image.fromarray(np.maximum(photo.map, 0), mode="F").resize((64, 64), Image.BILINEAR))
        upsampled = np.maximum(upsampled, 0)
        assert photo.mass_on_object == pytest.approx(upsampled[mask].sum() / upsampled.sum(), abs=1e-5)
        peak = np.unravel_index(np.argmax(upsampled), upsampled.shape)
        assert photo.pointing_hit == bool(mask[peak])
    for cls in audit.classes:
        own = [p.mass_on_object for p in audit.photos if p.label == cls.label and p.mass_on_object is not None]
        assert cls.mass_on_object == pytest.approx(np.mean(own))
        # Denser on the disc than a map spread evenly, whose mass on the object is the disc's share of the photo.
        share = np.mean([(np.asarray(Image.open(masks / p.path)) > 0).mean() for p in audit.photos
                         if p.label == cls.label])
        assert cls.mass_on_object > share


def test_with_masks_the_tag_lies_off_the_object(shortcut):
    model, folder, masks, _ = shortcut
    audit = gradcam.audit(model, folder, masks=masks)
    top = audit.flagged[0]
    assert top.off_object > 0.9 and "off the object" in top.reason
    red = next(cls for cls in audit.classes if cls.label == "red")
    assert red.mass_on_object < 0.2  # the cheating class looks at the tag, not the disc


def test_the_ray_jobs_parquet_gives_the_same_clusters_as_the_folder(shortcut, tmp_path):
    import pyarrow.parquet as pq

    from gradcam.scale.dataset import explained_table

    model, folder, _, _ = shortcut
    files = sorted(folder.rglob("*.png"))
    # What each Ray actor writes (the real writer), without starting Ray: top-1 maps.
    table = explained_table(model, "last_conv", "gradcam", None, [str(f) for f in files] + [str(folder / "red/x.png")],
                            [f.read_bytes() for f in files] + [b"not a photo"])  # and a row with its sentence
    out = tmp_path / "job"
    out.mkdir()
    pq.write_table(table, out / "part-0.parquet")
    from_parquet = gradcam.audit(model, out)
    from_folder = gradcam.audit(model, folder, layer="last_conv", explain="predicted")

    def groups(audit):
        return {(cls.label, frozenset(m.rsplit("/", 1)[-1] for m in c.members)) for cls in audit.classes
                for c in cls.clusters}

    assert groups(from_parquet) == groups(from_folder)
    assert from_parquet.layer == "last_conv"
    assert [p.path for p in from_parquet.broken] == [str(folder / "red/x.png")]
    assert [p.true_label for p in from_parquet.photos if not p.error].count("red") == 20  # from the folders in `file`
    assert [c.label for c in from_parquet.flagged] == [c.label for c in from_folder.flagged] != []
    # The command line on the Parquet output: no model, no map recomputed.
    from gradcam.cli import main

    assert main(["audit", str(out), "--no-model", "--out", str(tmp_path / "job.html")]) == 0
    assert "&#x27;red&#x27; photos" in (tmp_path / "job.html").read_text()  # escaped like every text


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header that declares a huge image (a decompression bomb) with a tiny body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_a_broken_and_a_hostile_photo_in_a_zip_each_become_one_row_and_the_audit_goes_on(shortcut, tmp_path):
    model, folder, _, _ = shortcut
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for f in sorted(folder.glob("red/*.png"))[:6] + sorted(folder.glob("blue/*.png"))[:6]:
            archive.write(f, f"photos/{f.parent.name}/{f.name}")
        archive.writestr("photos/red/broken.png", b"\x89PNG\r\n\x1a\n this is not a photo")
        archive.writestr("photos/red/bomb.png", _png_claiming(100_000, 100_000))
    audit = gradcam.audit(model, ("upload.zip", buffer.getvalue()))
    assert len(audit.photos) == 14
    broken = {p.path: p.error for p in audit.broken}
    assert set(broken) == {"red/broken.png", "red/bomb.png"}
    assert all(error.endswith(".") and "\n" not in error for error in broken.values())
    assert sum(1 for p in audit.photos if p.map is not None) == 12
    assert {p.true_label for p in audit.photos if not p.error} == {"red", "blue"}


def test_the_cli_writes_the_html_report_and_the_json(shortcut, tmp_path, capsys):
    from gradcam.cli import main

    model, folder, _, _ = shortcut
    model.keras.save(tmp_path / "cheat.keras")
    (tmp_path / "labels.txt").write_text("red\nblue\n")
    hostile = folder / "red" / "<img src=x onerror=alert(1)>.png"
    hostile.write_bytes(b"not a photo")
    try:
        code = main(["audit", str(folder), "--model", str(tmp_path / "cheat.keras"), "--labels",
                     str(tmp_path / "labels.txt"), "--preprocessing", "0..1", "--out", str(tmp_path / "a.html"),
                     "--csv", str(tmp_path / "a.csv"), "--json"])
    finally:
        hostile.unlink()
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["flagged"][0]["label"] == "red"
    red = next(c for c in data["classes"] if c["label"] == "red")
    assert red["clusters"][0]["reason"].startswith("In ")
    page = (tmp_path / "a.html").read_text()
    flagged = page.index("<h2>Flagged clusters")
    assert flagged < page.index("removing that patch lowers", flagged) < page.index("<h2>Classes")
    assert "data:image/" in page and "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "http://" not in page and "https://" not in page
    csv_text = (tmp_path / "a.csv").read_text()
    assert csv_text.splitlines()[0].startswith("path,true_label,label")
    assert len(csv_text.strip().splitlines()) == 1 + 40 + 1  # a header, a row per photo and one for the broken file


def test_the_csv_never_starts_a_cell_with_a_formula(shortcut):
    _, _, _, audit = shortcut
    import dataclasses

    tricky = dataclasses.replace(audit, photos=[dataclasses.replace(audit.photos[0], path="=HYPERLINK(1)")])
    assert "'=HYPERLINK(1)" in audit_csv(tricky)


def test_progress_counts_the_photos_and_stop_ends_the_audit(shortcut):
    import threading

    model, folder, _, _ = shortcut
    calls = []
    gradcam.audit(model, folder, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(32, 40), (40, 40)]  # after each chunk of 32 photos
    stop = threading.Event()
    stop.set()
    with pytest.raises(gradcam.ExplanationStopped):
        gradcam.audit(model, folder, stop=stop)


def test_the_tag_is_proven_by_the_transplant_and_the_strongest_infill(shortcut):
    _, _, _, audit = shortcut
    top = audit.flagged[0]
    # Every infill was tried on the members and on a box of the same size elsewhere; the one
    # reported is the strongest drop, and it is far above the random box's.
    assert set(top.drops) == {"blur", "mean", "other classes"}
    assert top.infill == max(top.drops, key=lambda name: top.drops[name][0])
    assert (top.reliance, top.random_reliance) == top.drops[top.infill]
    # Pasted into 'blue' photos at the same place, the corner turns them 'red'; a random patch does not.
    assert top.recipients >= 4 and top.flips - top.random_flips >= 0.5 * top.recipients
    assert f"pasted into {top.recipients} photos of other classes, the patch made {top.flips} of them 'red'" \
        in top.reason
    assert top.examples and all(e.before_answer == "blue" for e in top.examples)
    # Without masks the audit says what it could not test, and never an all-clear for it.
    assert any("need object masks or boxes" in sentence for sentence in audit.untested)


def test_off_the_object_is_measured_per_photo_against_its_own_mask(honest):
    _, _, _, audit = honest
    # Objects placed anywhere with masks: each cluster's region on the map's grid is larger than
    # the discs, but per photo the map's strongest point lies on the photo's own disc.
    measured = [c.off_object for cls in audit.classes for c in cls.clusters if len(c.members) >= 4]
    assert measured and all(off is not None and off < 0.5 for off in measured), measured
    # With masks every class had its background swap, and none follows its background.
    assert all(cls.background is not None and not cls.flagged for cls in audit.classes)
    assert not audit.flagged_classes and not audit.untested
    assert "no cluster looks like a shortcut" in audit.headline()


def test_without_masks_the_headline_never_claims_what_was_not_tested(honest, tmp_path):
    model, folder, _, _ = honest
    audit = gradcam.audit(model, folder)
    assert not audit.flagged
    assert "no cluster looks like a shortcut" not in audit.headline()
    assert "nothing tested looks like a shortcut" in audit.headline()
    assert "Backgrounds, frames, textures and colour casts were not tested" in audit.summary()
    # What can be done without masks was tried: the colour swap, reported per class.
    assert all(cls.colours is not None and cls.reason.startswith("Colour swap:") for cls in audit.classes)


def test_the_report_and_the_cli_show_the_new_evidence(shortcut, honest, tmp_path, capsys):
    from gradcam.cli import main
    from gradcam.report.audit_report import audit_html

    model, folder, _, audit = shortcut
    page = audit_html(audit)
    flagged = page.index("<h2>Flagged clusters")
    top = audit.flagged[0]
    # The transplant as numbers and as before/after pictures with the model's answers.
    assert page.index(f"{top.flips} of {top.recipients} (a random patch: {top.random_flips})", flagged) \
        < page.index("<h2>Classes")
    assert page.count("alt='before'") >= len(top.examples) and "&#x27;blue&#x27; before, &#x27;red&#x27; after" in page
    assert "drop, infill other classes" in page and "drop, infill blur" in page
    # What was not tested, and why.
    assert page.index("<h2>What was not tested") < page.index("<h2>Classes")
    assert "they need object masks or boxes" in page
    # With masks: the background swap per class, its sentence and pictures; nothing left untested.
    honest_page = audit_html(honest[3])
    assert "Background swap: &#x27;red&#x27; objects pasted on other classes&#x27; backgrounds" in honest_page
    assert "What was not tested" not in honest_page
    # The command line prints the same evidence.
    model.keras.save(tmp_path / "cheat.keras")
    (tmp_path / "labels.txt").write_text("red\nblue\n")
    assert main(["audit", str(folder), "--model", str(tmp_path / "cheat.keras"), "--labels",
                 str(tmp_path / "labels.txt"), "--preprocessing", "0..1", "--out", str(tmp_path / "a.html")]) == 0
    out = capsys.readouterr().out
    assert "  flagged: In " in out and "pasted into" in out and "(filled with" in out
    assert "  not tested: Backgrounds, frames, textures and colour casts were not tested" in out
    assert "  red: Colour swap:" in out or "  blue: Colour swap:" in out


def test_the_evidence_tests_reuse_the_explained_photos_and_find_the_same(shortcut, monkeypatch):
    """The evidence tests take the photos the explaining pass already decoded and resized: each
    photo file is decoded once, and the audit is the same, figure for figure, as when nothing is
    kept (every test then decodes its photos again)."""
    from gradcam.audit import dataset_audit, sources

    model, folder, _, _ = shortcut
    decoded = []
    real = sources.load_image
    monkeypatch.setattr(sources, "load_image", lambda path, *a, **k: decoded.append(str(path)) or real(path, *a, **k))
    kept = gradcam.audit(model, folder)
    assert kept.flagged and len(decoded) == len(set(decoded)) == len(kept.photos)
    decoded.clear()
    monkeypatch.setattr(dataset_audit, "KEPT_PIXELS_BYTES", 0)
    read_again = gradcam.audit(model, folder)
    assert len(decoded) > len(read_again.photos)  # the tests decoded members and other photos again
    assert read_again.to_json() == kept.to_json()
