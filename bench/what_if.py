"""What-if's rows: covering a box and asking again, against ``predict`` (the
forward pass plus preprocessing), side by side in one run.

The target (issue 19): a page's repeated edit of the same photo, which passes the
first result's ``unedited_logits``, within 1.3x of ``predict``. The first edit
scores the unedited photo too (a batch of two), so it is shown, not judged.
"""

from __future__ import annotations

import sys
import time

CUP = (0.5, 0.0, 1.0, 1.0)  # the right half: the cup in the cat-and-coffee sample


def measure(model, image, rounds: int) -> dict[str, float]:
    import gradcam

    first = gradcam.what_if(model, image, CUP)
    contenders = {
        "forward pass plus preprocessing": lambda: gradcam.predict(model, image),
        "what_if, first edit (two photos)": lambda: gradcam.what_if(model, image, CUP),
        "what_if, next edit": lambda: gradcam.what_if(model, image, CUP, unedited=first.unedited_logits),
        "what_if, next edit, mean fill": lambda: gradcam.what_if(model, image, CUP, fill="mean",
                                                                 unedited=first.unedited_logits),
    }
    for run in contenders.values():  # warm: traced and cached
        run()
    times = {name: [] for name in contenders}
    for _ in range(rounds):  # interleaved, so a busy moment hits every contender alike
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: sorted(values)[len(values) // 2] for name, values in times.items()}


def report(times: dict[str, float], out=sys.stdout) -> bool:
    forward = times["forward pass plus preprocessing"]
    print("\nWhat if? (median ms, ratio to predict)", file=out)
    for name, ms in times.items():
        print(f"  {name:<44} {ms:10.1f} ms  {ms / forward:7.2f}x", file=out)
    ratio = times["what_if, next edit"] / forward
    met = ratio <= 1.3
    print(f"  {'what_if, next edit / predict':<44} {ratio:10.2f}   target <= 1.3: {'met' if met else 'MISSED'}",
          file=out)
    return met
