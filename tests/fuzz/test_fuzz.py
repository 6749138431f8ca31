"""CI's share of the fuzzing (see tests/fuzz/__init__.py): every corpus file and seed is
replayed, then a few hundred derandomised cases per run across the targets."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.strategies import inputs
from tests.fuzz.targets import TARGETS, check, corpus_files

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "75"))  # per target


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_corpus_file_and_seed_keeps_the_rule(name) -> None:
    files = corpus_files(name)
    for path in files:
        check(name, path.read_bytes())
    for seed in TARGETS[name].seeds():
        check(name, seed)


def test_the_corpus_holds_the_crashes_found_so_far() -> None:
    # Filled by `python -m tests.fuzz` (and by hand from issue 8's findings): if this
    # fails, a corpus folder was emptied.
    assert sum(len(corpus_files(name)) for name in TARGETS) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz(name) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(inputs(TARGETS[name].seeds()))
    def keeps_the_rule(data: bytes) -> None:
        check(name, data)

    keeps_the_rule()
