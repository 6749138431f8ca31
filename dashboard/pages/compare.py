"""Compare: one photo's maps across layers, classes, methods and models.

A thin page. Each comparison asks the engine for as few passes as it allows: the
whole film strip of layers is one forward and one backward pass
(``gradcam.explain_layers``), the top-5 maps one pass (shared with the Explore
page's cache), and only the open tab is computed. Every engine call is cached per
(image hash, model, layer, method, ...), so the opacity slider never runs a model.

The view travels in the URL (``?compare=classes&other=...``): a link that opens
this page directly restores the photo, model, layer, class, method and tab.
"""

from __future__ import annotations

import contextlib

import streamlit as st
from PIL import Image

import gradcam
from gradcam.engine import SCORECAM_DEFAULT_CHANNELS
from dashboard.parts import class_picker, method_picker, shared_state
from dashboard.parts.heatmap_panel import score_text
from dashboard.parts.layer_labels import breakable, layer_option
from dashboard.parts.model_picker import load_builtin
from dashboard.parts.link_numbers import link_number
from dashboard.safe_text import md
from dashboard.parts.sections import drawn_alone
from dashboard.parts.shared_state import choices
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import explanation_cache


MODES = {"layers": "Layers", "classes": "Classes", "methods": "Methods", "models": "Models",
         "concepts": "Concepts"}  # URL value -> tab
STRIP_SIDE = 640  # pixels: a strip shows several maps at a time, so overlays are composed at this size
PER_ROW = 4  # maps in one row of a strip before it wraps (six across were too small to read)
MAX_LAYERS = 12  # a strip stays readable, and one pass over a dozen layers stays quick
LIST_SEPARATOR = ","  # layer and model names in the URL: Keras and our model names never contain one
# This page's widgets. Streamlit forgets a widget's value in any run that does not draw
# it (another page, or a closed tab here), so a copy is kept and put back.
KEPT = ("compare_tab", "compare_target", "compare_other", "compare_layers", "compare_models", "compare_concepts")
# The method that sets its own contrast (the class against its nearest classes), from the registry.
FINER = next(key for key, m in gradcam.METHODS.items() if m.target_score is not None)
# This page's own link keys, beside the shared ones: Compare's class and opacity are its
# own, so a Compare link gives the recipient's Explore and Report the sender's, not these.
WANTED = ("compare_class", "other", "layers", "models")


@st.cache_data(max_entries=64, max_size="64MB", show_spinner=False)
def layer_maps(image_hash: str, model_key: str, layers: tuple, target: int, method: str,
               _image: Image.Image, _model: gradcam.Model) -> list[tuple[str, gradcam.Explanation]]:
    """The class's map at each layer, from one forward and one backward pass."""
    engine_calls["explain_layers"] += 1
    explanations = gradcam.explain_layers(_model, _image, layers=list(layers), target=target, method=method)
    return [(e.layer, e) for e in explanations]


@st.cache_data(max_entries=64, max_size="32MB", show_spinner=False)
def contrast_map(image_hash: str, model_key: str, layer: str, method: str, target: int, other: int,
                 _image: Image.Image, _model: gradcam.Model) -> gradcam.Explanation:
    engine_calls["explain_contrast"] += 1
    return gradcam.explain_contrast(_model, _image, target=target, other=other, layer=layer, method=method)


@st.cache_data(max_entries=64, max_size="32MB", show_spinner=False)
def finer_map(image_hash: str, model_key: str, layer: str, target: int,
              _image: Image.Image, _model: gradcam.Model) -> gradcam.Explanation:
    """Finer-CAM: the class against its three nearest classes, weighted by their probabilities."""
    engine_calls["explain_finer"] += 1
    return gradcam.explain(_model, _image, target=target, layer=layer, method=FINER)


