"""Batch: explain many photos at once (files or a .zip) with the model, layer and
method chosen on the Explore page; browse them as a contact sheet; download the
overlays, a CSV of predictions and a report of the set.

A thin page: widgets and layout only. gradcam.intake.archives reads archives safely, gradcam.report.batch
explains photos into small records (through the batched engine, a chunk per
call) and writes the downloads. Only small records (thumbnails, top-5, the
layer-resolution map) are kept, in
st.session_state["batch_results"], so a large set neither exhausts memory nor is
lost on a rerun.
"""

import pandas as pd
import streamlit as st

import gradcam
from dashboard.parts import method_picker, shared_state
from dashboard.safe_text import md
from dashboard.parts.shared_state import choices
from gradcam import report
from gradcam.engine import sha256_of_weights
from gradcam.intake import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS, SUPPORTED_FORMATS, BatchSource, InflationLedger, batch_sources
from gradcam.intake import sha256
from gradcam.intake import DISPLAY_MAX_SIDE
from dashboard.runtime import clicks, explanation_cache


PER_ROW = 4
PER_PAGE = 48  # thumbnails drawn per rerun: a 500-photo set stays quick to browse


CHUNK = 8  # photos per batched engine call (and per step of the progress bar)
PENDING = "batch_pending"  # session key: the set asked for by Explain all and not yet stored, and how many files
CONCEPT_PHOTOS = 6  # thumbnails per shared concept
CONCEPT_THUMBNAIL = 140  # px wide


@st.cache_data(max_entries=250, max_size="96MB", show_spinner=False)
def explained(image_hashes: tuple, model_key: str, layer: str, method: str, opacity: float, colormap: str,
              faithfulness: bool, _datas: list, _model: gradcam.Model) -> list[dict]:
    # Keyed by content, not file names: the same photos under other names run once.
    # The look (opacity, colormap) is in the key because the thumbnails bake it in.
    # Only the small records are cached (about 30 kB each), never the photos.
    return report.explain_records(_model, _datas, layer=layer, method=method, opacity=opacity, colormap=colormap,
                                 max_side=DISPLAY_MAX_SIDE,  # explained at the size Explore uses
                                 faithfulness=faithfulness, **explanation_cache.engine_options(method))


@st.cache_data(max_entries=16, max_size="1MB", show_spinner=False)
def weights_fingerprint(model_key: str, _model: gradcam.Model) -> str:
    return sha256_of_weights(_model)  # tens of milliseconds: once per model


@st.cache_data(max_entries=8, max_size="32MB", show_spinner=False)
def shared_concepts(image_hashes: tuple, model_key: str, layer: str, count: int, _records: list[dict],
                    _model: gradcam.Model) -> list[gradcam.ConceptStrip]:
    # Keyed by the photos' content and the choices; the strips hold small thumbnails only.
    return report.shared_concepts_of(_model, _records, count, layer=layer, per_concept=CONCEPT_PHOTOS)


def concepts_section(shown: list[dict], c) -> None:
    """The concepts the photos shown share: one strip of thumbnails per concept, with its votes."""
    st.subheader("Concepts these photos share")
    st.markdown("What parts does the model see across these photos? Deep Feature Factorization splits the layer's "
                "activations of all the photos shown above into a few concepts (non-negative matrix factorisation; "
                "Collins et al., 2018), those present in most photos first; each comes with the photos it is "
                "strongest in, tinted by it alone, and the classes it votes for. Pick one class above to see what "
                "that class is seen by.")
    count_box, go_box = st.columns([2, 1], vertical_alignment="bottom")
    st.session_state.setdefault("batch_concepts", gradcam.DEFAULT_CONCEPTS)
    count = count_box.slider("Concepts", 2, 8, key="batch_concepts", help="How many parts the activations are split into.")
    wanted = (tuple(r["sha256"] for r in shown), c.model_key, c.layer, count)
    # A kept click: the set's explanation above can hold this run up (dashboard/runtime/clicks.py).
    if clicks.button("Find shared concepts", key="batch_concepts_go", where=go_box, width="stretch", disabled=not shown):
        st.session_state["batch_concepts_for"] = wanted
    if st.session_state.get("batch_concepts_for") != wanted:
        st.caption(f"One forward pass per photo shown ({len(shown)}), on their thumbnails, with {md(c.model.name)} "
                   f"at {md(c.layer)}; then the factorisation.")
        return
    try:
        with st.spinner("Factorising the photos' activations..."):
            strips = shared_concepts(*wanted, shown, c.model)
    except (ValueError, gradcam.ExplanationTooCostly) as refused:
        st.error(md(str(refused)))
        return
    for strip in strips:
        concept = strip.concept
        votes = ", ".join(f"{md(name.split(',')[0])} {p:.0%}" for _, name, p in concept.supports)
        st.markdown(f"**The {concept.colour_name} concept** · in {concept.present_in()} of {len(shown)} photos · "
                    f"votes {votes}")
        # A list of images flows and wraps: a row on a wide screen, two or three a line on a phone.
        st.image(strip.pictures, width=CONCEPT_THUMBNAIL, caption=[md(shown[i]["file"]) for i in strip.photos])


