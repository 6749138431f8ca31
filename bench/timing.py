"""How the benchmark times things, and what it says about the machine it ran on."""

from __future__ import annotations

import datetime
import os
import statistics
import time
from typing import Callable


def median_ms(contenders: dict[str, Callable[[], object]], rounds: int, warm: int = 1) -> dict[str, float]:
    """Each contender's median time in milliseconds over ``rounds`` rounds, after ``warm``
    untimed runs each (trace, allocate, fill caches). Rounds are interleaved: load from
    other jobs then hits every contender alike, so their ratios stay meaningful."""
    for run in contenders.values():
        for _ in range(warm):
            run()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def against_forward(model, methods: dict[str, str], rounds: int) -> dict[str, float]:
    """The rows of a model measured against its own forward pass: ``{"forward_ms": ..., "<column>_ms":
    ...}`` for each ``methods`` entry (column -> method name), median ms on one random photo at the
    model's input size, interleaved (``median_ms``), so the ratios to the forward pass hold under load."""
    import numpy as np

    from gradcam.engine.cam import compute_prepared
    from gradcam.engine.passes import forward_pass

    x = np.random.default_rng(0).uniform(0, 1, (1, *model.input_size, 3)).astype(np.float32)
    forward = forward_pass(model)
    contenders = {"forward": lambda: forward(x).numpy()}
    for column, method in methods.items():
        contenders[column] = lambda method=method: compute_prepared(model, x, method=method)
    return {f"{name}_ms": ms for name, ms in median_ms(contenders, rounds).items()}


def machine_line(now: datetime.datetime | None = None) -> str:
    """The first line of every bench output: when it ran and how busy the machine was.
    On a shared machine the load average says more about an absolute figure than the
    figure itself, so the docs quote both."""
    now = now or datetime.datetime.now().astimezone()
    try:
        loads = ", ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:  # not on this platform
        loads = "unknown"
    return (f"Measured {now:%Y-%m-%d %H:%M %Z}, load average {loads} (1, 5, 15 min) "
            f"on {os.cpu_count()} CPUs")
