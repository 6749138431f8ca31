"""Fuzz for longer than CI does: ``python -m tests.fuzz --minutes 10 [--target NAME]``.

Runs rounds of random (not derandomised) Hypothesis cases over the targets until the
time is up. Each input that breaks a target's rule is shrunk, written to
``tests/fuzz/corpus/<target>/``, and listed at the end: commit it with the fix, and CI
replays it for ever after.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

# The seeds use the test helpers (corpus, zips, pth) by bare name, as pytest's
# pythonpath setting lets the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.fuzz.strategies import inputs  # noqa: E402
from tests.fuzz.targets import TARGETS, Finding, check, save_to_corpus  # noqa: E402


def fuzz_round(name: str, examples: int, cases: Counter) -> list[tuple[str, bytes]]:
    """One Hypothesis run of ``examples`` cases; the (finding, shrunk input) pairs it found."""
    last_failing: dict[str, bytes] = {}

    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate, Phase.shrink], report_multiple_bugs=True)
    @given(inputs(TARGETS[name].seeds()))
    def keeps_the_rule(data: bytes) -> None:
        cases[name] += 1
        try:
            check(name, data)
        except Finding as finding:
            # The last failing call of a kind is Hypothesis' shrunk example.
            last_failing[str(finding).split(":")[1].strip()[:60]] = data
            raise

    try:
        keeps_the_rule()
    except BaseException as error:  # Finding, or an ExceptionGroup of several
        if isinstance(error, KeyboardInterrupt):
            raise
    return [(kind, data) for kind, data in last_failing.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--target", choices=sorted(TARGETS), action="append",
                        help="fuzz only this target (repeatable; default: all)")
    parser.add_argument("--examples", type=int, default=300, help="cases per round")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # Pillow warns about every damaged header it meets
    names = args.target or sorted(TARGETS)
    deadline = time.monotonic() + args.minutes * 60
    cases: Counter = Counter()
    found: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()  # one corpus file per kind of failure and target
    while time.monotonic() < deadline:
        for name in names:
            if time.monotonic() >= deadline:
                break
            for kind, data in fuzz_round(name, args.examples, cases):
                if (name, kind) in seen:
                    continue
                seen.add((name, kind))
                path = save_to_corpus(name, data)
                found.append((name, kind, str(path)))
                print(f"FOUND {name}: {kind} -> {path} ({len(data)} bytes)", flush=True)
        print(f"{time.strftime('%H:%M:%S')} cases so far: {dict(cases)}", flush=True)
    print(f"done: {sum(cases.values()):,} cases ({dict(cases)}), {len(found)} findings")
    for name, kind, path in found:
        print(f"  {name}: {kind}  {path}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
