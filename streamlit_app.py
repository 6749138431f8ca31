"""Explore: pick a photo, a model, a class and a layer; see the Grad-CAM heatmap.

A thin page: widgets and layout only. The engine (gradcam) does the maths and the
dashboard package caches it, so moving the opacity slider, changing the colormap
or switching among the top-5 classes never runs the model again.

This file is also the app's entry point (`streamlit run streamlit_app.py`): it
lists the pages in app_pages/ with st.navigation (and its own links to them, which
carry the view: see the end of this file), so the sidebar reads
"Explore", "How Grad-CAM works", ... rather than file names. They are not in a
folder named pages/ on purpose: Streamlit auto-discovers that folder, and a link
opening /Compare directly then ran the page without this entry point (old names
in the sidebar, a different router than every other visit).
"""

import json

import streamlit as st

import gradcam
from dashboard import cached, class_picker, heatmap_panel, method_picker, model_picker, shared_state, what_if_panel
from dashboard.layer_names import layer_option
from dashboard.heatmap_panel import score_text
from dashboard.image_picker import pick_image
from dashboard.safe_text import md
from dashboard.shared_state import DEFAULTS, Choices, choose


def explore() -> None:
    """The Explore page. Everything that does not need the model is drawn first (title,
    photo, most controls), then the model loads, so the first visit and a model's first
    conversion show the page at once with a spinner where the result will appear."""
    shared_state.read_url()  # a shared link's choices, or Back/Forward
    shared_state.restore()  # this page's widgets as they were before visiting another page
    what_if_panel.read_link(shared_state.url_changes())  # a shared "cover the cup"
    for key, default in DEFAULTS.items():
        st.session_state.setdefault(key, default)
    keep = shared_state.remember  # each widget's on_change: its choice is kept even if this run is cut short

    with st.sidebar:
        st.header("Grad-CAM Explorer")
        picked = model_picker.model_controls(on_change=keep)
        layer_slot = st.container()  # needs the model
        method = st.selectbox("Method", list(gradcam.METHODS), key="method", on_change=keep, args=("method",),
                              format_func=lambda name: gradcam.METHODS[name].display_name,
                              help=method_picker.HELP)
        method_picker.describe(method)
        target_slot = st.container()  # needs the model's predictions
        opacity = st.slider("Opacity", 0.0, 1.0, step=0.05, key="opacity", on_change=keep, args=("opacity",))
        colormap = st.selectbox("Colormap", gradcam.COLORMAPS, key="colormap", on_change=keep, args=("colormap",))

    st.title("Why did the model say that?")
    current = pick_image()

    status = st.empty()  # the spinner, where the result will appear
    waiting = st.empty()  # the photo itself, while a model loads for the first time
    if not model_picker.is_loaded(picked):
        waiting.image(current.image, caption=f"{md(current.name)}: the heatmap appears here once "
                                             f"{md(picked.name)} is ready.", width=480)
    with status.container():
        model_key, model = model_picker.load(picked)

    layers = {t.name: t for t in gradcam.target_layers(model)}
    if st.session_state.get("layer_for") != model_key or st.session_state.get("layer") not in layers:
        choose("layer_for", model_key)  # a new model starts at its own default layer
        choose("layer", gradcam.default_layer(model).name)
    layer = layer_slot.selectbox("Layer", list(layers), key="layer", on_change=keep, args=("layer",),
                                 format_func=lambda name: layer_option(layers[name]),
                                 help="Later layers: coarser, more class-specific maps. The default is the last one.")

    try:
        with status.container(), st.spinner("Explaining..."):
            explained = cached.explain_top5(current.sha256, model_key, layer, method, current.image, model)
    except ValueError as refused:  # the engine's one sentence: e.g. a transformer layer no gradient reaches
        waiting.empty()
        st.error(md(str(refused)))
        st.stop()
    waiting.empty()
    top5 = {p.index: p.probability for p in explained.predictions}
    top1 = explained.predictions[0].index
    target = st.session_state.get("target")
    if st.session_state.get("target_for") != (current.sha256, model_key) or not (
            isinstance(target, int) and 0 <= target < len(model.labels)):
        choose("target_for", (current.sha256, model_key))
        choose("target", top1)  # a new photo or model: its top-1

    query = class_picker.search(target_slot, "target", model.labels)
    every_class = class_picker.options(model.labels, top5, st.session_state.get("target"), query)
    target = target_slot.selectbox(
        "Target class", every_class, key="target", on_change=keep, args=("target",),
        format_func=lambda i: f"{model.labels[i]}  ({score_text(model, top5[i])})" if i in top5 else model.labels[i],
        help="The top-5 predictions first, then every class (type to search)." if not class_picker.needs_search(
            model.labels) else "The top-5 predictions, the class chosen, then the search's matches.",
    )

    if target in explained.maps:
        class_map = explained.maps[target]
    else:
        with status.container(), st.spinner("Explaining..."):
            class_map = cached.explain_class(current.sha256, model_key, layer, method, target, current.image, model)

    heatmap = cached.heatmap(class_map, current.image.size)
    record = heatmap_panel.record(model.name, layer, method, class_map, explained, current.name, current.sha256)
    heatmap_panel.show(current.image, heatmap, class_map, explained, opacity=opacity, colormap=colormap,
                       record_json=record, model=model, method=method)

    st.subheader(heatmap_panel.predictions_heading(model, len(explained.predictions)))
    chart, pick = st.columns([2, 1])
    with chart:
        st.altair_chart(heatmap_panel.predictions_chart(explained, target, model.outputs_probabilities), width="stretch")
    with pick:
        # Picking a prediction makes it the target: the same state the sidebar's box uses.
        st.session_state["target_pick"] = target if target in top5 else None
        st.radio("Explain prediction", list(top5), key="target_pick",
                 format_func=lambda i: f"{md(model.labels[i])}  ({score_text(model, top5[i])})",  # shown as Markdown
                 on_change=lambda: choose("target", st.session_state["target_pick"]))
    heatmap_panel.honesty_note(explained.layer_shape)

    cover = what_if_panel.show(current, model_key, model, layer, method, target, class_map, opacity=opacity,
                               colormap=colormap)

    shared_state.remember()
    shared_state.write_url(Choices(current, model_key, model, layer, target, method, opacity, colormap), top1,
                           {"cover": cover}, photo_keys=("cover",))


