"""How Grad-CAM works: the current explanation taken apart, step by step, with its
real tensors, for a classroom.

A thin page: one engine pass (``gradcam.engine.cam.compute(..., keep_tensors=True)``)
gives every tensor shown here, from the same pipeline the Explore page uses, so
the last step's map is exactly the map Explore shows. The step lives in
st.session_state["lesson_step"] (a plain key, not a widget), so a teacher who
looks at another page comes back to the same step.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

import gradcam
from dashboard.parts import class_picker, shared_state, what_if_panel
from dashboard.parts.heatmap_panel import colour_scale, score_text
from dashboard.parts.link_numbers import link_number
from dashboard.safe_text import md
from dashboard.parts.shared_state import choices
from dashboard.parts.stepper import current_step, stepper
from gradcam.engine import CamTensors, colorize, compute, upsample
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import explanation_cache


STEPS = (
    "The input",
    "The feature maps",
    "Their gradients",
    "One weight per feature map",
    "The weighted sum",
    "Keep what speaks for the class",
    "Onto the photo",
    "What if? Cover it",
)
WHAT_IF = "lesson_what_if"  # the last step's boxes and widgets, apart from Explore's
SHOWN_CHANNELS = 16  # feature maps drawn in steps 2 and 3: a 2 x 8 grid reads well on a projector
BARS = 10  # strongest positive and negative weights in step 4's chart
DIVERGING = "RdBu_r"  # red raises the score, blue lowers it, white is zero
# This page's widgets. Streamlit forgets a widget's value in any run that does not draw
# it (another page), so a copy is kept and put back: the lesson looks as it was left.
KEPT = ("lesson_target", "lesson_all")
TILE = 150  # pixels: feature-map tiles are enlarged by whole cells, so each cell stays a visible square

# How each built-in preprocessing changes a pixel value p (0..255): (plain words, formula).
PREPROCESSING = {
    "efficientnet-lite": ("shifted and scaled to about −1..1", r"x = \frac{p - 127}{128}"),
    "0..1": ("divided by 255, to 0..1", r"x = \frac{p}{255}"),
    "-1..1": ("scaled to −1..1", r"x = \frac{p}{127.5} - 1"),
    "caffe": ("reordered to blue-green-red with ImageNet's mean colour subtracted",
              r"x = p_{\mathrm{BGR}} - \mu_{\mathrm{BGR}}"),
    "torch": ("scaled to 0..1, then standardised with ImageNet's mean and spread per colour",
              r"x = \frac{p / 255 - \mu}{\sigma}"),
    "none": ("left as they are (the model rescales them itself)", r"x = p"),
}

WEIGHT_FORMULA = {
    "gradcam": r"\alpha_k^c = \frac{1}{Z} \sum_{i} \sum_{j} \frac{\partial y^c}{\partial A^k_{ij}}"
               r"\qquad Z = h \cdot w",
    "gradcam++": r"\alpha_k^c = \sum_{i,j} a^{kc}_{ij}\, \mathrm{ReLU}\!\left(\frac{\partial y^c}{\partial A^k_{ij}}"
                 r"\right) \qquad a^{kc}_{ij} = \frac{\left(\partial y^c / \partial A^k_{ij}\right)^2}"
                 r"{2 \left(\partial y^c / \partial A^k_{ij}\right)^2 + \sum_{a,b} A^k_{ab}"
                 r"\left(\partial y^c / \partial A^k_{ij}\right)^3}",
}
WEIGHT_SENTENCE = {
    "gradcam": "Each feature map gets one weight: the average of its gradient over all {cells} cells, that is how "
               "much the class score rises when the whole map grows a little.",
    "gradcam++": "Grad-CAM++ gives each feature map one weight from its positive gradients only, each cell "
                 "weighted by a so that a small object counts as much as a large one.",
}


@st.cache_data(max_entries=8, max_size="128MB", show_spinner=False)
def lesson_tensors(image_hash: str, model_key: str, layer: str, method: str, target: int,
                   _image: Image.Image, _model: gradcam.Model) -> CamTensors:
    """Every tensor of one explanation. Cached: Previous / Next never run the model again.
    The early layers' tensors are megabytes, hence the small bound."""
    engine_calls["lesson"] += 1
    return compute(_model, _image, targets=[target], layer=layer, method=method, keep_tensors=True)


