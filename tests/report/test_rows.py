"""The three "many photos" outputs (the CLI's summary.csv, the Batch page's CSV, the
rows the Ray Data actor writes to Parquet) describe a photo with the same columns
and the same values."""

import csv
import io

import pytest

from gradcam.cli import main
from gradcam.intake.digest import sha256
from gradcam.report import batch
from gradcam.report.rows import ROW_COLUMNS, csv_cell
from gradcam.scale import dataset


@pytest.fixture(scope="module")
def photos(tmp_path_factory, cat):
    folder = tmp_path_factory.mktemp("photos")
    cat.save(folder / "cat.jpg", quality=95)
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    return folder


def test_cli_batch_and_ray_rows_agree_on_a_photo(photos, tmp_path, lite0):
    names = ["broken.jpg", "cat.jpg"]
    datas = [(photos / name).read_bytes() for name in names]

    assert main(["explain", str(photos), "--out", str(tmp_path / "cli")]) == 0
    with (tmp_path / "cli" / "summary.csv").open(newline="", encoding="utf-8") as handle:
        cli = {row["file"]: row for row in csv.DictReader(handle)}

    records = batch.explain_records(lite0, datas)
    records = [{"file": name, "sha256": sha256(data), **record} for name, data, record in zip(names, datas, records)]
    page = {row["file"]: row for row in csv.DictReader(io.StringIO(batch.predictions_csv(records)))}

    # The Ray Data actor itself, without a cluster: what it returns is what write_parquet stores.
    table = dataset.Explainer("EfficientNet-Lite0", None, "gradcam", None, threads=2)(
        {"path": names, "bytes": datas})
    assert table.schema.names == list(dataset.COLUMNS)
    ray = {row["file"]: row for row in table.to_pylist()}

    assert list(ROW_COLUMNS) == list(page["cat.jpg"]) == [c for c in cli["cat.jpg"] if c != "overlay"]
    assert list(ROW_COLUMNS) == [c for c in ray["cat.jpg"] if c != "map"]
    good = cli["cat.jpg"]
    assert good["top1_label"] in ("Egyptian cat", "tabby", "tiger cat") and good["error"] == ""
    assert good["sha256"] == sha256(datas[1]) and good["target_label"] == good["top1_label"]
    for column in ROW_COLUMNS:
        # CSV cells are text; the Parquet row holds the values, which the CSV writer formats.
        assert page["cat.jpg"][column] == good[column] == csv_cell(ray["cat.jpg"][column]), column
    for row in (cli["broken.jpg"], page["broken.jpg"]):
        assert row["error"] == ray["broken.jpg"]["error"] and row["error"].endswith(".")
        assert row["top1_label"] == "" and ray["broken.jpg"]["top1_label"] is None
