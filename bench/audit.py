"""The audit's rows of ``python -m bench --audit N``:

- SpRAy over N generated 7x7 maps in one class (four places plus noise), its time
  and the process's peak memory. Target: 100,000 maps in under a minute and under 2 GB;
- ``gradcam.audit``'s photos per second against ``explain_batch``'s on the same
  photos (crops of the sample photos in a folder, EfficientNet-Lite0, each photo's
  top-1 class; both read the files; interleaved medians). Target: >= 0.5x (issue
  audit-proof: the evidence tests cost passes, run only where a finding is possible);
- the same on the Clever Hans demo with its masks (its model, 3 classes, every test runs; no target);
- ``--audit-benchmark developed|held-out|all|outside|outside-held-out|patches``: the shortcut
  benchmark's table (recall per kind on the shortcut models, false flags on the clean controls),
  gradcam/audit/benchmark.py; ``outside``: models built with Keras' and KerasHub's own code;
  ``patches``: every tag and watermark case (they are audited without masks too);
- ``--audit-worst``: only the worst case, the patch tests forced onto every cluster."""

from __future__ import annotations

import resource
import time

import numpy as np

TARGET_SECONDS, TARGET_MB = 60.0, 2048.0
TARGET_RATIO = 0.5
PHOTOS = 128  # photos for the throughput row: four full calls of the largest bucket


def generated_maps(count: int, seed: int = 0) -> np.ndarray:
    """(count, 7, 7) maps: a blob at one of four places, jittered, plus noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:7, 0:7]
    places = np.array([(1, 1), (1, 5), (5, 3), (3, 3)])
    group = rng.integers(0, len(places), count)
    rows = places[group, 0][:, None, None] + rng.normal(0, 0.4, (count, 1, 1))
    cols = places[group, 1][:, None, None] + rng.normal(0, 0.4, (count, 1, 1))
    return (np.exp(-((ys - rows) ** 2 + (xs - cols) ** 2) / 2) + rng.random((count, 7, 7)) * 0.05).astype(np.float32)


def throughput(photos: int = PHOTOS, rounds: int = 2, every_cluster: bool = False) -> tuple[float, float, object]:
    """(audit photos/s, explain_batch photos/s, the last audit) on the same generated photos.
    ``every_cluster``: the worst case, the reliance test on every cluster of 4 or more
    photos whatever its region's size (the audit itself tests only small regions)."""
    from gradcam.audit import dataset_audit as audit_module

    import tempfile
    from pathlib import Path

    import gradcam
    from bench.ray import generate
    from bench.timing import median_ms

    model = gradcam.load_model(gradcam.DEFAULT_MODEL)
    with tempfile.TemporaryDirectory() as folder:
        generate(Path(folder), photos)
        files = sorted(Path(folder).glob("*.jpg"))
        last = {}

        def batched() -> None:
            for start in range(0, len(files), 32):
                gradcam.explain_batch(model, [gradcam.load_image(f) for f in files[start:start + 32]])

        def audited() -> None:
            last["audit"] = gradcam.audit(model, folder, explain="predicted")

        small_area = audit_module.SMALL_AREA
        audit_module.SMALL_AREA = 1.0 if every_cluster else small_area
        try:
            times = median_ms({"explain_batch": batched, "audit": audited}, rounds, warm=1)
        finally:
            audit_module.SMALL_AREA = small_area
    return photos / times["audit"] * 1000, photos / times["explain_batch"] * 1000, last["audit"]


def demo_throughput(rounds: int = 2) -> tuple[float, float, object]:
    """(audit photos/s, explain_batch photos/s, the last audit) on the Clever Hans demo's
    photos with its masks: the case where every evidence test runs."""
    import gradcam
    from bench.timing import median_ms
    from gradcam.zoo import clever_hans

    model = gradcam.load_model(clever_hans.NAME)
    files = sorted(p for p in clever_hans.PHOTOS.rglob("*") if p.suffix.lower() in (".png", ".jpg"))
    last = {}

    def batched() -> None:
        for start in range(0, len(files), 32):
            gradcam.explain_batch(model, [gradcam.load_image(f) for f in files[start:start + 32]])

    def audited() -> None:
        last["audit"] = gradcam.audit(model, str(clever_hans.PHOTOS), masks=str(clever_hans.MASKS))

    times = median_ms({"explain_batch": batched, "audit": audited}, rounds, warm=1)
    return len(files) / times["audit"] * 1000, len(files) / times["explain_batch"] * 1000, last["audit"]


