"""The dataset audit: does a model rely on a shortcut across a whole dataset?

``sources``: where the photos (and masks) come from; ``spray``: SpRAy, which groups
one class's maps by where they agree; ``evidence``: the tests that prove reliance;
``dataset_audit``: the audit itself; ``correction``: the fix (P-ClArC);
``counterfactuals``: answers on edited photos; ``compare``: two models side by side.

A note on the name: ``gradcam.audit`` is the *function* (``gradcam/__init__.py``
binds it after importing this package, and Python never binds an already imported
sub-package to its parent again), so reach the modules with
``from gradcam.audit.spray import spray`` or ``from gradcam.audit import spray``;
``import gradcam.audit.spray`` followed by the attribute path
``gradcam.audit.spray`` does not work.
"""

from .compare import Comparison, before_and_after, compare_models, side_by_side
from .correction import Correction, correct, correct_finding
from .counterfactuals import CounterfactualSet, counterfactual_sets
from .dataset_audit import Audit, AuditClass, AuditCluster, AuditPhoto, audit

__all__ = ["Audit", "AuditClass", "AuditCluster", "AuditPhoto", "Comparison", "Correction", "CounterfactualSet",
           "audit", "before_and_after", "compare_models", "correct", "correct_finding", "counterfactual_sets",
           "side_by_side"]
