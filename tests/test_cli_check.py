"""`python -m gradcam check`: the faithfulness table and the sanity check from the
command line, as text and as JSON."""

import json

import pytest
from PIL import Image

from gradcam.cli import main


@pytest.fixture(scope="module")
def coffee_png(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("check") / "coffee.png"
    Image.fromarray(data.coffee()).save(path)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_carries_every_score_next_to_its_baselines(capsys, coffee_png):
    code, out, err = run(capsys, "check", coffee_png, "--target", "espresso", "--steps", "10", "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["label"] == "espresso" and report["method"] == "gradcam" and report["steps"] == 10
    scores = report["faithfulness"]
    assert set(scores) == {"map", "random", "blob"}
    assert scores["map"]["deletion_auc"] < scores["random"]["deletion_auc"]
    assert scores["map"]["insertion_auc"] > scores["random"]["insertion_auc"]
    assert all(isinstance(s["road_combined"], float) for s in scores.values())
    assert report["verdict"].startswith("Better than random") and report["sanity"] is None


def test_text_shows_the_table_the_verdict_and_the_sanity_check(capsys, coffee_png):
    code, out, err = run(capsys, "check", coffee_png, "--target", "967", "--steps", "10", "--no-road", "--sanity")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("espresso (class 967, ") and lines[0].endswith("layer top_activation, Grad-CAM")
    assert lines[1].split() == ["this", "map", "random", "maps", "centred", "blob"]
    # The metrics registry's title, the same in the CLI and the reports.
    assert lines[2].startswith("Deletion AUC (lower is better)") and len(lines[2].split()[-3:]) == 3
    assert not any(line.startswith("ROAD") for line in lines)  # --no-road
    assert any(line.startswith("Better than random") for line in lines)
    assert any(line.strip().startswith("random down to predictions") for line in lines)
    assert lines[-1].startswith("Passed: once the top of the network is random, the Grad-CAM map")


@pytest.mark.parametrize("argv, message", [
    (["check", "missing.jpg"], "error: "),
    (["check", "{coffee}", "--target", "no such class"], "error: "),
])
def test_bad_input_is_one_error_line(capsys, coffee_png, argv, message):
    code, out, err = run(capsys, *[a.format(coffee=coffee_png) for a in argv])
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_unknown_baseline_is_refused_by_the_parser(capsys, coffee_png):
    with pytest.raises(SystemExit) as exited:
        main(["check", str(coffee_png), "--baseline", "grey"])
    assert exited.value.code == 2
    assert "invalid choice: 'grey'" in capsys.readouterr().err
