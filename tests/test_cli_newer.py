"""The CLI's newer commands and options: concepts (one photo, a folder of classes),
metrics (the registry), check's new scores, SESS's --scales."""

import json

import numpy as np
from PIL import Image

import gradcam
from gradcam.cli import main
from gradcam.trust.metrics import METRICS
from helpers import photo


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_concepts_of_a_photo_draws_them_and_says_what_they_vote_for(capsys, tmp_path):
    canvas = Image.new("RGB", (448, 448), "white")
    canvas.paste(photo("chelsea").resize((224, 224)), (0, 0))
    canvas.paste(photo("coffee").resize((224, 224)), (224, 224))
    canvas.save(tmp_path / "two.png")
    code, out, _ = run(capsys, "concepts", tmp_path / "two.png", "-k", "2", "--out", tmp_path / "c.png", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["layer"] == "top_activation" and len(report["concepts"]) == 2
    assert Image.open(tmp_path / "c.png").size == (448, 448)
    firsts = {c["supports"][0]["label"] for c in report["concepts"]}
    assert firsts & {"Egyptian cat", "tabby, tabby cat", "tiger cat"}
    code, out, _ = run(capsys, "concepts", tmp_path / "two.png", "-k", "2", "--out", tmp_path / "c.png")
    assert code == 0 and out.count("concept ") == 2 and "votes" in out


def test_concepts_of_a_folder_are_shared_per_sub_folder(capsys, tmp_path):
    cats = tmp_path / "data" / "cats"
    cats.mkdir(parents=True)
    cat = photo("chelsea")
    cat.save(cats / "a.jpg")
    cat.transpose(Image.FLIP_LEFT_RIGHT).save(cats / "b.jpg")
    cat.crop((50, 0, 400, 300)).save(cats / "c.jpg")
    code, out, _ = run(capsys, "concepts", tmp_path / "data", "-k", "2", "--json")
    assert code == 0
    shared = json.loads(out)["cats"]
    assert shared[0]["present_in"] == 3 and shared[0]["photos"] == 3


def test_concepts_says_plainly_what_is_wrong(capsys, tmp_path):
    code, _, err = run(capsys, "concepts", tmp_path, "-k", "2")
    assert code == 2 and err.startswith("error: The folder ") and "has no images (" in err
    photo("chelsea").save(tmp_path / "cat.png")
    code, _, err = run(capsys, "concepts", tmp_path / "cat.png", "-k", "13")
    assert code == 2 and err.strip() == "error: The number of concepts is a whole number from 1 to 12; got 13."


def test_metrics_lists_the_registry(capsys):
    code, out, _ = run(capsys, "metrics")
    assert code == 0
    for key, metric in METRICS.items():
        assert f"{key}  " in out and metric.title in out and metric.paper in out


def test_check_prints_every_score_of_the_registry(capsys, tmp_path):
    photo("coffee").save(tmp_path / "coffee.png")
    code, out, _ = run(capsys, "check", tmp_path / "coffee.png", "--steps", "4", "--json")
    assert code == 0
    scores = json.loads(out)["faithfulness"]
    assert set(scores["map"]) == set(METRICS) == set(scores["random"])
    assert 0 < scores["map"]["arcc"] < 1 and scores["random"]["coherency"] is not None
    code, out, _ = run(capsys, "check", tmp_path / "coffee.png", "--steps", "4", "--no-road")
    assert code == 0 and "Complexity (lower is better)" in out and "Coherency (higher is better)" in out
    assert "ARCC" not in out  # it needs ROAD


def test_sess_takes_scales_and_other_methods_refuse_them(capsys, tmp_path):
    photo("chelsea").save(tmp_path / "cat.png")
    code, out, _ = run(capsys, "explain", tmp_path / "cat.png", "--method", "sess", "--scales", "1",
                       "--out", tmp_path / "sess.png", "--json")
    assert code == 0 and json.loads(out)["method"] == "sess"
    code, _, err = run(capsys, "explain", tmp_path / "cat.png", "--method", "gradcam", "--scales", "2")
    assert code == 2 and err.strip() == "error: --scales is for SESS only."
    assert gradcam.METHODS["fullgrad"].ignores_layer
    code, out, _ = run(capsys, "methods")
    assert "ignores --layer" in out.split("fullgrad", 1)[1].split("\n")[0]