# --- small drawing helpers: arrays to pictures ----------------------------------------


def cells(colours: np.ndarray, longest: int = TILE) -> Image.Image:
    """A (h, w, 3) colour grid enlarged by a whole number of pixels per cell, so a
    7 x 7 map shows 49 crisp squares instead of a blur that hides how coarse it is."""
    height, width = colours.shape[:2]
    factor = max(1, math.ceil(longest / max(height, width)))
    return Image.fromarray(colours).resize((width * factor, height * factor), Image.NEAREST)


def diverging(values: np.ndarray, scale: float) -> np.ndarray:
    """Colours symmetric around zero: the same shade means the same size, either sign."""
    scale = scale if scale > 0 else 1.0
    return colorize(np.clip(0.5 + values / (2.0 * scale), 0.0, 1.0), DIVERGING)


def sequential(values: np.ndarray, colormap: str) -> np.ndarray:
    """Each map on its own range: feature maps differ by orders of magnitude."""
    low, high = float(values.min()), float(values.max())
    return colorize((values - low) / (high - low) if high > low else np.zeros_like(values), colormap)


def scale_bar(colormap: str, low: str, middle: str, high: str) -> None:
    st.image(colour_scale(colormap), width="stretch")
    left, centre, right = st.columns(3)
    left.caption(low)
    centre.caption(middle, text_alignment="center")
    right.caption(high, text_alignment="right")


def grid(images: list[Image.Image], captions: list[str], per_row: int = 8) -> None:
    for start in range(0, len(images), per_row):
        for column, image, caption in zip(st.columns(per_row), images[start:start + per_row],
                                          captions[start:start + per_row]):
            column.image(image, caption=caption, width="stretch")


def network_input_picture(model: gradcam.Model, photo: Image.Image) -> Image.Image:
    """What the network is fed, stretched back to 0..255 so it can be looked at."""
    x = model.prepare(photo)[0]
    low, high = float(x.min()), float(x.max())
    shown = (x - low) / (high - low) * 255.0 if high > low else np.zeros_like(x)
    shown = shown.astype(np.uint8)
    return Image.fromarray(shown[..., 0] if shown.shape[-1] == 1 else shown)


def signed(value: float) -> str:
    return f"{value:+.3g}"


# --- the page -------------------------------------------------------------------------


