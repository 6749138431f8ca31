"""Fuzzing the entry points that read untrusted bytes (issue 8).

Four targets: ``gradcam.load_image`` (bytes), the ``.pth`` reader
(``gradcam.zoo.torch_legacy.read_state_dict``), ``gradcam.archives.batch_sources`` on a
``.zip`` (and reading every member it lists), and ``gradcam.report.html.batch.predictions_csv``.
Each case must end in the target's one documented exception (or none), within a
bounded time and without a memory spike.

Inputs are seeds built in code (``targets.py``: small images of every format, a small
state dict, zips of photos, CSV records) mutated by Hypothesis (byte flips, header
fields set to edge values, splices, truncation), plus raw bytes.

- CI (``tests/fuzz/test_fuzz.py``): replays every file in ``corpus/<target>/`` and runs
  a few hundred derandomised cases (``FUZZ_EXAMPLES`` per target, default 75).
- Longer: ``python -m tests.fuzz --minutes 10 [--target load_image]``. Every input that
  breaks a rule is shrunk and written to ``corpus/<target>/<sha256>.bin``; commit it,
  fix the bug, and CI replays it from then on.
"""
