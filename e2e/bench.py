"""The times a person feels on the Explore page: ``python -m e2e.bench``.

A real `streamlit run` server on loopback and headless Chromium; everything warm
(the model loaded, the page open). Each action is repeated and timed from the
browser event to the moment the new overlay image is in the page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageEnhance

from .browser import (
    browser_page, open_explorer, pick_prediction, press_on_slider, timed, upload_photo, wait_until_idle,
)
from .server import ROOT, streamlit_server

TARGETS = {"upload -> overlay shown": 2.0, "opacity change -> new overlay": 0.3,
           "top-5 target change -> new overlay": 0.3}


def _variants(folder: Path, count: int) -> list[Path]:
    """Slightly different photos, so every upload is new to the caches."""
    base = Image.open(ROOT / "samples" / "coffee.jpg").convert("RGB")
    paths = []
    for i in range(count):
        path = folder / f"coffee-{i}.jpg"
        ImageEnhance.Brightness(base).enhance(0.9 + 0.02 * i).save(path, quality=90)
        paths.append(path)
    return paths


def measure(rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in TARGETS}
    with tempfile.TemporaryDirectory() as folder, streamlit_server() as url, browser_page() as (page, _):
        open_explorer(page, url)
        photos = _variants(Path(folder), rounds + 1)
        upload_photo(page, photos[-1])  # warm: first upload path, first tab switch
        wait_until_idle(page)
        for i in range(rounds):
            times["upload -> overlay shown"].append(timed(page, lambda: upload_photo(page, photos[i])))
            wait_until_idle(page)
            key = "ArrowRight" if i % 2 == 0 else "ArrowLeft"
            times["opacity change -> new overlay"].append(timed(page, lambda: press_on_slider(page, key)))
            wait_until_idle(page)
            options = page.locator("[data-testid='stRadio'] [role='radiogroup'] label").all_inner_texts()
            label = options[1 + i % 4].split(" (")[0].strip()  # never the current top-1
            times["top-5 target change -> new overlay"].append(timed(page, lambda: pick_prediction(page, label)))
            wait_until_idle(page)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    times = measure(args.rounds)
    print(f"Explore page in headless Chromium, EfficientNet-Lite0, warm, {args.rounds} rounds")
    for name, values in times.items():
        median, worst = statistics.median(values), max(values)
        verdict = "met" if median <= TARGETS[name] else "MISSED"
        print(f"  {name:<36} median {median * 1000:7.0f} ms  worst {worst * 1000:7.0f} ms  "
              f"target <= {TARGETS[name] * 1000:.0f} ms  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