@st.cache_data(max_entries=16, max_size="32MB", show_spinner=False)
def concept_maps(image_hash: str, model_key: str, layer: str, count: int,
                 _image: Image.Image, _model: gradcam.Model):
    """Deep Feature Factorization of the layer: ``count`` concepts, each with its map and votes."""
    engine_calls["concepts"] += 1
    return gradcam.find_concepts(_model, _image, n=count, layer=layer)


@st.cache_data(max_entries=64, max_size="32MB", show_spinner=False)
def counterfactual_map(image_hash: str, model_key: str, layer: str, method: str, target: int,
                       _image: Image.Image, _model: gradcam.Model) -> gradcam.Explanation:
    engine_calls["explain_counterfactual"] += 1
    return gradcam.explain_counterfactual(_model, _image, target=target, layer=layer, method=method)


def one_class(image_hash: str, model_key: str, layer: str, method: str, target: int,
              image: Image.Image, model: gradcam.Model) -> gradcam.Explanation:
    """A class's map, from the top-5 pass the Explore page caches when the class is in it."""
    top5 = explanation_cache.explain_top5(image_hash, model_key, layer, method, image, model)
    if target in top5.maps:
        return top5.maps[target]
    return explanation_cache.explain_class(image_hash, model_key, layer, method, target, image, model)


# --- this page's part of a link ------------------------------------------------------


def follow_link() -> None:
    """This page's own keys when the address changed (a link opened, or Back/Forward);
    the shared part, photo, model, layer, class and look, is read by choices()."""
    changes = shared_state.url_changes()
    if "compare" in changes:
        st.session_state["compare_tab"] = MODES.get(changes["compare"] or "layers", "Layers")
    if "compare_opacity" in changes:
        st.session_state.pop("compare_opacity", None)  # left out: the shared opacity
        with contextlib.suppress(TypeError, ValueError):
            if 0.0 <= (value := float(changes["compare_opacity"])) <= 1.0:
                st.session_state["compare_opacity"] = round(value / 0.05) * 0.05
    # The others depend on the model and photo: checked where their widgets are drawn.
    # None means "left out": that widget's default.
    st.session_state["compare_wanted"] = {key: changes[key] for key in WANTED if key in changes}


def keep(key: str) -> None:
    """A widget's on_change: its copy is made before the run, which a page change can cut short."""
    st.session_state[f"{key}_kept"] = st.session_state[key]


def wanted(key: str) -> tuple[bool, str | None]:
    """Whether the link named this key, and its value (None: the default)."""
    asked = st.session_state.get("compare_wanted", {})
    return key in asked, asked.pop(key, None)


def listed(text: str | None, allowed) -> list[str]:
    return [name for name in (text or "").split(LIST_SEPARATOR) if name in allowed]


# --- drawing --------------------------------------------------------------------------


def small_photo(photo: Image.Image) -> Image.Image:
    small = photo.copy()
    small.thumbnail((STRIP_SIDE, STRIP_SIDE), Image.LANCZOS)
    return small


def show_map(where, shown: gradcam.Explanation, caption: str, photo: Image.Image, opacity: float, colormap: str) -> None:
    """One overlay with its caption (Markdown: user text in it is already escaped)."""
    if shown.no_positive_evidence:
        caption += " · no positive evidence"
    heatmap = shown.heatmap
    where.image(gradcam.overlay(photo, heatmap, opacity, colormap), caption=caption, width="stretch",
                alt="Grad-CAM overlay")


def strip(maps: list[tuple[gradcam.Explanation, str]], photo: Image.Image, opacity: float, colormap: str) -> None:
    """Overlays side by side, wrapping after PER_ROW; at least three columns wide,
    so two maps are not blown up to half the page each."""
    per_row = min(max(len(maps), 3), PER_ROW)
    for start in range(0, len(maps), per_row):
        for column, (shown, caption) in zip(st.columns(per_row), maps[start:start + per_row]):
            show_map(column, shown, caption, photo, opacity, colormap)


def evidence_notice(shown: gradcam.Explanation, sentence: str) -> None:
    if shown.no_positive_evidence:
        st.info(sentence)


