"""Explore: pick a photo, a model, a class and a layer; see the Grad-CAM heatmap.

A thin page: widgets and layout only. The engine (gradcam) does the maths and the
dashboard package caches it, so moving the opacity slider, changing the colormap
or switching among the top-5 classes never runs the model again.

This file is also the app's entry point (`streamlit run streamlit_app.py`): it
lists the pages in app_pages/ with st.navigation, so the sidebar reads
"Explore", "How Grad-CAM works", ... rather than file names. They are not in a
folder named pages/ on purpose: Streamlit auto-discovers that folder, and a link
opening /Compare directly then ran the page without this entry point (old names
in the sidebar, a different router than every other visit).
"""

import streamlit as st

import gradcam
from dashboard import cached, heatmap_panel, method_picker, shared_state
from dashboard.image_picker import current_sample, pick_image
from dashboard.model_picker import pick_model
from dashboard.heatmap_panel import score_text
from dashboard.safe_text import md



def explore() -> None:
    """The Explore page."""
    shared_state.read_url()  # a shared link's choices, once per session
    shared_state.restore()  # this page's widgets as they were before visiting another page
    for key, default in (("opacity", 0.4), ("colormap", "jet"), ("method", "gradcam")):
        st.session_state.setdefault(key, default)

    with st.sidebar:
        st.header("Grad-CAM Explorer")
        model_key, model = pick_model()
        layers = {t.name: t for t in gradcam.target_layers(model)}
        if st.session_state.get("layer_for") != model_key or st.session_state.get("layer") not in layers:
            st.session_state["layer_for"] = model_key  # a new model starts at its own default layer
            st.session_state["layer"] = gradcam.default_layer(model).name
        if (wanted := shared_state.take_wanted("layer")) in layers:
            st.session_state["layer"] = wanted
        layer = st.selectbox("Layer", list(layers), key="layer", format_func=lambda name: str(layers[name]),
                             help="Later layers: coarser, more class-specific maps. The default is the last one.")
        method = st.selectbox("Method", list(gradcam.METHODS), key="method",
                              format_func=lambda name: gradcam.METHODS[name].display_name,
                              help=method_picker.HELP)
        method_picker.describe(method)

    st.title("Why did the model say that?")
    current = pick_image()

    with st.spinner("Explaining..."):
        explained = cached.explain_top5(current.sha256, model_key, layer, method, current.image, model)
    top5 = {p.index: p.probability for p in explained.predictions}
    if st.session_state.get("target_for") != (current.sha256, model_key):
        st.session_state["target_for"] = (current.sha256, model_key)
        st.session_state["target"] = explained.predictions[0].index  # a new photo or model: its top-1
    if (wanted := shared_state.take_wanted("target")) is not None and 0 <= wanted < len(model.labels):
        st.session_state["target"] = wanted

    with st.sidebar:
        every_class = [*top5, *(i for i in range(len(model.labels)) if i not in top5)]
        target = st.selectbox(
            "Target class", every_class, key="target",
            format_func=lambda i: f"{model.labels[i]}  ({score_text(model, top5[i])})" if i in top5 else model.labels[i],
            help="The top-5 predictions first, then every class (type to search).",
        )
        opacity = st.slider("Opacity", 0.0, 1.0, step=0.05, key="opacity")
        colormap = st.selectbox("Colormap", gradcam.COLORMAPS, key="colormap")

    if target in explained.maps:
        class_map = explained.maps[target]
    else:
        with st.spinner("Explaining..."):
            class_map = cached.explain_class(current.sha256, model_key, layer, method, target, current.image, model)

    heatmap = cached.heatmap(class_map, current.image.size)
    record = heatmap_panel.record(model.name, layer, method, class_map, explained, current.name, current.sha256)
    heatmap_panel.show(current.image, heatmap, class_map, explained, opacity=opacity, colormap=colormap,
                       record_json=record, model=model)

    st.subheader("Top-5 predictions")
    chart, pick = st.columns([2, 1])
    with chart:
        st.altair_chart(heatmap_panel.predictions_chart(explained, target, model.outputs_probabilities), width="stretch")
    with pick:
        # Picking a prediction makes it the target: the same state the sidebar's box uses.
        st.session_state["target_pick"] = target if target in top5 else None
        st.radio("Explain prediction", list(top5), key="target_pick",
                 format_func=lambda i: f"{md(model.labels[i])}  ({score_text(model, top5[i])})",  # shown as Markdown
                 on_change=lambda: st.session_state.update(target=st.session_state["target_pick"]))
    heatmap_panel.honesty_note(explained.layer_shape)

    shared_state.remember()
    shared_state.write_url({
        "sample": current_sample(), "model": None if model_key.startswith("own:") else model_key, "layer": layer,
        "target": target, "method": method, "opacity": f"{opacity:.2f}", "colormap": colormap,
    })


PAGES = [
    st.Page(explore, title="Explore", icon=":material/search:", default=True),
    st.Page("app_pages/1_How_it_works.py", title="How Grad-CAM works", icon=":material/school:"),
    st.Page("app_pages/2_Compare.py", title="Compare", icon=":material/compare:"),
    st.Page("app_pages/3_Report.py", title="Report", icon=":material/description:"),
    st.Page("app_pages/4_Batch.py", title="Batch", icon=":material/photo_library:"),
]

st.set_page_config(page_title="Grad-CAM Explorer", page_icon=":fire:", layout="wide")
st.navigation(PAGES).run()
