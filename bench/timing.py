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