def benchmark_main(which: str) -> int:
    """The shortcut benchmark's table: every case of ``which`` trained, audited and counted."""
    import os

    from gradcam.audit import benchmark

    cases = {"developed": benchmark.DEVELOPED, "held-out": benchmark.HELD_OUT,
             "all": benchmark.DEVELOPED + benchmark.HELD_OUT, "outside": benchmark.OUTSIDE,
             "outside-held-out": benchmark.OUTSIDE_HELD_OUT,
             "patches": [c for c in benchmark.DEVELOPED + benchmark.HELD_OUT + benchmark.OUTSIDE
                         + benchmark.OUTSIDE_HELD_OUT if c.kind in benchmark.PATCH_KINDS]}[which]
    start = time.perf_counter()
    results = []
    for case in cases:
        result = benchmark.run_case(case)
        results.append(result)
        print(f"  {case.name}: {'flagged (' + result.how + ')' if result.flagged else 'not flagged'}"
              + ("" if result.flagged_without_masks is None else
                 f", without masks {'flagged' if result.flagged_without_masks else 'not flagged'}")
              + f"; accuracy {result.accuracy:.2f}, with the cue swapped {result.swapped_accuracy:.2f}", flush=True)
    print(f"\nShortcut benchmark, {which} cases ({len(cases)} models, {time.perf_counter() - start:.0f} s, "
          f"load {', '.join(f'{v:.1f}' for v in os.getloadavg())}):")
    print(benchmark.table(results))
    cheats = [r for r in results if r.case.shortcut and r.relies]  # a model that learned no cue has none to find
    met = all(r.flagged for r in cheats) and not any(r.flagged for r in results if not r.case.shortcut)
    print("\nall targets met" if met else "\nsome targets missed (target: every shortcut caught, no control flagged)")
    return 0


def main(count: int, photos: int = PHOTOS) -> int:
    from gradcam.audit.spray import spray

    maps = generated_maps(count)
    start = time.perf_counter()
    result = spray(maps)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB
    met = seconds < TARGET_SECONDS and peak_mb < TARGET_MB
    print(f"SpRAy over {count:,} maps of 7x7 in one class: {seconds:.1f} s, peak memory {peak_mb:.0f} MB "
          f"(target < {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB); {result.count} clusters of "
          f"{', '.join(str(len(c.members)) for c in result.clusters)}")
    del maps, result
    if photos:
        audit_rate, batch_rate, audit = throughput(photos)
        ratio = audit_rate / batch_rate
        clusters = [c for cls in audit.classes for c in cls.clusters]
        tested = sum(1 for c in clusters if c.tested)
        print(f"gradcam.audit on {photos} photos (EfficientNet-Lite0, top-1): {audit_rate:.1f} photos/s against "
              f"explain_batch's {batch_rate:.1f} on the same photos: {ratio:.2f}x (target >= {TARGET_RATIO}x); "
              f"{len(audit.classes)} classes, {len(clusters)} clusters, {tested} given the reliance test")
        met = met and ratio >= TARGET_RATIO
        demo_rate, demo_batch, demo = demo_throughput()
        print(f"gradcam.audit on the Clever Hans demo with masks ({len(demo.photos)} photos, its own model): "
              f"{demo_rate:.1f} photos/s against explain_batch's {demo_batch:.1f}: {demo_rate / demo_batch:.2f}x "
              f"(no target: a pass of this 64 px model takes about a millisecond, so the audit's own work per "
              f"photo, the masks decoded in the sandbox, thumbnails, SpRAy, dominates); {len(demo.flagged)} clusters "
              f"and {len(demo.flagged_classes)} classes flagged")
        worst_case(photos)
    print("\nall targets met" if met else "\nsome targets missed")
    return 0


def worst_case(photos: int = PHOTOS) -> int:
    """The row of the worst case: the patch tests (every infill, the transplant) forced onto
    every cluster of 4 or more photos, whatever its region's size; no target."""
    import os

    from bench.timing import machine_line

    print(machine_line())
    audit_rate, batch_rate, audit = throughput(photos, every_cluster=True)
    clusters = [c for cls in audit.classes for c in cls.clusters]
    tested = sum(1 for c in clusters if c.tested)
    print(f"  worst case, the patch tests on every cluster of 4+ photos ({tested} of {len(clusters)} clusters, "
          f"{sum(c.tested for c in clusters)} members tested, {sum(c.recipients for c in clusters)} transplants): "
          f"{audit_rate:.1f} photos/s against explain_batch's {batch_rate:.1f}: {audit_rate / batch_rate:.2f}x "
          f"(no target); load {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0
