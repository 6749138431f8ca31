"""Report: the current explanation (and any others picked) as one file for people
who were not at the screen: a self-contained HTML page, or a PDF.

A thin page: widgets and layout only. The maps come from the same cache the
Explore page fills (dashboard.cached), so a report of what Explore shows costs no
model run; gradcam.report writes the files.
"""

import pandas as pd
import streamlit as st

import gradcam
from dashboard.parts import shared_state
from dashboard.parts import trust_scores
from dashboard.parts.heatmap_panel import score_text
from dashboard.safe_text import md
from dashboard.parts.shared_state import choices
from gradcam import report
from gradcam.engine import sha256_of_weights, strongest_colour
from gradcam.report import resolution_fact, trust_lines, trust_sentences
from dashboard.runtime import explanation_cache



@st.cache_data(max_entries=16, max_size="1MB", show_spinner=False)
def weights_fingerprint(model_key: str, _model: gradcam.Model) -> str:
    # Hashing every weight takes tens of milliseconds (more for big models): once per model.
    return sha256_of_weights(_model)


def page() -> None:
    """The Report page: the chosen maps as an HTML or PDF file."""
    st.set_page_config(page_title="Report", page_icon=":page_facing_up:", layout="wide")
    c = choices()
    def class_map(method: str, target: int, explained: explanation_cache.Explained) -> gradcam.Explanation:
        """One class's map: from the top-5 pass when it is there, else its own (cached) pass."""
        if target in explained.maps:
            return explained.maps[target]
        return explanation_cache.explain_class(c.image.sha256, c.model_key, c.layer, method, target, c.image.image, c.model)


    def item(target: int, method: str) -> report.ReportItem:
        explained = explanation_cache.explain_top5(c.image.sha256, c.model_key, c.layer, method, c.image.image, c.model)
        chosen = class_map(method, target, explained)
        overlaid = gradcam.overlay(c.image.image, chosen.heatmap, c.opacity, c.colormap)
        key = (c.image.sha256, c.model_key, c.layer, method, chosen.target)
        scores, evidence = None, []
        if with_trust:  # scored on the Trust page's baseline, on exactly the map drawn here
            shown = chosen.heatmap, tuple(chosen.raw.shape[:2])
            baseline = trust_scores.chosen_baseline()
            full = trust_scores.scores(*key, baseline, c.image.image, c.model, shown)
            scores = full.numbers()
            evidence.append(("Deletion and insertion curves of this map, random maps and a centred blob",
                             trust_scores.curves_picture(*key, baseline, full)))
        check = trust_scores.sanity_if_run(key, c.image.image, c.model)  # only when run on "Can I trust it?"
        if check is not None:
            evidence.append(("The sanity check: the map as the network's weights are randomized from the top down",
                             trust_scores.sanity_picture(*key, c.image.image, check)))
        return report.ReportItem(
            image=c.image.image, image_name=c.image.name, image_sha256=c.image.sha256, overlay=overlaid,
            target=chosen.target, label=chosen.label, probability=chosen.probability,
            predictions=tuple(explained.predictions), layer=c.layer, layer_resolution=tuple(chosen.raw.shape),
            method=method, no_positive_evidence=chosen.no_positive_evidence, opacity=c.opacity, colormap=c.colormap,
            faithfulness=scores, sanity=None if check is None else check.summary(),
            token_grid=report.token_grid_of(c.model, c.layer),  # a transformer's layer: its patch grid
            evidence=tuple(evidence),
        )


    st.title("Report")
    st.markdown(
        f"A file to hand on: **{md(c.image.name)}** explained by **{md(c.model.name)}** "
        f"{md(report.layer_phrase(c.method, c.layer))}. "  # no "at layer" for Occlusion and the like
        "The HTML file embeds every image, needs no network and runs no code; the PDF has the same content. "
        "Change the photo, model, layer or class on the Explore page."
    )

    with st.spinner("Explaining..."):
        top5 = explanation_cache.explain_top5(c.image.sha256, c.model_key, c.layer, c.method, c.image.image, c.model)
    target = c.target if c.target is not None else top5.predictions[0].index
    probabilities = {p.index: p.probability for p in top5.predictions}
    classes = [target, *(p.index for p in top5.predictions if p.index != target)]
    options = [(k, m) for k in classes for m in (c.method, *(m for m in gradcam.methods_for(c.model) if m != c.method))]


    def describe(option: tuple[int, str]) -> str:  # widget options are plain text, not Markdown
        k, m = option
        score = f" ({score_text(c.model, probabilities[k])})" if k in probabilities else ""
        return f"{c.model.labels[k]}{score}, {gradcam.METHODS[m].display_name}" + ("  (current)" if option == options[0] else "")


    def section_text(option: tuple[int, str]) -> str:  # in a link: "967:gradcam++"
        return f"{option[0]}:{option[1]}"


    # The report's sections: the current explanation unless picked otherwise (or a link says so).
    if "sections" in (changes := shared_state.url_changes()):
        linked = (changes["sections"] or "").split(",")
        st.session_state["report_include"] = [o for o in options if section_text(o) in linked] or [options[0]]
    st.session_state["report_include"] = [o for o in st.session_state.get("report_include", [options[0]])
                                          if o in options]
    include = st.multiselect(
        "Include", options, key="report_include", format_func=describe,
        help="Each pick is one section of the report: the current explanation, another method or another of the "
             "top-5 classes.",
    )
    if "trust" in changes:  # a link carries "Add faithfulness scores" too
        st.session_state["report_trust"] = changes["trust"] == "1"
    with_trust = st.checkbox(
        "Add faithfulness scores", key="report_trust",
        help="Deletion, insertion and Average Drop for each section, each next to random maps (a few seconds per "
             "section). Sanity checks run on the page \"Can I trust it?\" are always included.")
    if with_trust and (too_costly := trust_scores.scores_refused(c.model)):
        st.warning(md(too_costly) + " The report is made without them.")
        with_trust = False
    shared_state.write_url(c, top5.predictions[0].index, {
        "sections": ",".join(map(section_text, include)) if include != [options[0]] else None,
        "trust": 1 if with_trust else None,
    }, photo_keys=("sections",), model_keys=("sections",))
    if not include:
        st.info("Pick at least one explanation to include.")
        st.stop()

    with st.spinner("Explaining and scoring..." if with_trust else "Explaining..."):
        items = [item(k, m) for k, m in include]

    fingerprint = weights_fingerprint(c.model_key, c.model)
    title = f"Grad-CAM report: {c.image.name}"
    stem = report.file_stem(c.image.name)
    left, right = st.columns(2)
    # Callables: the files are only built when someone clicks (a PDF takes about half a second).
    left.download_button(
        "Download report (HTML)", lambda: report.report_html(items, title=title, model=c.model, weights_sha256=fingerprint),
        file_name=f"gradcam-report-{stem}.html", mime="text/html", on_click="ignore", type="primary", width="stretch",
    )
    right.download_button(
        "Download report (PDF)", lambda: report.report_pdf(items, title=title, model=c.model, weights_sha256=fingerprint),
        file_name=f"gradcam-report-{stem}.pdf", mime="application/pdf", on_click="ignore", width="stretch",
    )

    st.subheader("What the report contains")
    st.caption(f"{len(items)} section{'s' if len(items) != 1 else ''}, each with the photo and its overlay, the top-5, "
               "the method, layer and resolution, the faithfulness scores next to random maps and a centred blob with "
               "their curves (when added here, on the Trust page's baseline), the sanity check's verdict and strip (when "
               "run on \"Can I trust it?\"), and a bottom line; a section without a check says so. Then a note on what "
               "Grad-CAM shows and does not show, and the software versions.")
    st.caption(f"Image SHA-256 `{c.image.sha256}` · model weights SHA-256 `{fingerprint}`")  # hex digits only
    for number, entry in enumerate(items, 1):
        st.markdown(f"#### {number}. {md(entry.label)}, {gradcam.METHODS[entry.method].display_name}")
        if entry.no_positive_evidence:
            st.warning(report.no_evidence_notice(entry.method, f"**{md(entry.label)}**"))
        picture, predictions, facts = st.columns([1.4, 1, 1.3])
        # The figure's caption as the report prints it: what the colours mean for this method.
        colours = report.what_the_colours_mean(entry.method, strongest_colour(entry.colormap), f"**{md(entry.label)}**")
        picture.image(entry.overlay, caption=f"Overlay, opacity {entry.opacity:.2f}, {entry.colormap}. {colours}",
                      width="stretch")
        # Dataframes show cells as plain text: labels and file names are data, never Markdown.
        predictions.dataframe(
            pd.DataFrame({"class": [p.label for p in entry.predictions],
                          "probability": [score_text(c.model, p.probability) for p in entry.predictions],
                          "explained": ["yes" if p.index == entry.target else "" for p in entry.predictions]}),
            hide_index=True, width="stretch",
        )
        values = [entry.image_name, f"{entry.label} (class {entry.target})", score_text(c.model, entry.probability),
                  gradcam.METHODS[entry.method].display_name, report.layer_fact(entry.method, entry.layer),
                  resolution_fact(entry, short=True), c.model.name]
        facts.dataframe(
            pd.DataFrame({"": ["Image", "Explained class", "Probability", "Method", "Layer", "Resolution", "Model"],
                          "value": values}),
            hide_index=True, width="stretch",
        )
        # What the report says about trust, word for word (the same sentences the HTML and PDF carry).
        if entry.faithfulness:
            st.dataframe(pd.DataFrame([[title, *values] for title, values in trust_lines(entry)],
                                      columns=["", "this map", "random maps", "centred blob"]),
                         hide_index=True, width="stretch")
        st.caption(f"**Resolution**: {md(resolution_fact(entry))}.")
        for caption, picture in entry.evidence:
            st.image(picture, caption=caption, width="content")  # its own size, never wider than a phone
        for heading, sentence in trust_sentences(entry):
            st.caption(f"**{heading}**: {md(sentence)}")

    with st.expander("What the report says about Grad-CAM"):
        st.markdown("\n".join([report.WHAT_IT_SHOWS, "", *(f"- {point}" for point in report.WHAT_IT_DOES_NOT_SHOW)]))
