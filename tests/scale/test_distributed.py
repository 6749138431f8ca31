"""Datasets on Ray Data, on a local 2-CPU Ray cluster started once for this module:
the Parquet rows equal the single-machine CLI's results, broken photos are rows
with their sentence, and a rerun resumes."""

import csv

import numpy as np
import pytest
import ray

import gradcam
from helpers import photo
from gradcam.scale import dataset as distributed
from gradcam.cli import main

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    # Two CPUs, like this project's machine: the actor pool must leave room for reads.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env=distributed.runtime_env(local=True))
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    photo("chelsea").save(folder / "cat.jpg", quality=95)
    photo("coffee").save(folder / "coffee.png")
    photo("rocket").transpose(0).save(folder / "rocket-flipped.jpg", quality=90)
    photo("astronaut").crop((100, 0, 400, 300)).save(folder / "astronaut-crop.webp")
    (folder / "broken.jpg").write_text("not an image at all")
    (folder / "notes.txt").write_text("not a photo, and skipped")
    return folder


def rows_by_name(out):
    return {row["file"].rsplit("/", 1)[-1]: row for row in distributed.read_results(str(out)).to_pylist()}


def test_rows_equal_the_single_machine_cli_and_a_rerun_resumes(folder, tmp_path, capsys, lite0):
    summary = distributed.explain_dataset(str(folder), str(tmp_path / "maps"))
    assert (summary.photos, summary.skipped, summary.explained, summary.failed) == (5, 0, 4, 1)
    rows = rows_by_name(tmp_path / "maps")
    assert sorted(rows) == ["astronaut-crop.webp", "broken.jpg", "cat.jpg", "coffee.png", "rocket-flipped.jpg"]
    assert list(distributed.read_results(str(tmp_path / "maps")).schema.names) == list(distributed.COLUMNS)

    assert main(["explain", str(folder), "--out", str(tmp_path / "cli")]) == 0
    with (tmp_path / "cli" / "summary.csv").open(newline="") as handle:
        cli = {row["file"]: row for row in csv.DictReader(handle)}
    assert sorted(cli) == sorted(rows)
    for name, row in rows.items():
        assert row["error"] == cli[name]["error"]
        if row["error"]:
            assert row["error"].endswith(".") and row["target_label"] is None and row["map"] is None
            continue
        assert row["target_label"] == cli[name]["target_label"] == cli[name]["top1_label"]
        assert f"{row['target_probability']:.6f}" == cli[name]["top1_probability"]
        assert row["sha256"] == distributed_sha(folder / name)
        assert (row["layer"], row["method"]) == ("top_activation", "gradcam")
        alone = gradcam.explain(lite0, gradcam.load_image(folder / name))
        assert row["target"] == alone.target
        assert [row[f"top{k}_label"] for k in range(1, 6)] == [p.label for p in alone.predictions]
        assert np.abs(np.asarray(row["map"], np.float32) - alone.raw).max() <= 1e-5 * max(1.0, alone.raw.max())
    assert rows["cat.jpg"]["target_label"] in ("Egyptian cat", "tabby", "tiger cat")
    assert rows["coffee.png"]["target_label"] == "espresso"

    # Resumable: a new photo is the only one explained; nothing is written twice.
    photo("coffee").transpose(0).save(folder / "coffee-flipped.jpg", quality=90)
    again = distributed.explain_dataset(str(folder), str(tmp_path / "maps"))
    assert (again.photos, again.skipped, again.explained, again.failed) == (6, 5, 1, 0)
    paths = distributed.read_results(str(tmp_path / "maps")).column("file").to_pylist()
    assert len(paths) == len(set(paths)) == 6
    (folder / "coffee-flipped.jpg").unlink()


def distributed_sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_glob_with_target_layer_and_method(folder, tmp_path, capsys, lite0):
    code = main(["explain", str(folder / "c*"), "--ray", "--out", str(tmp_path / "espresso"),
                 "--target", "espresso", "--layer", "block10_add", "--method", "gradcam++"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Explained 2 of 2 new photos into") and "photos/s" in out
    rows = rows_by_name(tmp_path / "espresso")
    assert sorted(rows) == ["cat.jpg", "coffee.png"]
    for name, row in rows.items():
        alone = gradcam.explain(lite0, gradcam.load_image(folder / name), target="espresso", layer="block10_add",
                                method="gradcam++")
        assert (row["target"], row["target_label"], row["layer"], row["method"]) == (967, "espresso", "block10_add",
                                                                             "gradcam++")
        assert np.abs(np.asarray(row["map"], np.float32) - alone.raw).max() <= 1e-5 * max(1.0, alone.raw.max())


@pytest.mark.parametrize("args, sentence", [
    (["--out", "{tmp}/x", "--ray", "--model", "nope.keras"], "built-in model"),
    (["--ray"], "give its folder with --out"),
    (["--out", "{tmp}/x", "--ray", "--layer", "nope"], 'no layer "nope"'),
    (["--out", "{tmp}/x", "--ray", "--target", "no such class"], "No class is called"),
    (["--out", "{tmp}/x", "--address", "127.0.0.1:1"], "goes with --ray"),
])
def test_bad_requests_are_one_sentence(folder, tmp_path, capsys, args, sentence):
    code = main(["explain", str(folder), *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and sentence in err and err.count("\n") == 1


def test_missing_or_empty_sources_are_one_sentence(tmp_path, capsys):
    for source in (tmp_path / "missing", tmp_path, tmp_path / "*.jpg"):
        assert main(["explain", str(source), "--ray", "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and ("does not exist" in err or "holds no images" in err)
