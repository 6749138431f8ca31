"""The installable package: pyproject.toml's dependencies are requirements.txt's, and
a wheel built from the checkout installs into a bare folder and its ``gradcam``
command works from a folder that has nothing of the checkout in it."""

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def requirements(name: str) -> set[str]:
    """The requirements a pip requirements file names, with its "-r" files, comments dropped."""
    found = set()
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            found |= requirements(line[3:].strip())
        else:
            found.add(str(Requirement(line)))
    return found


def test_pyproject_reads_requirements_txt_and_its_extras_match_the_other_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    # The library's dependencies are requirements.txt itself: one list, nothing to keep in step.
    assert project["project"]["dynamic"] == ["dependencies"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    assert project["project"]["scripts"] == {"gradcam": "gradcam.cli:main"}

    app = requirements("requirements.txt")
    extras = {name: {str(Requirement(r)) for r in reqs}
              for name, reqs in project["project"]["optional-dependencies"].items()}
    assert extras["ray"] == requirements("requirements-ray.txt") - app
    assert extras["hub"] == requirements("requirements-hub.txt") - app
    assert extras["dev"] - {"gradcam-explorer[ray]"} == requirements("requirements-dev.txt") - app - extras["ray"]
    assert "gradcam-explorer[ray]" in extras["dev"]  # requirements-dev.txt includes requirements-ray.txt


def run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_the_wheel_installs_and_its_gradcam_command_explains_a_photo_outside_the_checkout(tmp_path):
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt", "requirements-ray.txt",
                 "requirements-dev.txt"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "gradcam", source / "gradcam", ignore=shutil.ignore_patterns("__pycache__"))
    offline = ["--no-index", "--disable-pip-version-check", "--quiet"]
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", *offline,
         "--wheel-dir", str(tmp_path / "dist"), str(source)])
    (wheel,) = (tmp_path / "dist").glob("gradcam_explorer-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "gradcam/zoo/data/imagenet_classes.tsv" in names  # the class names travel with the code
    demo = "gradcam/zoo/data/clever_hans/"  # and the Clever Hans demo: model, labels, photos, masks
    assert {demo + "model.keras", demo + "labels.txt", demo + "photos/disc/disc-01.jpg",
            demo + "masks/disc/disc-01.png"} <= names
    assert "gradcam/engine/cam.py" in names
    # Developer tools stay in the checkout: the benchmark (bench/), the dashboard, the tests.
    assert not any(n.startswith(("tests/", "dashboard/", "bench/", "gradcam/bench/", "e2e/")) for n in names)
    assert "gradcam = gradcam.cli:main" in entry_points

    target = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", *offline, "--target", str(target), str(wheel)])
    gradcam_command = target / "bin" / "gradcam"
    assert gradcam_command.is_file()

    # A folder outside the checkout, and a Python path that holds only the install.
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "samples" / "cat.jpg", work / "photo.jpg")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="3")
    where = run([sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('gradcam').origin)"],
                cwd=work, env=env)
    assert Path(where.stdout.strip()).is_relative_to(target)

    models = run([str(gradcam_command), "models"], cwd=work, env=env)
    assert "* EfficientNet-Lite0" in models.stdout and "default model" in models.stdout
    assert "Clever Hans demo" in models.stdout

    explained = run([str(gradcam_command), "explain", "photo.jpg", "--out", "cam.png"], cwd=work, env=env)
    assert "cam.png" in explained.stdout
    assert "cat" in explained.stdout.lower()  # Egyptian cat / tabby / tiger cat: the label came from the TSV
    with Image.open(work / "cam.png") as cam, Image.open(work / "photo.jpg") as photo:
        assert cam.format == "PNG" and cam.size == photo.size

    # The Clever Hans demo loads from the installed package's own files.
    disc = target / "gradcam" / "zoo" / "data" / "clever_hans" / "photos" / "disc" / "disc-01.jpg"
    demo = run([str(gradcam_command), "explain", str(disc), "--model", "Clever Hans demo", "--out", "demo.png"],
               cwd=work, env=env)
    assert "disc" in demo.stdout
