"""Several people exploring at once: ``python -m e2e.load``.

One real `streamlit run` server on loopback; N browser sessions (separate browser
contexts, so separate Streamlit sessions) upload different photos at the same
moment, round after round. Reports the median and worst time from upload to the
overlay loaded in each page, and checks that every session got its own photo's
answer (no cross-talk between sessions).

``--backend serve`` runs the same sessions with the dashboard's explanations
coming from the Ray Serve service (``gradcam.scale.serve:app`` on a local cluster,
GRADCAM_BACKEND set); ``--backend both`` measures in-process and then the service
in one run, e.g. ``python -m e2e.load --sessions 16 --rounds 2 --backend both``.
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
from .server import ROOT, serve_backend, streamlit_server

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


def run(sessions: int, rounds: int, backend: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        photos = _photos(Path(folder), sessions * rounds)
        expected = expected_labels(photos)
        times, wrong = [], []
        with streamlit_server(backend=backend) as url, browser_pages(sessions) as pages:
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


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(name: str, result: dict) -> bool:
    times = result["times"]
    print(f"  {name}: upload -> overlay shown: median {statistics.median(times) * 1000:.0f} ms, "
          f"95th percentile {_percentile(times, 0.95) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms "
          f"over {len(times)} uploads")
    if result["wrong"]:
        print(f"    WRONG ANSWERS: {result['wrong']}")
        return False
    print(f"    every session got its own photo's answer ({len(times)} of {len(times)})")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.load", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["in-process", "serve", "both"], default="in-process",
                        help="where the dashboard's explanations run (serve: Ray Serve on a local cluster)")
    args = parser.parse_args(argv)
    print(f"{args.sessions} browser sessions uploading at once, {args.rounds} rounds, EfficientNet-Lite0, 2 cores")
    good = True
    if args.backend in ("in-process", "both"):
        good &= report("in-process", run(args.sessions, args.rounds))
    if args.backend in ("serve", "both"):
        with serve_backend() as url:
            good &= report("Ray Serve backend", run(args.sessions, args.rounds, backend=url))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
