"""Several people exploring at once: ``python -m e2e.load``.

One real `streamlit run` server on loopback; N browser sessions (separate browser
contexts, so separate Streamlit sessions) upload different photos at the same
moment, round after round. Reports the median and worst time from upload to the
overlay loaded in each page, and checks that every session got its own photo's
answer (no cross-talk between sessions).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from .browser import (
    browser_pages, open_explorer, overlay_shown_after, target_label, upload_photo, wait_until_idle, watch_overlay,
)
from .server import ROOT, streamlit_server

PHOTOS = ["cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg", "cat-and-coffee.jpg"]


def _photos(folder: Path, count: int) -> list[Path]:
    """``count`` distinct photos (mirrored copies after the first five)."""
    paths = []
    for i in range(count):
        image = Image.open(ROOT / "samples" / PHOTOS[i % len(PHOTOS)]).convert("RGB")
        if (i // len(PHOTOS)) % 2:
            image = ImageOps.mirror(image)
        path = folder / f"person-{i}-{PHOTOS[i % len(PHOTOS)]}"
        image.save(path, quality=92)
        paths.append(path)
    return paths


def expected_labels(paths: list[Path]) -> list[str]:
    import gradcam

    model = gradcam.load_model(gradcam.DEFAULT_MODEL)
    return [gradcam.predict(model, gradcam.load_image(p))[0].label for p in paths]


def run(sessions: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        photos = _photos(Path(folder), sessions * rounds)
        expected = expected_labels(photos)
        times, wrong = [], []
        with streamlit_server() as url, browser_pages(sessions) as pages:
            for page in pages:
                open_explorer(page, url, timeout=180)
            for r in range(rounds):
                batch = list(range(r * sessions, (r + 1) * sessions))
                for page in pages:
                    watch_overlay(page)
                for page, i in zip(pages, batch):  # all uploads go out together
                    upload_photo(page, photos[i])
                for page, i in zip(pages, batch):
                    times.append(overlay_shown_after(page, timeout=180))
                    wait_until_idle(page)
                    shown = target_label(page).split("  (")[0]
                    if shown != expected[i]:
                        wrong.append((photos[i].name, shown, expected[i]))
    return {"sessions": sessions, "rounds": rounds, "times": times, "wrong": wrong}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.load", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.sessions, args.rounds)
    times = result["times"]
    print(f"{args.sessions} browser sessions uploading at once, {args.rounds} rounds, EfficientNet-Lite0, 2 cores")
    print(f"  upload -> overlay shown: median {statistics.median(times) * 1000:.0f} ms, "
          f"worst {max(times) * 1000:.0f} ms over {len(times)} uploads")
    if result["wrong"]:
        print(f"  WRONG ANSWERS: {result['wrong']}")
        return 1
    print(f"  every session got its own photo's answer ({len(times)} of {len(times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
