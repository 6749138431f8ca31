"""The Audit page's last steps: fix a flagged finding, audit the fixed model again, compare.

The fix is the library's (``gradcam.audit.correct_finding``: P-ClArC, no retraining),
and so is the proof (``before_and_after``: the re-audit and the counterfactual photos
answered by both models) and the comparison of two models (``compare``). This module
runs them as long jobs (kept for every session, like the audit) and draws the result:
what the fix cannot do, both models' figures side by side, the photos whose maps moved
most, and the downloads (the corrected model as a .keras file, the comparison report).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import gradcam
from gradcam.audit import before_and_after, compare_models, correct_finding, counterfactual_sets
from gradcam.report import comparison_html, map_tile

from dashboard.parts.model_picker import load_builtin
from dashboard.runtime import long_jobs
from dashboard.safe_text import md

FIX = "audit_fix"  # session key: the finding (its job key) whose fix this session asked for
DIFFERENT_SHOWN = 4  # photos shown where the maps differ most (the report has all of them)


def finding_key(finding) -> tuple:
    """A finding's name in the caches: its class, and its cluster's number (None for a class's background)."""
    return (finding.label, getattr(finding, "number", None))


def findings(audit: gradcam.Audit) -> list:
    """What can be fixed: the flagged clusters, most suspicious first, then the classes the background swap flagged."""
    return list(audit.flagged) + list(audit.flagged_classes)


def fix_button(audit_key: tuple, finding) -> None:
    """The "Fix" step of one finding: asks for its fix (``section`` runs it)."""
    number = getattr(finding, "number", None)
    what = f"cluster {number + 1}" if number is not None else "backgrounds"
    st.button(f"Fix '{md(finding.label)}' {what} and audit again", key=f"audit_fix_{finding.label}_"
              f"{number if number is not None else 'background'}", type="primary",
              on_click=lambda: st.session_state.__setitem__(FIX, (audit_key, finding_key(finding))),
              help="Projects the shortcut's direction out of the audited layer's activations (P-ClArC, Anders et "
                   "al. 2022): no retraining, one pass over the photos. Then audits the corrected model again.")


def wanted(audit_key: tuple, audit: gradcam.Audit):
    """The finding this session asked to fix for this audit, or None."""
    asked = st.session_state.get(FIX)
    if not asked or asked[0] != audit_key:
        return None
    for finding in findings(audit):
        if finding_key(finding) == asked[1]:
            return finding
    return None


def run_fix(audit_key: tuple, request, model: gradcam.Model, audit: gradcam.Audit, finding):
    """(the correction, the before-and-after comparison), made once for every session."""

    def job(progress, stop):
        correction = correct_finding(model, audit, request.source, finding, masks=request.masks)
        sets = counterfactual_sets(model, audit, request.source, masks=request.masks)
        proof = before_and_after(correction, audit, request.source, counterfactuals=sets, masks=request.masks,
                                 progress=progress, stop=stop)
        return correction, proof

    return long_jobs.long_job(("fix", *audit_key, finding_key(finding)), job, "Fixing and auditing again", "photos")


def run_compare(audit_key: tuple, other_key: str, request, model: gradcam.Model, other: gradcam.Model, layer: str,
                method: str):
    """Both models audited on the same photos, made once for every session."""

    def job(progress, stop):
        return compare_models(model, other, request.source, masks=request.masks, first_layer=layer, method=method,
                       progress=progress, stop=stop)

    return long_jobs.long_job(("compare", *audit_key, other_key), job, "Auditing both models", "photos")


def _two(values, form) -> tuple[str, str]:
    return tuple("" if v is None else form.format(v) for v in values)


def side_by_side_table(comparison) -> pd.DataFrame:
    """One row per class, each figure for both models next to each other."""
    first, second = comparison.names
    rows = []
    for c in comparison.classes:
        row = {"Class": c.label, "Photos": c.count}
        for what, values, form in (("Accuracy", c.accuracy, "{:.0%}"), ("Mass on object", c.mass_on_object, "{:.2f}"),
                                   ("Flagged", c.flagged, "{}"), ("Counterfactual", c.counterfactual, "{:.0%}")):
            a, b = _two(values, form)
            row[f"{what}: {first}"], row[f"{what}: {second}"] = a, b
        rows.append(row)
    table = pd.DataFrame(rows)
    if not comparison.first.masks:
        table = table.drop(columns=[k for k in table.columns if k.startswith("Mass on object")])
    return table


def show_comparison(comparison, file_stem: str) -> None:
    """Both models' figures side by side, the counterfactual photos, where the maps moved, the report."""
    first, second = comparison.names
    left, right = st.columns(2)
    for box, name, found in ((left, first, comparison.first), (right, second, comparison.second)):
        shown = box.error if (found.flagged or found.flagged_classes) else box.success
        shown(f"**{md(name)}**: {md(found.headline())}")
    st.dataframe(side_by_side_table(comparison), hide_index=True, width="stretch")
    if comparison.counterfactual:
        st.markdown("**Counterfactual photos** (edited so that the cue and the class disagree; each expects its "
                    "own class):")
        st.dataframe(pd.DataFrame([{"Photos": a.name, "Count": a.total, first: f"{a.right} right",
                                    second: f"{b.right} right"} for a, b in comparison.counterfactual]),
                     hide_index=True, width="stretch")
    if comparison.differences:
        st.markdown("**Where the maps differ most** (0: the evidence in the same places, 1: no overlap):")
        with st.container(horizontal=True, gap="small"):
            for d in comparison.differences[:DIFFERENT_SHOWN]:
                with st.container(width=230, gap="xsmall"):
                    tiles = [map_tile(d.first, 110), map_tile(d.second, 110)]
                    if all(t is not None for t in tiles):
                        st.image(tiles, width=110, caption=[f"{md(first)}: '{md(d.first.predicted)}'",
                                                             f"{md(second)}: '{md(d.second.predicted)}'"])
                    st.caption(f"{md(d.path)}: {d.difference:.2f}")
    st.download_button("Comparison report (HTML)", lambda: comparison_html(comparison),
                       file_name=f"{file_stem}.html", mime="text/html", on_click="ignore", key=f"{file_stem}_html")


def show_fix(correction, proof) -> None:
    """What the fix did and cannot do, the re-audit beside the audit, and the corrected model."""
    st.warning(md(correction.limits))
    st.caption(f"Fixed: '{md(correction.label)}'. P-ClArC after {md(correction.layer)}: the direction from "
               f"{correction.with_cue} photos with the cue "
               f"and {correction.without_cue} without; the re-audit looks at {md(correction.projection_layer)}, what "
               "the rest of the network now sees.")
    show_comparison(proof, "gradcam-fix-comparison")
    st.download_button("Corrected model (.keras)", lambda: correction.keras_bytes(),
                       file_name="corrected-model.keras", mime="application/octet-stream", on_click="ignore",
                       key="audit_fixed_model", type="primary",
                       help="Loads with keras.saving.load_model(path, safe_mode=True) after `import gradcam.layers`, "
                            "or with gradcam.load_model(path, labels=...), here on the Explore page too.")


def section(audit_key: tuple, request, model: gradcam.Model, audit: gradcam.Audit, *, other_models: dict,
            model_key: str, layer: str, method: str) -> None:
    """The page's "Fix and audit again" and "Compare with another model" steps."""
    st.header("Fix and audit again")
    found = findings(audit)
    if not found:
        st.markdown("Nothing was flagged, so there is nothing to fix.")
    else:
        st.markdown("The fix removes the shortcut's direction from the layer's activations (P-ClArC): the model then "
                    "ignores the cue. It cannot teach the model what it never learned; the audit of the corrected "
                    "model says what is left.")
        with st.container(horizontal=True, gap="small"):
            for finding in found:
                fix_button(audit_key, finding)
    finding = wanted(audit_key, audit)
    if finding is not None:
        try:
            correction, proof = run_fix(audit_key, request, model, audit, finding)
        except ValueError as refused:
            st.error(md(str(refused)))
        except gradcam.ExplanationStopped:
            st.info("Stopped. Press the fix again to start it again.")
        else:
            show_fix(correction, proof)

    st.header("Compare with another model")
    choices = [k for k in other_models if k != model_key]
    other_key = st.selectbox("Another model, on the same photos", [None, *choices], key="audit_compare",
                             format_func=lambda k: "none" if k is None else k,
                             help="Both models audit the same photos; each figure is shown for both.")
    if other_key is None:
        return
    try:
        other = other_models[other_key] or load_builtin(other_key)
        if list(other.labels) != list(model.labels):
            st.error(f"{md(other.name)} names other classes than {md(model.name)}: a comparison needs the same "
                     "classes.")
            return
        show_comparison(run_compare(audit_key, other_key, request, model, other, layer, method),
                        "gradcam-model-comparison")
    except (ValueError, gradcam.ModelLoadError) as refused:
        st.error(md(str(refused)))
    except gradcam.ExplanationStopped:
        st.info("Stopped.")