def page() -> None:
    """The Batch page: many photos explained at once, a contact sheet and downloads."""
    st.set_page_config(page_title="Batch", page_icon=":card_index_dividers:", layout="wide")
    c = choices()


    def explain_all(sources: list[BatchSource]) -> None:
        """Explain every source, a chunk per batched engine call, with a progress bar; a
        broken photo is recorded and the rest go on."""
        results = []
        bar = st.progress(0.0, text="Starting...")
        for start in range(0, len(sources), CHUNK):
            chunk = sources[start:start + CHUNK]
            bar.progress(start / len(sources),
                         text=f"Explaining {start + 1} to {start + len(chunk)} of {len(sources)}" + clicks.waiting_note())
            datas, digests, unread = [], [], {}
            for source in chunk:
                try:
                    data = source.read()
                except ValueError as error:  # an archive entry that cannot be read
                    unread[source.name] = str(error)
                    continue
                datas.append(data)
                digests.append(sha256(data))
            try:
                records = explained(tuple(digests), c.model_key, c.layer, c.method, c.opacity, c.colormap, with_auc, datas,
                                    c.model)
            except gradcam.ExplanationTooCostly as error:  # the same for every chunk: said once, before any pass
                st.session_state.pop(PENDING, None)
                bar.empty()
                st.error(md(str(error)))
                return
            except Exception:  # anything unforeseen still gets a sentence, and the other chunks go on
                records = [{"error": "This image could not be explained."} for _ in datas]
            done = iter(zip(digests, records))
            for source in chunk:
                if source.name in unread:
                    results.append({"file": source.name, "sha256": "", "error": unread[source.name]})
                    continue
                digest, record = next(done)
                results.append({"file": source.name, "sha256": digest, "error": None, **record})
        bar.empty()
        st.session_state.pop(PENDING, None)
        st.session_state["batch_results"] = results
        st.session_state["batch_settings"] = {"model_key": c.model_key, "model": c.model.name, "layer": c.layer,
                                              "method": c.method, "opacity": c.opacity, "colormap": c.colormap,
                                              "probabilities": c.model.outputs_probabilities,
                                              "weights_sha256": weights_fingerprint(c.model_key, c.model)}


    # The address holds the shared view (the photos themselves cannot travel in a link).
    with st.spinner("Explaining..."):
        top1 = explanation_cache.explain_top5(c.image.sha256, c.model_key, c.layer, c.method, c.image.image, c.model).predictions[0]
    shared_state.write_url(c, top1.index)

    st.title("Batch")
    st.markdown(
        f"Explain many photos at once, each for its own top-1 class, with **{md(c.model.name)}**, layer "
        f"{md(c.layer)} and {gradcam.METHODS[c.method].display_name} (chosen on the Explore page)."
    )
    passes = method_picker.passes_note(c.model, c.method, c.layer)
    if passes:
        st.caption(f"{passes}, for every photo.")

    uploads = st.file_uploader(
        "Upload images or a .zip", accept_multiple_files=True, type=[*SUPPORTED_FORMATS, "zip"], key="batch_upload",
        help=f"A .zip is read in memory: at most {MAX_ARCHIVE_MEMBERS} entries and "
             f"{MAX_ARCHIVE_BYTES // 2**20} MB unpacked; folders, hidden files and other file types are skipped.",
    )
    unpacked = batch_sources([(f.name, f.getvalue()) for f in uploads or []])
    for problem in unpacked.problems:
        st.error(md(problem))
    if unpacked.sources:
        skipped = f"; {md(unpacked.skipped_text())}" if unpacked.skipped else ""  # it names files: escaped
        st.caption(f"{len(unpacked.sources)} image{'s' if len(unpacked.sources) != 1 else ''} ready{skipped}.")

    with_auc = st.checkbox(
        "Add deletion and insertion AUC per photo", key="batch_faithfulness",
        help=f"How faithful each map is, next to a random map's ({report.FAITHFULNESS_STEPS} steps each way): about "
             "120 more forward passes per photo, so several times slower. In the contact sheet and the CSV.")
    # The set as asked for: the files and every choice its records depend on.
    request = (tuple((s.name, s.size) for s in unpacked.sources), c.model_key, c.layer, c.method, c.opacity,
               c.colormap, with_auc)
    if clicks.button("Explain all", key="batch_explain", type="primary", disabled=not unpacked.sources):
        # What a session may unpack is bounded over its runs (an hour's worth), not only per run.
        allowed, problem = st.session_state.setdefault("batch_inflated", InflationLedger()).charge(
            unpacked.sources)
        if problem:
            st.error(md(problem))
        if allowed:
            st.session_state[PENDING] = (request, len(allowed))
    # Until its records are stored, the set asked for is explained in every run: a click meanwhile starts a
    # new run and cuts the old one short, and this run goes on (the chunks done are cached). A set whose
    # files or choices changed since is dropped: the person asked for something else.
    pending = st.session_state.get(PENDING)
    if pending is not None and pending[0] != request:
        st.session_state.pop(PENDING)
    elif pending is not None:
        explain_all(unpacked.sources[:pending[1]])

    results = st.session_state.get("batch_results")
    if not results:
        st.info("Upload photos (or a .zip of photos), then press **Explain all**.")
        st.stop()

    settings = st.session_state["batch_settings"]
    good = [r for r in results if not r["error"]]
    failed = [r for r in results if r["error"]]
    st.subheader(f"Explained {len(good)} of {len(results)} files")
    st.caption(f"With {md(settings['model'])}, layer {md(settings['layer'])}, "
               f"{gradcam.METHODS[settings['method']].display_name}, each photo's own top-1 class.")
    now = {"model_key": c.model_key, "layer": c.layer, "method": c.method, "opacity": c.opacity, "colormap": c.colormap}
    if any(settings[k] != v for k, v in now.items()):
        st.info("The choices on the Explore page changed since this set was explained; press **Explain all** again "
                "to explain it with the new ones.")

    if failed:
        st.warning(f"{len(failed)} file{'s' if len(failed) != 1 else ''} could not be explained:")
        # A dataframe shows file names and sentences as plain text.
        st.dataframe(pd.DataFrame({"file": [r["file"] for r in failed], "error": [r["error"] for r in failed]}),
                     hide_index=True, width="stretch")

    if good:
        st.subheader("Contact sheet")
        labels = sorted({r["label"] for r in good}, key=str.casefold)
        # Drop classes no longer present (a new run), so the widget never holds a stale pick.
        if "batch_classes" in st.session_state:
            st.session_state["batch_classes"] = [k for k in st.session_state["batch_classes"] if k in labels]
        order_box, class_box, confidence_box = st.columns([1, 2, 1.2])
        scored = any(r.get("faithfulness") for r in good)
        orders = (*report.SORT_ORDERS, *(report.FAITHFULNESS_ORDERS if scored else ()))
        if st.session_state.get("batch_sort") not in (None, *orders):  # a run without scores: no AUC order
            st.session_state["batch_sort"] = orders[0]
        order = order_box.selectbox("Sort by", orders, key="batch_sort", format_func=str.capitalize,
                                    help="Faithfulness: insertion AUC minus deletion AUC, next to a random map's."
                                    if scored else None)
        picked = class_box.multiselect("Top-1 class", labels, key="batch_classes", placeholder="All classes")
        minimum = 0
        if settings["probabilities"]:
            minimum = confidence_box.slider("Minimum confidence", 0, 100, 0, step=5, format="%d%%", key="batch_min")
        shown = report.select(good, classes=picked, min_probability=minimum / 100, order=order)
        st.caption(f"{len(shown)} of {len(good)} shown")

        pages = max(1, -(-len(shown) // PER_PAGE))
        page = 1
        if st.session_state.get("batch_page", 1) > pages:  # fewer pages after filtering: back to the last one
            st.session_state["batch_page"] = pages
        if pages > 1:
            page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="batch_page")
        visible = shown[(page - 1) * PER_PAGE: page * PER_PAGE]
        for start in range(0, len(visible), PER_ROW):
            for column, record in zip(st.columns(PER_ROW), visible[start:start + PER_ROW]):
                # Captions are Markdown: file names and labels are escaped to show as written.
                score = report.score_text(record["probability"], settings["probabilities"])
                auc = f"  \n{report.auc_caption(record)}" if record.get("faithfulness") else ""
                column.image(record["overlay_jpeg"],
                             caption=f"{md(record['label'])} ({score}) · {md(record['file'])}{auc}", width="stretch")

    if good:
        concepts_section(shown, c)

    st.subheader("Downloads")
    originals = {s.name: s.read for s in unpacked.sources}  # the uploads still in the uploader, read only on click
    look = {"opacity": settings["opacity"], "colormap": settings["colormap"]}
    zip_column, csv_column, html_column = st.columns(3)
    # Callables: archives and reports are only built when someone clicks.
    zip_column.download_button(
        "Overlays and predictions (.zip)",
        lambda: report.overlays_zip(results, originals, max_side=DISPLAY_MAX_SIDE, **look),
        file_name="gradcam-overlays.zip", mime="application/zip", on_click="ignore", width="stretch",
        disabled=not good,
    )
    csv_column.download_button(
        "Predictions (CSV)", report.predictions_csv(results), file_name="gradcam-predictions.csv", mime="text/csv",
        on_click="ignore", width="stretch",
    )
    html_column.download_button(
        "Report of the set (HTML)",
        lambda: report.report_html(
            report.batch_report_items(results, **look), title=f"Grad-CAM report: {len(good)} images",
            model_name=settings["model"], weights_sha256=settings["weights_sha256"],
            probabilities=settings["probabilities"],
            problems=[(r["file"], r["error"]) for r in failed],
        ),
        file_name="gradcam-report-batch.html", mime="text/html", on_click="ignore", width="stretch", disabled=not good,
    )
    st.caption(f"The .zip holds each overlay at up to {DISPLAY_MAX_SIDE} px (JPEG), redrawn from the uploads "
               "still in the uploader and the stored maps without running the model again (photos no longer "
               "uploaded get their thumbnails), plus predictions.csv. The report uses the thumbnails.")
