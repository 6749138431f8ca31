"""Explore: pick a photo, a model, a class and a layer; see the Grad-CAM heatmap.

A thin page: widgets and layout only. The engine (gradcam) does the maths and
dashboard.runtime caches it, so moving the opacity slider, changing the colormap
or switching among the top-5 classes never runs the model again.
"""

import contextlib

import gradcam
from dashboard.parts import class_picker, heatmap_panel, method_picker, model_picker, shared_state, what_if_panel
from dashboard.parts.heatmap_panel import score_text
from dashboard.parts.image_picker import inline_picture, pick_image
from dashboard.parts.layer_labels import layer_option, whole_option
from dashboard.safe_text import md
from dashboard.parts.shared_state import DEFAULTS, Choices, choose
from dashboard.runtime import explanation_cache
from dashboard.runtime.boot import first_view_drawn

import streamlit as st


def page() -> None:
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
        passes_slot = st.empty()  # SESS's and RefineCAM's pass count: it needs the model
        target_slot = st.container()  # needs the model's predictions
        opacity = st.slider("Opacity", 0.0, 1.0, step=0.05, key="opacity", on_change=keep, args=("opacity",))
        colormap = st.selectbox("Colormap", gradcam.COLORMAPS, key="colormap", on_change=keep, args=("colormap",))

    st.title("Why did the model say that?")
    current = pick_image()

    status = st.empty()  # the spinner, where the result will appear
    waiting = st.empty()  # the photo itself, while a model loads for the first time
    box = None  # a built-in model's first load: the spinner drawn at once, until the first map
    if not model_picker.is_loaded(picked):
        # All of it in the page's own message: the photo inline, and a status box rather than
        # st.spinner, which shows only after half a second, from a thread that waits its turn
        # while the interpreter loads the model. So a first visit shows photo and spinner at once.
        with waiting.container():
            if picked.choice != model_picker.UPLOAD:
                box = st.status(f"Loading {md(picked.name)}...", state="running")
            with st.container(width=480):  # st.image(width=480) itself overflows a phone's 390 px screen
                st.image(inline_picture(current.image), width="stretch",
                         caption=f"{md(current.name)}: the heatmap appears here once {md(picked.name)} is ready.")
    first_view_drawn()  # photo and pickers are drawn: a cold start's warm-up may take the interpreter
    with status.container():
        model_key, model = model_picker.load(picked, spinner=box is None)
    if box is not None:
        box.update(label="Explaining...")

    layers = {t.name: t for t in gradcam.target_layers(model)}
    if st.session_state.get("layer_for") == model_key and st.session_state.get("layer") not in (None, *layers):
        shared_state.refuse_link_value(  # only a link sets a layer that is not in the model's list
            f"The link names the layer \"{shared_state.shown_text(st.session_state['layer'])}\", which "
            f"{md(model.name)} does not have: showing its default layer.")
    if st.session_state.get("layer_for") != model_key or st.session_state.get("layer") not in layers:
        choose("layer_for", model_key)  # a new model starts at its own default layer
        choose("layer", gradcam.default_layer(model).name)
    layer = layer_slot.selectbox("Layer", list(layers), key="layer", on_change=keep, args=("layer",),
                                 format_func=lambda name: layer_option(layers[name]),
                                 help="Later layers: coarser, more class-specific maps. The default is the last one.")
    if (whole := whole_option(layers[layer])) is not None:  # the box cut it: the whole name, grid and path under it
        layer_slot.caption(whole)
    method_picker.show_passes(passes_slot, model, method, layer)

    try:
        with status.container(), st.spinner("Explaining...") if box is None else contextlib.nullcontext():
            explained = explanation_cache.explain_top5(current.sha256, model_key, layer, method, current.image, model)
    except ValueError as refused:  # the engine's one sentence: e.g. a transformer layer no gradient reaches
        waiting.empty()
        st.error(md(str(refused)))
        st.stop()
    waiting.empty()
    top5 = {p.index: p.probability for p in explained.predictions}
    top1 = explained.predictions[0].index
    target = st.session_state.get("target")
    valid = isinstance(target, int) and 0 <= target < len(model.labels)
    # Only a link's class is refused aloud: a selectbox whose options changed (another model's
    # classes) can hand back its old label as text, which is no link's doing.
    if st.session_state.get("target_for") == (current.sha256, model_key) and not valid \
            and "target" in shared_state.url_changes():
        shared_state.refuse_link_class(target, model)
    shared_state.say_link_refusals()
    if st.session_state.get("target_for") != (current.sha256, model_key) or not valid:
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
            class_map = explanation_cache.explain_class(current.sha256, model_key, layer, method, target, current.image, model)

    heatmap = class_map.heatmap
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
    heatmap_panel.honesty_note(explained.layer_shape, method)

    cover = what_if_panel.show(current, model_key, model, layer, method, target, class_map, opacity=opacity,
                               colormap=colormap)

    shared_state.remember()
    shared_state.write_url(Choices(current, model_key, model, layer, target, method, opacity, colormap), top1,
                           {"cover": cover}, photo_keys=("cover",))
