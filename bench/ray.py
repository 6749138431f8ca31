"""Ray Data against one process: ``python -m bench --ray [--photos 500]``.

Slow (minutes), so it is its own entry. Generates photos from samples/ (random
crops and flips), then times, interleaved round by round, each as a new process
from launch to exit (imports, model load and Ray's start-up included):

- the single-process CLI (``python -m gradcam explain FOLDER``; it also draws and
  saves a PNG overlay per photo),
- the same engine work in one process without overlays (decode, ``explain_batch``
  in chunks of 32, keep the maps): what Ray does, minus Ray,
- Ray Data on this machine (``... --ray --out``): a local cluster, one actor.

The overhead ratio is Ray's time over the one-process engine's (same work); the
target is <= 1.3x at 500 photos.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ROUNDS = 2

ENGINE_ALONE = """
import sys
from pathlib import Path
import gradcam
model = gradcam.load_model(gradcam.DEFAULT_MODEL)
files = sorted(Path(sys.argv[1]).iterdir())
maps = []
for start in range(0, len(files), 32):
    images = [gradcam.load_image(f) for f in files[start:start + 32]]
    maps += [many[0].raw for many in gradcam.explain_batch(model, images)]
print(len(maps))
"""


def generate(folder: Path, count: int) -> None:
    """``count`` JPEGs from the sample photos: random crops (50-100% of each side),
    half of them flipped, at most 640 px on the long side."""
    rng = np.random.default_rng(0)
    sources = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    for i in range(count):
        image = sources[i % len(sources)]
        width, height = image.size
        w, h = (int(side * rng.uniform(0.5, 1.0)) for side in (width, height))
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = image.crop((left, top, left + w, top + h))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.thumbnail((640, 640))
        crop.save(folder / f"photo-{i:04d}.jpg", quality=90)


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(count: int = 500) -> int:
    work = Path(tempfile.mkdtemp(prefix="gradcam-bench-ray-"))
    try:
        photos = work / "photos"
        photos.mkdir()
        generate(photos, count)
        python = sys.executable
        contenders = {
            "single-process CLI (with overlays)": lambda r: [python, "-m", "gradcam", "explain", str(photos),
                                                            "--out", str(work / f"cli-{r}")],
            "one process, engine only": lambda r: [python, "-c", ENGINE_ALONE, str(photos)],
            "Ray Data, local cluster": lambda r: [python, "-m", "gradcam", "explain", str(photos), "--ray",
                                                  "--out", str(work / f"ray-{r}")],
        }
        # Warm the model conversion cache once, so no contender pays for it.
        subprocess.run([python, "-c", "import gradcam; gradcam.load_model(gradcam.DEFAULT_MODEL)"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for r in range(ROUNDS):
            for name, command in contenders.items():
                samples[name].append(_seconds(command(r)))
        seconds = {name: statistics.median(values) for name, values in samples.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{count} photos (crops and flips of samples/), each command from launch to exit, "
          f"median of {ROUNDS} interleaved rounds:")
    for name, s in seconds.items():
        print(f"  {name:<36} {s:7.1f} s  {count / s:6.1f} photos/s")
    engine = seconds["one process, engine only"]
    ray_s = seconds["Ray Data, local cluster"]
    ratio = ray_s / engine
    verdict = "met" if ratio <= 1.3 else "MISSED"
    print(f"  Ray / one process (same work)        {ratio:6.2f}x  target <= 1.3x  {verdict}")
    print(f"  Ray / single-process CLI             {ray_s / seconds['single-process CLI (with overlays)']:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
