"""``gradcam.audit`` is two things by name: the sub-package gradcam/audit/ and the
function people call. The function keeps the attribute; the modules stay importable by
their dotted names in any order. Checked in a fresh interpreter per order, because
which import comes first is the whole question."""

import subprocess
import sys

import pytest

CHECK = """
import inspect, gradcam
assert inspect.isfunction(gradcam.audit), gradcam.audit
assert list(inspect.signature(gradcam.audit).parameters)[:2] == ["model", "source"]
from gradcam.audit.spray import spray
from gradcam.audit.sources import read_source
from gradcam.audit import dataset_audit
assert dataset_audit.audit is gradcam.audit
assert inspect.isfunction(gradcam.audit), "a module imported later took the name"
print("ok")
"""


@pytest.mark.parametrize("first", ["import gradcam", "from gradcam.audit.spray import spray",
                                   "import gradcam.audit.sources"])
def test_gradcam_audit_stays_the_function_whatever_is_imported_first(first):
    done = subprocess.run([sys.executable, "-c", first + "\n" + CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
