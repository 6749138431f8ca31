"""The manual says what the code does: the README's library example runs as printed,
the methods table matches the registry, and every link in README.md and docs/ leads
to a file (and a heading) that exists."""

import os
import re
from pathlib import Path

import pytest

import gradcam

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_a_front_door():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250
    for name in ("dashboard", "library", "methods", "trust", "speed", "scaling", "security", "layout"):
        assert (ROOT / "docs" / f"{name}.md").is_file()


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_link_leads_somewhere(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name} links to {target}, which does not exist"
        if fragment:
            headings = re.findall(r"(?m)^#+ (.*)$", file.read_text(encoding="utf-8"))
            assert fragment in {anchor(h) for h in headings}, f"{page.name}: no heading for #{fragment} in {file.name}"


def test_the_methods_table_is_the_registry():
    text = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 5:
            rows[cells[0].strip("`")] = cells[1:4]
    assert list(rows) == list(gradcam.METHODS)  # every key, in the registry's order
    for key, method in gradcam.METHODS.items():
        assert rows[key] == [method.display_name, method.kind, method.paper], key


def test_the_metrics_table_is_the_registry():
    from gradcam.trust.metrics import METRICS

    text = (ROOT / "docs" / "trust.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 6:
            rows[cells[0].strip("`")] = cells[1:]
    assert list(rows) == list(METRICS)  # every score, in the registry's order
    for key, metric in METRICS.items():
        name, higher, paper, computed, baseline = rows[key]
        assert name == metric.display_name and higher.split()[0] == metric.higher, key
        assert paper == metric.paper and computed == metric.computed and baseline == metric.random_baseline, key


@pytest.mark.slow
def test_the_readmes_library_example_runs_as_printed(tmp_path, monkeypatch):
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(block.strip().splitlines()) <= 12
    os.symlink(ROOT / "samples", tmp_path / "samples")  # "from the checkout's folder"
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "espresso-gradcam.png").is_file()
