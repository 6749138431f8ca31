"""The trust scores' rows of ``python -m bench``: each against the least
work it could possibly do, measured side by side in the same run.

- Deletion plus insertion at 50 steps each need 100 forward passes (the photo,
  the baseline, and 49 inner steps of each curve): the floor is those 100
  inputs through the same batched forward function, with nothing else.
- A sanity check needs a clone of the model and one explanation per stage on
  it (the first of which traces the clone's compiled function, as any new model
  object must), plus one more for each further random draw of the top stages
  (``DRAWS``): the floor is exactly that, without randomizing or comparing.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

TARGETS = (("deletion + insertion (50 steps) / 100 batched forward passes", "curves", "forward floor", 1.3),
           ("sanity check / clone + one explanation per stage and draw", "sanity check", "sanity floor", 1.5))


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(model, image, rounds: int = 3) -> dict:
    import gradcam
    from gradcam.trust.faithfulness import deletion_insertion, probabilities
    from gradcam.trust.sanity import DRAWS, clone, stages

    explanation = gradcam.explain(model, image)
    height, width = model.input_size
    inputs = np.random.default_rng(0).uniform(-1, 1, (100, height, width, model.channels)).astype(np.float32)
    stage_count = len(stages(model))

    def sanity_floor():
        twin = clone(model)
        for _ in range(stage_count + DRAWS - 1):  # the cascade's maps, then one per further draw
            gradcam.explain(twin, image, target=explanation.target)

    contenders = {
        "forward floor": lambda: probabilities(model, inputs, explanation.target),
        "curves": lambda: deletion_insertion(model, image, explanation, steps=50),
        "sanity floor": sanity_floor,
        "sanity check": lambda: gradcam.sanity_check(model, image, target=explanation.target),
    }
    contenders["forward floor"]()  # warm up the batched forward function and the curves' helpers
    contenders["curves"]()
    samples = {name: [] for name in contenders}
    for _ in range(rounds):  # interleaved, so a busy moment on the machine hits every contender
        for name, run in contenders.items():
            samples[name].append(_seconds(run))
    return {"model": model.name, "stages": stage_count, "rounds": rounds,
            "s": {name: statistics.median(values) for name, values in samples.items()}}


def report(result: dict, out=sys.stdout) -> bool:
    times = result["s"]
    print(f"\ntrust scores, {result['model']} ({result['stages']} sanity stages, median of {result['rounds']} "
          "interleaved rounds)", file=out)
    for name, seconds in times.items():
        print(f"  {name:<26} {seconds * 1000:8.0f} ms", file=out)
    met_all = True
    for what, a, b, limit in TARGETS:
        ratio = times[a] / times[b]
        met = ratio <= limit
        met_all &= met
        print(f"  {what:<64} {ratio:5.2f}x  target <= {limit}x  {'met' if met else 'MISSED'}", file=out)
    return met_all