# --- the page ---------------------------------------------------------------------------


def page() -> None:
    """The Compare page: one photo's maps across layers, classes, methods and models."""
    st.set_page_config(page_title="Compare - Grad-CAM Explorer", page_icon=":fire:", layout="wide")
    for key in KEPT:
        if key not in st.session_state and f"{key}_kept" in st.session_state:
            st.session_state[key] = st.session_state[f"{key}_kept"]  # checked again where the widget is drawn
    c = choices()
    follow_link()
    photo, model = c.image.image, c.model
    small = small_photo(photo)

    try:
        with st.spinner("Explaining..."):
            top5 = explanation_cache.explain_top5(c.image.sha256, c.model_key, c.layer, c.method, photo, model)
    except ValueError as refused:  # the engine's one sentence: e.g. a transformer layer no gradient reaches
        st.title("Compare")
        st.error(md(str(refused)))
        st.stop()
    top5_scores = {p.index: p.probability for p in top5.predictions}
    top1 = top5.predictions[0].index


    def class_name(index: int) -> str:
        # Widget options are plain text (not Markdown): the label as it is.
        label = model.labels[index]
        return f"{label}  ({score_text(model, top5_scores[index])})" if index in top5_scores else label


    st.title("Compare")
    st.caption(shared_state.choices_line(c, model))

    # The class: Explore's choice, else the top-1 (a new photo, model or choice there resets it).
    shared_class = c.target if c.target is not None else top1
    class_for = (c.image.sha256, c.model_key, shared_class)
    if st.session_state.get("compare_for") != class_for or st.session_state.get("compare_target") not in range(
            len(model.labels)):
        st.session_state["compare_for"] = class_for
        st.session_state["compare_target"] = shared_class
    named, value = wanted("compare_class")
    if named:
        linked = link_number(value, below=len(model.labels))
        st.session_state["compare_target"] = shared_class if linked is None else linked
    st.session_state.setdefault("compare_opacity", c.opacity)
    mode = st.session_state.get("compare_tab", "Layers")
    # The Models tab has no class to pick: a sentence says so where the picker stands on the other tabs, level with
    # the slider, instead of a blank gap beside it.
    pick_class, pick_opacity = st.columns([3, 1], vertical_alignment="center" if mode == "Models" else "top")
    query = ""  # a model with many classes: the class search's text (see dashboard.class_picker)
    if mode != "Models":  # each model explains its own top-1 there: a class picker would do nothing
        query = class_picker.search(pick_class, "compare_target", model.labels)
        every_class = class_picker.options(model.labels, top5_scores, st.session_state.get("compare_target"), query)
        target = pick_class.selectbox("Class", every_class, key="compare_target", format_func=class_name,
                                      on_change=keep, args=("compare_target",),
                                      help="The class whose maps are compared (top-5 first, then every class).")
    else:
        target = st.session_state["compare_target"]
        pick_class.markdown("No class to pick on this tab: each model explains its own top-1 class.")
    opacity = pick_opacity.slider("Opacity", 0.0, 1.0, step=0.05, key="compare_opacity")
    colormap = c.colormap
    label = md(model.labels[target])

    layers_tab, classes_tab, methods_tab, models_tab, concepts_tab = st.tabs(
        list(MODES.values()), key="compare_tab", on_change=keep, args=("compare_tab",))
    link = {}  # this tab's own choices, for the URL

    if layers_tab.open:
        with layers_tab, drawn_alone("The Layers tab"):
            all_layers = {t.name: t for t in gradcam.target_layers(model)}
            stages = [t.name for t in gradcam.stage_layers(model)]
            if st.session_state.get("compare_layers_for") != c.model_key:
                st.session_state["compare_layers_for"] = c.model_key  # a new model starts at its own stages
                st.session_state["compare_layers"] = stages
            named, value = wanted("layers")
            if named:
                st.session_state["compare_layers"] = listed(value, all_layers) or stages
            st.session_state["compare_layers"] = [n for n in st.session_state.get("compare_layers", stages)
                                                  if n in all_layers][:MAX_LAYERS]
            picked = st.multiselect("Layers", list(all_layers), key="compare_layers",
                                    on_change=keep, args=("compare_layers",),
                                    format_func=lambda name: layer_option(all_layers[name]), max_selections=MAX_LAYERS,
                                    help="Default: the last layer at each resolution, early to late.")
            ordered = tuple(name for name in all_layers if name in picked)  # early to late, whatever the click order
            st.markdown(f"Where the evidence for **{label}** sits at each stage of the network, early to late: "
                        "early layers see edges and textures at a fine grid, late layers whole objects at a coarse one.")
            strip_method = c.method
            if gradcam.METHODS[c.method].layer_free:  # the same map at every layer: the strip shows the default's
                chosen, strip_method = gradcam.METHODS[c.method], shared_state.DEFAULTS["method"]
                st.info(f"{chosen.display_name} works on the {chosen.works_on}, not on one layer, so it has no map "
                        f"per layer: this strip shows {gradcam.METHODS[strip_method].display_name}'s maps. The other "
                        f"tabs show {chosen.display_name}.")
            if not ordered:
                st.info("Pick at least one layer.")
            else:
                with st.spinner("Explaining every layer in one pass..."):
                    maps = layer_maps(c.image.sha256, c.model_key, ordered, target, strip_method, photo, model)
                strip([(shown, f"**{breakable(name)}** · {shown.raw.shape[0]}\u00a0x\u00a0{shown.raw.shape[1]}")
                       for name, shown in maps],
                      small, opacity, colormap)
            if list(ordered) != stages:
                link["layers"] = LIST_SEPARATOR.join(ordered)

    if classes_tab.open:
        with classes_tab, drawn_alone("The Classes tab"):
            count = len(top5.predictions)
            st.markdown(f"The model's top-{count} classes, each with its own map (one pass for all {count})."
                        if count > 1 else "The model's one output and its map.")
            strip([(top5.maps[p.index], f"{rank}. **{md(p.label)}** ({score_text(model, p.probability)})")
                   for rank, p in enumerate(top5.predictions, 1)], small, opacity, colormap)
            st.divider()
            named, value = wanted("other")
            if named:
                st.session_state["compare_other"] = link_number(value)  # checked below
            others = [i for i in class_picker.options(model.labels, top5_scores, st.session_state.get("compare_other"),
                                                      query) if i != target]  # empty for a model with a single output
            default_other = next((p.index for p in top5.predictions if p.index != target), others[0] if others else None)
            if others and st.session_state.get("compare_other") not in others:
                st.session_state["compare_other"] = default_other
            # Texts in one row and maps in the next, so both maps line up whatever the texts' lengths.
            contrast_text, against_text = st.columns(2)
            contrast_map_column, _, against_map_column, _ = st.columns([1.4, 0.6, 1.4, 0.6])
            contrast_note, against_note = st.columns(2)
            record = gradcam.METHODS[c.method]
            if others:
                with contrast_text:
                    st.markdown(f"#### Why {label} rather than another?")
                    other = st.selectbox("Rather than", others, key="compare_other", format_func=class_name,
                                         on_change=keep, args=("compare_other",))
                    st.markdown("The map of the difference of the two scores: the regions that make the model choose "
                                f"**{label}** over **{md(model.labels[other])}** (Selvaraju et al., 2017).")
                with contrast_note, drawn_alone("The map of why one class rather than another"):
                    with st.spinner("Explaining..."):
                        contrast = contrast_map(c.image.sha256, c.model_key, c.layer, c.method, target, other, photo,
                                                model)
                    show_map(contrast_map_column, contrast, f"**{md(contrast.label)}**", small, opacity, colormap)
                    evidence_notice(contrast, f"Nothing at this layer favours **{label}** over "
                                              f"**{md(model.labels[other])}**: the map is empty.")
                link["other"] = other if other != default_other else None
            with against_text:
                st.markdown(f"#### What speaks against {label}?")
                st.markdown("Grad-CAM with the gradients negated: the regions whose removal would make the model more "
                            f"sure of **{label}** (Selvaraju et al., 2017).")
            with against_note, drawn_alone("The map of what speaks against the class"):
                if not record.needs_gradients:  # the engine would refuse: say why where the map would be
                    st.info(f"This map negates gradients, and {record.display_name} uses none: pick a gradient "
                            "method (Grad-CAM, say) on the Explore page to see it.")
                else:
                    with st.spinner("Explaining..."):
                        against = counterfactual_map(c.image.sha256, c.model_key, c.layer, c.method, target, photo,
                                                     model)
                    show_map(against_map_column, against, f"**{md(against.label)}**", small, opacity, colormap)
                    evidence_notice(against, f"Nothing at this layer speaks against **{label}**: every region it "
                                             "sees raises the class's score, so the map is empty. An earlier layer "
                                             "on the Explore page may show some.")

            if len(model.labels) > 3:  # Finer-CAM: the contrast with the three look-alikes the model itself finds
                with st.container(), drawn_alone("The Finer-CAM map"):
                    finer_text, finer_column = st.columns([2, 1.4])
                    with finer_text:
                        st.markdown(f"#### {label} rather than its look-alikes")
                        st.markdown(f"{gradcam.METHODS[FINER].display_name}: Grad-CAM of **{label}** against the three "
                                    "classes whose scores are nearest to it, weighted by their probabilities (Zhang et "
                                    "al., 2025): what tells it apart from the classes the model finds most alike.")
                    with st.spinner("Explaining..."):
                        finer = finer_map(c.image.sha256, c.model_key, c.layer, target, photo, model)
                    show_map(finer_column, finer, f"**{md(model.labels[target])}** rather than its look-alikes", small,
                             opacity, colormap)

    if concepts_tab.open:
        with concepts_tab, drawn_alone("The Concepts tab"):
            st.markdown("What parts does the model see? Deep Feature Factorization splits this layer's activations "
                        "into a few concepts (non-negative matrix factorisation; Collins et al., 2018): each is drawn "
                        "in its own colour where it is strongest, and sent on through the rest of the network to see "
                        "which classes it votes for.")
            st.session_state.setdefault("compare_concepts", gradcam.DEFAULT_CONCEPTS)
            count = st.slider("Concepts", 2, 8, key="compare_concepts", on_change=keep, args=("compare_concepts",),
                              help="How many parts the layer's activations are split into.")
            with st.spinner("Factorising the layer's activations..."):
                found = concept_maps(c.image.sha256, c.model_key, c.layer, count, photo, model)
            left, right = st.columns([1.3, 1])
            left.image(found.picture(small, alpha=0.6), caption=f"{len(found.concepts)} concepts at {found.layer}",
                       width="stretch")
            with right:
                for concept in found.concepts:
                    votes = ", ".join(f"{md(name.split(',')[0])} {p:.0%}" for _, name, p in concept.supports)
                    st.markdown(f"**The {concept.colour_name} concept** · {concept.shares[0]:.0%} of the photo · "
                                f"votes {votes}")
            per_row = min(max(len(found.concepts), 3), PER_ROW)  # each concept alone, as the strips lay out maps
            for start in range(0, len(found.concepts), per_row):
                for column, concept in zip(st.columns(per_row), found.concepts[start:start + per_row]):
                    column.image(found.picture(small, alpha=0.8, only=concept.number), width="stretch",
                                 caption=f"**The {concept.colour_name} concept** alone")

    if methods_tab.open:
        with methods_tab, drawn_alone("The Methods tab"):
            st.markdown(f"The same class, **{label}**, at the same layer, by every method: how much of \"the heatmap\" "
                        "is the method's own choice. Each map says how long it took to make. Guided maps are at the "
                        "network's input resolution; Eigen-CAM ignores the class. Score-CAM uses the "
                        f"{SCORECAM_DEFAULT_CHANNELS} feature maps with the largest variance (Faster Score-CAM).")
            maps = []
            for method in gradcam.methods_for(model):  # rollout only where the model has attention
                record = gradcam.METHODS[method]
                with st.spinner(f"Explaining with {record.display_name}..."):
                    shown, seconds = explanation_cache.explain_timed(c.image.sha256, c.model_key, c.layer, method, target, photo,
                                                          model)
                # From the registry: a layer's cells, the input's pixels (Guided Grad-CAM's too), or attention.
                grid = f"{shown.raw.shape[0]} x {shown.raw.shape[1]}"
                where = (record.works_on if record.kind == "attention"
                         else f"{grid} input pixels" if record.resolution == "pixels" else f"{grid} cells")
                tags = [f"{seconds * 1000:,.0f} ms", where]
                passes = method_picker.planned_passes(model, method, c.layer)
                if passes is not None:
                    tags.append(method_picker.passes_text(passes))
                if not record.class_specific:
                    tags.append("class-agnostic")
                if record.ignores_layer:
                    tags.append("ignores the layer")
                maps.append((shown, f"**{record.display_name}** · " + " · ".join(tags)))
            strip(maps, small, opacity, colormap)

    if models_tab.open:
        with models_tab, drawn_alone("The Models tab"):
            names = [name for name, _ in gradcam.available_models()]
            offline = [name for name in names if name.startswith("EfficientNet-Lite")]
            current = c.model_key if c.model_key in names else offline[0]
            default = [current, next(name for name in offline if name != current)]
            named, value = wanted("models")
            if named:
                st.session_state["compare_models"] = listed(value, names) or default
            st.session_state["compare_models"] = [n for n in st.session_state.get("compare_models", default) if n in names]
            picked = st.multiselect("Models", names, key="compare_models", on_change=keep, args=("compare_models",),
                                    help="Keras applications download their weights on first use.")
            st.markdown("The same photo through each model: its map at its own last feature layer.")
            if not picked:
                st.info("Pick at least one model.")
            columns = st.columns(min(max(len(picked), 3), PER_ROW))
            for number, name in enumerate(picked):
                with columns[number % len(columns)]:
                    try:
                        other_model = load_builtin(name)  # a download that failed is not tried again this session
                        layer = gradcam.default_layer(other_model).name
                        with st.spinner(f"Explaining with {name}..."):
                            result = explanation_cache.explain_top5(c.image.sha256, name, layer, c.method, photo, other_model)
                    except gradcam.ModelLoadError as error:
                        st.error(md(str(error)))
                        continue
                    except Exception:  # anything the engine did not foresee: one sentence, the other models stay
                        st.error(f"{md(name)} could not be loaded or explained.")
                        continue
                    best = result.predictions[0]
                    # The layer starts a line of its own: a narrow column breaks the line before the name, not
                    # inside it ("top_ activation"), unless the name alone is wider than the column.
                    show_map(st, result.maps[best.index],
                             f"**{md(name)}**: {md(best.label)} ({score_text(other_model, best.probability)})  \n"
                             f"{breakable(layer)}, {result.layer_shape[0]}\u00a0x\u00a0{result.layer_shape[1]}", small,
                             opacity, colormap)
            if picked != default:
                link["models"] = LIST_SEPARATOR.join(picked)

    for key in KEPT:
        if key in st.session_state:
            st.session_state[f"{key}_kept"] = st.session_state[key]
    slug = next(key for key, title in MODES.items() if title == mode)
    shared_state.write_url(c, top1, {
        "compare": slug if slug != "layers" else None, **link,
        "compare_class": target if target != shared_class and mode != "Models" else None,
        "compare_opacity": f"{opacity:.2f}" if abs(opacity - c.opacity) > 1e-6 else None,
    }, photo_keys=("compare_class", "other"), model_keys=("compare_class", "other", "layers"))
