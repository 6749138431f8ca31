"""The audit's row of ``python -m gradcam.bench --audit N``: SpRAy over N generated
7x7 maps in one class (four places plus noise), its time and the process's peak
memory. Target: 100,000 maps in under a minute and under 2 GB."""

from __future__ import annotations

import resource
import time

import numpy as np

TARGET_SECONDS, TARGET_MB = 60.0, 2048.0


def generated_maps(count: int, seed: int = 0) -> np.ndarray:
    """(count, 7, 7) maps: a blob at one of four places, jittered, plus noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:7, 0:7]
    places = np.array([(1, 1), (1, 5), (5, 3), (3, 3)])
    group = rng.integers(0, len(places), count)
    rows = places[group, 0][:, None, None] + rng.normal(0, 0.4, (count, 1, 1))
    cols = places[group, 1][:, None, None] + rng.normal(0, 0.4, (count, 1, 1))
    return (np.exp(-((ys - rows) ** 2 + (xs - cols) ** 2) / 2) + rng.random((count, 7, 7)) * 0.05).astype(np.float32)


def main(count: int) -> int:
    from gradcam.trust.spray import spray

    maps = generated_maps(count)
    start = time.perf_counter()
    result = spray(maps)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB
    met = seconds < TARGET_SECONDS and peak_mb < TARGET_MB
    print(f"SpRAy over {count:,} maps of 7x7 in one class: {seconds:.1f} s, peak memory {peak_mb:.0f} MB "
          f"(target < {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB); {result.count} clusters of "
          f"{', '.join(str(len(c.members)) for c in result.clusters)}")
    print("\nall targets met" if met else "\nsome targets missed")
    return 0