PAGES = [
    st.Page(explore, title="Explore", icon=":material/search:", default=True),
    st.Page("app_pages/1_How_it_works.py", title="How Grad-CAM works", icon=":material/school:"),
    st.Page("app_pages/2_Compare.py", title="Compare", icon=":material/compare:"),
    st.Page("app_pages/3_Report.py", title="Report", icon=":material/description:"),
    st.Page("app_pages/4_Batch.py", title="Batch", icon=":material/photo_library:"),
    st.Page("app_pages/5_Trust.py", title="Can I trust it?", icon=":material/verified:"),
    st.Page("app_pages/6_Quiz.py", title="Where will it look?", icon=":material/quiz:"),
    st.Page("app_pages/7_Audit.py", title="Audit a dataset", icon=":material/fact_check:"),
]

# Streamlit closes its sidebar after a page link is tapped only when the browser's
# user agent says "phone"; in any other narrow window (a phone in desktop mode, a small
# tablet) the sidebar stayed over the new page. This closes it once per page change,
# below Streamlit's mobile width; same-page reruns (a slider in the sidebar) never do.
_CLOSE_SIDEBAR_AFTER_PAGE_CHANGE = """<script>
(() => {
  const page = %s;
  const previous = window.__gradcamPage;
  window.__gradcamPage = page;
  if (previous === undefined || previous === page || window.innerWidth > 768) return;
  const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
  if (close && close.getAttribute("aria-expanded") === "true") close.click();
})();
</script>"""


def close_sidebar_after_page_change(page: st.Page) -> None:
    with st.sidebar:  # our own fixed script; the only data in it is the page's own title, as JSON
        st.html(_CLOSE_SIDEBAR_AFTER_PAGE_CHANGE % json.dumps(page.title), unsafe_allow_javascript=True)


st.set_page_config(page_title="Grad-CAM Explorer", page_icon=":fire:", layout="wide")
# Our own page list rather than Streamlit's: its links drop the address's query, so
# every page change added an entry without the view (Back then showed the same page,
# or lost the view); ours carry the view. Drawn at once (with the view as last written),
# then again after the page, which writes the view.
page = st.navigation(PAGES, position="hidden")
close_sidebar_after_page_change(page)
st.session_state["page_title"] = page.title  # whose own link keys write_url keeps
menu = st.sidebar.empty()
shared_state.page_links(menu, PAGES)
try:
    with cached.this_session_in_the_sandbox():  # one session's uploads wait behind its own, not everyone's
        page.run()
finally:
    shared_state.page_links(menu, PAGES)
