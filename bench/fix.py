"""The fix's rows of ``python -m bench --fix``:

- the corrected model's forward pass against the original's (EfficientNet-Lite0 with
  P-ClArC after its last feature map, a batch of 32 photos, interleaved medians).
  Target: <= 1.1x: the fix adds one element-wise product and sum per photo;
- the comparison audit (``gradcam.audit.compare``: both models audit the same photos)
  against one audit of those photos. Target: <= 2.2x: two audits and one cheap pass
  over the maps;
- for the record, what making the correction cost (one pass over each set of photos).

The direction is a magenta patch pasted in the corner of sample photos (the photos with
the cue) against the same photos without it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

FORWARD_TARGET = 1.1
COMPARE_TARGET = 2.2
PHOTOS = 64  # photos audited in the comparison row


def _patched(image):
    out = image.copy()
    width, height = out.size
    out.paste((255, 0, 255), (int(width * 0.8), int(height * 0.8), width, height))
    return out


def measure(rounds: int = 15, photos: int = PHOTOS, compare_rounds: int = 3) -> dict:
    import gradcam
    from gradcam.audit.compare import compare_models
    from gradcam.audit.correction import correct
    from bench.ray import generate
    from bench.timing import median_ms
    from gradcam.engine.passes import batch_forward_pass

    model = gradcam.load_model(gradcam.DEFAULT_MODEL)
    with tempfile.TemporaryDirectory() as folder:
        generate(Path(folder), photos)
        files = sorted(Path(folder).glob("*.jpg"))
        images = [gradcam.load_image(f) for f in files]
        start = time.perf_counter()
        fix = correct(model, [_patched(i) for i in images[:16]], images[16:32])
        correction_seconds = time.perf_counter() - start
        x = np.concatenate([model.prepare(i) for i in images[:32]])
        original, corrected = batch_forward_pass(model), batch_forward_pass(fix.model)
        forward = median_ms({"original": lambda: original(x).numpy(), "corrected": lambda: corrected(x).numpy()},
                            rounds)
        del images
        timed = median_ms({"one audit": lambda: gradcam.audit(model, folder, explain="predicted"),
                           "comparison": lambda: compare_models(model, fix.model, folder, explain="predicted")},
                          compare_rounds)
    return {"forward_ms": forward, "audit_ms": timed, "correction_seconds": correction_seconds, "photos": photos}


def report(figures: dict) -> bool:
    forward, timed = figures["forward_ms"], figures["audit_ms"]
    forward_ratio = forward["corrected"] / forward["original"]
    compare_ratio = timed["comparison"] / timed["one audit"]
    print(f"Forward pass, 32 photos, EfficientNet-Lite0: original {forward['original']:.0f} ms, corrected (P-ClArC "
          f"after top_activation) {forward['corrected']:.0f} ms: {forward_ratio:.2f}x (target <= {FORWARD_TARGET}x)")
    print(f"Audit of {figures['photos']} photos: one model {timed['one audit'] / 1000:.1f} s, the comparison of the "
          f"original and the corrected model {timed['comparison'] / 1000:.1f} s: {compare_ratio:.2f}x "
          f"(target <= {COMPARE_TARGET}x)")
    print(f"Making the correction (one pass over 16 photos with the cue and 16 without): "
          f"{figures['correction_seconds']:.1f} s (no target)")
    return forward_ratio <= FORWARD_TARGET and compare_ratio <= COMPARE_TARGET