def page() -> None:
    """The How Grad-CAM works page: the current explanation taken apart, step by step."""
    st.set_page_config(page_title="How Grad-CAM works", page_icon=":fire:", layout="wide")
    for key in KEPT:
        if key not in st.session_state and f"{key}_kept" in st.session_state:
            st.session_state[key] = st.session_state[f"{key}_kept"]
    c = choices()
    photo, model = c.image.image, c.model
    changes = shared_state.url_changes()  # a link to a lesson step, or Back/Forward
    if "step" in changes:
        st.session_state["lesson_step"] = link_number(changes["step"]) or 1
    if "all" in changes:
        st.session_state["lesson_all"] = changes["all"] == "1"
    what_if_panel.read_link(changes, WHAT_IF)  # a shared "cover the cup" for the last step

    with st.spinner("Explaining..."):
        # The top-5 comes from the Explore page's own cache (one pass for all five).
        top5 = explanation_cache.explain_top5(c.image.sha256, c.model_key, c.layer, c.method, photo, model).predictions
    top5_scores = {p.index: p.probability for p in top5}

    st.title("How Grad-CAM works")
    st.caption(shared_state.choices_line(c, model))

    # The class: the one chosen on Explore, else the model's top-1 (a new photo or model resets it).
    shared_class = c.target if c.target is not None else top5[0].index
    shown_for = (c.image.sha256, c.model_key, shared_class)
    if st.session_state.get("lesson_for") != shown_for or not 0 <= st.session_state.get("lesson_target", -1) < len(
            model.labels):
        st.session_state["lesson_for"] = shown_for
        st.session_state["lesson_target"] = shared_class
    if "lesson_class" in changes:
        linked = link_number(changes["lesson_class"], below=len(model.labels))
        st.session_state["lesson_target"] = shared_class if linked is None else linked
    choose, toggle = st.columns([3, 1], vertical_alignment="bottom")
    query = class_picker.search(choose, "lesson_target", model.labels)
    every_class = class_picker.options(model.labels, top5_scores, st.session_state.get("lesson_target"), query)
    target = choose.selectbox(
        "Class to explain", every_class, key="lesson_target",
        format_func=lambda i: f"{model.labels[i]}  ({score_text(model, top5_scores[i])})" if i in top5_scores
        else model.labels[i],
        help="The model's top-5 first, then every class (type to search).",
    )
    show_all = toggle.toggle("Show all steps", key="lesson_all", help="Every step on one page, to scroll or print.")
    for key in KEPT:
        st.session_state[f"{key}_kept"] = st.session_state[key]
    step = current_step("lesson_step", len(STEPS))
    # The lesson's own part of a link: a teacher hands out a step.
    covers_shown = show_all or step == len(STEPS)  # the last step's boxes travel while it is shown
    shared_state.write_url(c, top5[0].index, {
        "step": step if step != 1 and not show_all else None, "all": 1 if show_all else None,
        "lesson_class": target if target != shared_class else None,
        "cover": what_if_panel.format_cover(what_if_panel.current_boxes(WHAT_IF, c.image.sha256))
        if covers_shown else None,
    }, photo_keys=("lesson_class", "cover"), model_keys=("lesson_class",))

    # The lesson's steps are those of a channel-weight method; any other method chosen on
    # Explore is taught through Grad-CAM, and the page says so.
    method = c.method if c.method in WEIGHT_FORMULA else "gradcam"
    if method != c.method:
        st.info(f"These steps compute Grad-CAM's map: {gradcam.METHODS[c.method].display_name}, chosen on Explore, "
                "makes its map another way (see its description on Explore); the last step shows both maps side by "
                "side. Compare, Methods tab, shows every method side by side.")
    with st.spinner("Explaining..."):
        tensors = lesson_tensors(c.image.sha256, c.model_key, c.layer, method, target, photo, model)

    features = tensors.features  # (h, w, k)
    gradients = tensors.gradients[0]  # (h, w, k)
    weights = tensors.channel_weights[0].astype(np.float64)  # (k,)
    before_relu = tensors.before_relu[0].astype(np.float32)  # (h, w)
    after_relu = np.maximum(before_relu, 0.0)
    heatmap, no_positive_evidence = upsample(after_relu, photo.size)
    height, width, channels = features.shape
    label = md(model.labels[target])
    # The tests compare this with gradcam.explain(...).heatmap: what step 7 shows, to the number.
    st.session_state["lesson_final_map"] = heatmap

    # The channels worth drawing: the largest contributions |alpha_k * mean(A^k)| to the sum of step 5.
    contributions = weights * features.reshape(-1, channels).mean(axis=0)
    shown = [int(k) for k in np.argsort(-np.abs(contributions), kind="stable")[:SHOWN_CHANNELS]]
    input_picture = network_input_picture(model, photo)
    MAP_SYMBOL = r"L^c_{\text{" + gradcam.METHODS[method].display_name + "}}"  # the method's own name; fixed text, never user text


    token_grid = next((t.grid for t in gradcam.target_layers(model) if t.name == c.layer), None)


    def tokens_lesson(grid) -> str:
        """What a transformer's tokens are, for a lesson at one of its token layers."""
        extra = ""
        if grid.extra == 1:
            extra = (" It adds one class token that belongs to no patch: the classifier reads only that one, and the "
                     "map leaves it out.")
        elif grid.extra > 1:
            extra = (f" It adds {grid.extra} tokens that belong to no patch (a class token, which the classifier reads, "
                     "and distillation or register tokens): the map leaves them out.")
        return (f"This model is a transformer: it cuts the photo into a {grid.height} x {grid.width} grid of patches and "
                f"turns each into a token, a vector of {channels} numbers.{extra} Laid out again row by row, the patch "
                "tokens are the cells of the maps below, and their numbers are the channels. The default layer is the "
                "last block's input normalisation: after the last block only the class token is read, so the patches' "
                "tokens there get no gradient from the score, while before that block's attention every patch still "
                "feeds the class token.")


    def step_input() -> None:
        words, formula = PREPROCESSING.get(model.preprocessing, ("prepared as the model expects", r"x = f(p)"))
        in_h, in_w = model.input_size
        st.markdown(
            f"The photo ({photo.width} x {photo.height} pixels) is resized, whole and not cropped, to the "
            f"network's {in_w} x {in_h} input, and each pixel value $p$ is {words}."
        )
        st.latex(formula)
        left, right, notes = st.columns([2, 1.2, 1.3])
        left.image(photo, caption=f"The photo, {photo.width} x {photo.height}", width="stretch")
        right.image(input_picture, caption=f"The network's input, {in_w} x {in_h} x {model.channels} "
                                           "(shown rescaled to 0..255)", width="stretch")
        with notes:
            logit = float(tensors.logits[target])
            st.metric(f"Score $y^c$ of {label}", f"{logit:.3g}",
                      help="The class's score before softmax: Grad-CAM explains this number.")
            st.caption(f"The network gives {len(model.labels)} such scores; this class's probability is "
                       f"{score_text(model, float(tensors.probabilities[target]))}.")


    def step_features() -> None:
        st.markdown(
            f"Layer {md(c.layer)} describes the photo as {channels} feature maps $A^k$ of {height} x {width} cells; "
            f"these are the {len(shown)} that matter most for **{label}** (bright: the feature is strongly present)."
        )
        if token_grid is not None:
            st.info(tokens_lesson(token_grid))
        st.latex(r"A^k \in \mathbb{R}^{" + f"{height} \\times {width}" + r"}, \quad k = 1, \dots, " + str(channels))
        grid([cells(sequential(features[:, :, k], "viridis")) for k in shown],
             [f"channel {k}" for k in shown])
        st.caption("Each map on its own scale, from its lowest value (dark) to its highest (yellow).")


    def step_gradients() -> None:
        st.markdown(
            f"The gradient says, for each cell of each map, how much the score of **{label}** would change if that "
            "cell grew a little: red raises the score, blue lowers it."
        )
        st.latex(r"g^{kc}_{ij} = \frac{\partial y^c}{\partial A^k_{ij}}")
        chosen = gradients[:, :, shown]
        scale = float(np.abs(chosen).max())
        grid([cells(diverging(gradients[:, :, k], scale)) for k in shown],
             [f"channel {k}, mean {signed(float(gradients[:, :, k].mean()))}" for k in shown])
        left, _ = st.columns([1, 2])
        with left:
            scale_bar(DIVERGING, f"{-scale:.2g}", "0", f"+{scale:.2g}")
        spread = float(np.ptp(chosen, axis=(0, 1)).max()) if chosen.size else 0.0
        if spread <= 1e-6 * max(scale, 1e-30):
            st.caption("At this layer every cell of a map has the same gradient: the network averages each map "
                       "over the whole grid before its classifier, so only the map's total counts.")
        else:
            st.caption("All maps on one scale, so their strengths can be compared.")


    def weights_table() -> pd.DataFrame:
        return pd.DataFrame({
            "channel": shown,
            "weight α_k": [weights[k] for k in shown],
            "mean of A^k": [float(features[:, :, k].mean()) for k in shown],
            "α_k · mean A^k": [float(contributions[k]) for k in shown],
        })


    def step_weights() -> None:
        st.markdown(WEIGHT_SENTENCE[method].format(cells=height * width))
        st.latex(WEIGHT_FORMULA[method])
        order = np.argsort(-weights, kind="stable")
        strongest = [*order[:BARS], *[k for k in order[::-1][:BARS] if weights[k] < 0][::-1]]
        bars = pd.DataFrame({
            "channel": [str(int(k)) for k in strongest],
            "weight": [weights[k] for k in strongest],
            "sign": ["raises the score" if weights[k] >= 0 else "lowers the score" for k in strongest],
        })
        chart = (
            alt.Chart(bars)
            .mark_bar(size=16)
            .encode(
                y=alt.Y("channel:N", sort=None, title="channel k", axis=alt.Axis(labelOverlap=False)),
                x=alt.X("weight:Q", title="weight α_k"),
                color=alt.Color("sign:N", scale=alt.Scale(domain=["raises the score", "lowers the score"],
                                                          range=["#d62728", "#1f77b4"]),
                                legend=alt.Legend(title=None, orient="bottom")),
                tooltip=["channel", alt.Tooltip("weight:Q", format=".4g")],
            )
            .properties(height=24 * len(bars))
        )
        left, right = st.columns([1, 1])
        with left:
            st.altair_chart(chart, width="stretch")
            st.caption(f"The {BARS} largest and the {BARS} most negative of the {channels} weights; "
                       f"{int((weights > 0).sum())} are positive, {int((weights < 0).sum())} negative.")
        with right:
            st.dataframe(weights_table(), hide_index=True, width="stretch",
                         column_config={name: st.column_config.NumberColumn(format="%.4g")
                                        for name in ("weight α_k", "mean of A^k", "α_k · mean A^k")})
            st.caption("The feature maps of steps 2 and 3, with their weights.")


    def step_weighted_sum() -> None:
        st.markdown(
            f"Adding up all {channels} feature maps, each times its weight, gives one {height} x {width} map: "
            "red cells raise the score, blue cells lower it."
        )
        st.latex(r"L^c = \sum_{k} \alpha_k^c A^k")
        scale = float(np.abs(before_relu).max())
        left, middle, right = st.columns([1, 1, 1])
        left.image(input_picture, caption="The network's input, for reference", width="stretch")
        middle.image(cells(diverging(before_relu, scale), 320), caption=f"Before ReLU, {height} x {width} cells",
                     width="stretch")
        with right:
            scale_bar(DIVERGING, f"{-scale:.3g}", "0", f"+{scale:.3g}")
            st.caption(f"Lowest value {before_relu.min():.3g}, highest {before_relu.max():.3g}.")


    def step_relu() -> None:
        st.markdown(
            f"Grad-CAM keeps only the evidence for **{label}**: the ReLU sets every negative cell to zero."
        )
        st.latex(MAP_SYMBOL + r" = \mathrm{ReLU}\!\left(\sum_k \alpha_k^c A^k\right) = \max\!\left(0,\ L^c\right)")
        negative = int((before_relu < 0).sum())
        peak = float(after_relu.max())
        left, middle, right = st.columns([1, 1, 1])
        left.image(input_picture, caption="The network's input, for reference", width="stretch")
        middle.image(cells(colorize(after_relu / peak if peak > 0 else after_relu, c.colormap), 320),
                     caption=f"After ReLU, {height} x {width} cells", width="stretch")
        with right:
            scale_bar(c.colormap, "0", "", f"{peak:.3g}")
            st.caption(f"{negative} of the {height * width} cells were negative and are now 0.")
        if no_positive_evidence:
            st.warning(f"No positive evidence for **{label}** at this layer: every cell was at most zero, so the "
                       "map is empty. Try another layer or class on the Explore page.")


    def step_overlay() -> None:
        st.markdown(
            f"The map is divided by its largest value, enlarged smoothly (bilinear) from {height} x {width} cells to "
            f"the photo's {photo.width} x {photo.height} pixels, coloured and laid over the photo at opacity "
            f"{c.opacity:.2f}."
        )
        st.latex(r"M = \mathrm{resize}\!\left(\frac{" + MAP_SYMBOL + r"}{\max " + MAP_SYMBOL + r"}\right), "
                 r"\quad \text{overlay} = (1 - a)\,\text{photo} + a\,\mathrm{colour}(M)")
        overlaid = gradcam.overlay(photo, heatmap, c.opacity, c.colormap)
        taught = gradcam.METHODS[method].display_name  # the method these steps computed
        if method != c.method:
            # Explore shows another method's map: both side by side, each under its own name.
            explore_name = gradcam.METHODS[c.method].display_name
            explained = explanation_cache.explain_top5(c.image.sha256, c.model_key, c.layer, c.method, photo, model)
            explore_map = explained.maps.get(target) or explanation_cache.explain_class(c.image.sha256, c.model_key, c.layer,
                                                                              c.method, target, photo, model)
            left, right = st.columns(2)
            left.image(overlaid, caption=f"{taught} overlay (these steps), opacity {c.opacity:.2f}", width="stretch",
                       alt=f"{taught} overlay")
            right.image(gradcam.overlay(photo, explore_map.heatmap, c.opacity, c.colormap),
                        caption=f"{explore_name} overlay (what Explore shows)", width="stretch",
                        alt=f"{explore_name} overlay")
            with st.columns(3)[1]:  # one scale for both maps, between them, not a page-wide band
                scale_bar(c.colormap, "no evidence", "", "strongest")
            st.markdown(f"These steps computed **{taught}**'s map for **{label}**. The Explore page shows "
                        f"**{explore_name}**, which makes its map another way, so its map (right) can sit elsewhere.")
            if no_positive_evidence:
                st.warning(f"No positive evidence for **{label}** at this layer in {taught}'s map (left).")
            return
        left, right = st.columns([2, 1])
        left.image(overlaid, caption=f"{taught} overlay, opacity {c.opacity:.2f}", width="stretch",
                   alt=f"{taught} overlay")
        with right:
            st.image(colorize(heatmap, c.colormap), caption="The map alone, enlarged", width="stretch")
            scale_bar(c.colormap, "no evidence", "", "strongest")
        if no_positive_evidence:
            st.warning(f"No positive evidence for **{label}** at this layer, so there is nothing to lay over the photo.")
        else:
            st.markdown(f"This is the {taught} map the Explore page shows for **{label}**.")


    def step_what_if() -> None:
        st.markdown(
            f"The map is a claim: the model looked there for **{label}**. Test it by hand: cover the region the map "
            "points at (drag across the photo, or press *Cover where the map is strongest*) and the model answers "
            f"again on the edited photo. If the map is right, **{label}** falls; cover somewhere else to compare."
        )
        st.latex(r"\Delta p^c = p^c_{\text{covered}} - p^c")  # short: it fits a phone's width
        st.caption(rf"$p^c$: the probability of {label} for the photo; $p^c_{{\text{{covered}}}}$: for the photo with "
                   "the region covered.")
        class_map = explanation_cache.explain_class(c.image.sha256, c.model_key, c.layer, method, target, photo, model)
        what_if_panel.show(c.image, c.model_key, model, c.layer, method, target, class_map, opacity=c.opacity,
                           colormap=c.colormap, key=WHAT_IF, heading=False, suggest=heatmap)


    STEP_PAGES = (step_input, step_features, step_gradients, step_weights, step_weighted_sum, step_relu, step_overlay,
                  step_what_if)


    def show_step(number: int) -> None:
        st.subheader(f"Step {number} of {len(STEPS)}: {STEPS[number - 1]}")
        STEP_PAGES[number - 1]()


    if show_all:
        for number in range(1, len(STEPS) + 1):
            show_step(number)
            st.divider()
    else:
        show_step(stepper("lesson_step", STEPS, "Step", key="lesson"))
