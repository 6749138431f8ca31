"""Can I trust it? The current map put to the field's two standard tests.

Faithfulness (does removing the red regions lower the score faster than removing
random ones?) and the sanity check (does the map change when the model's learned
weights are replaced by random ones?). A thin page: the engine scores
(gradcam.faithfulness, gradcam.sanity_check, gradcam.rank_methods) and
dashboard.trust caches them per (image hash, model, layer, method, class).
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

import gradcam
from dashboard import trust
from dashboard.safe_text import md
from dashboard import shared_state
from dashboard.shared_state import choices
from gradcam.report.content import increase_text
from gradcam.trust.faithfulness import BETTER, CANNOT_JUDGE, RANDOM_SEEDS, ranked
from gradcam.trust.sanity import how_judged, judged_step

st.set_page_config(page_title="Can I trust it? - Grad-CAM Explorer", page_icon=":fire:", layout="wide")

GUIDED = next((key for key, m in gradcam.METHODS.items() if m.known_sanity_failure and m.layer_free), None)
BASELINES = {"blur": "a blurred copy", "mean": "the photo's mean colour", "black": "black"}


def shown_number(value: float, digits: int = 3) -> float:
    return round(float(value), digits) + 0.0  # + 0.0: never "-0.000"


def say(judgement: str):
    """The box a verdict goes in: green only for a map that beat every baseline it was weighed against."""
    return st.success if judgement == BETTER else st.info if judgement == CANNOT_JUDGE else st.warning
ROWS = ("This map", "Random maps", "Centred blob")
STRIP_ITEM_WIDTH = 118  # pixels: a whole strip (7 maps for Lite0) in one row on a desktop, two to a row on a phone


def name_of(method: str) -> str:
    return gradcam.METHODS[method].display_name


def curve_chart(curves: dict[str, gradcam.Curve], deleting: bool) -> alt.Chart:
    rows = [{"fraction": f, "probability": p, "map": who}
            for who, curve in curves.items() for f, p in zip(curve.fractions, curve.scores)]
    return alt.Chart(pd.DataFrame(rows)).mark_line().encode(
        x=alt.X("fraction:Q", title="share of pixels " + ("deleted" if deleting else "inserted"),
                axis=alt.Axis(format="%")),
        y=alt.Y("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("map:N", title=None, sort=list(ROWS), legend=alt.Legend(orient="bottom")),
        strokeDash=alt.StrokeDash("map:N", sort=list(ROWS), legend=None),
    ).properties(height=240)


def sanity_strip(check: gradcam.SanityCheck, photo) -> None:
    """The map as the network is randomized from the top down, a similarity under each."""
    shown = [("Trained model", check.original_heatmap, "the original")]
    judged = judged_step(check.steps) if check.steps else -1
    shown += [(f"random down to {md(step.randomized_down_to)}", step.heatmap,
               f"rank correlation {step.rank_correlation:.2f} · SSIM {step.ssim:.2f}"
               + ("  \n**judged here**" if n == judged else "")) for n, step in enumerate(check.steps)]
    # A row that wraps, of fixed-width items: st.columns would stack every step full width on a phone.
    with st.container(horizontal=True, gap="small"):
        for title, heatmap, caption in shown:
            with st.container(width=STRIP_ITEM_WIDTH, gap="xsmall"):
                st.image(gradcam.overlay(photo, heatmap, 0.5), caption=f"**{title}**  \n{caption}", width="stretch")
    if not check.judged:
        st.info(check.verdict)
        return
    (st.success if check.passed else st.error)(check.verdict)
    st.caption(how_judged(check))


c = choices()
photo = c.image.image
st.title("Can I trust this map?")
st.markdown(
    f"A heatmap is a claim: *these regions are why the model said this class*. Two standard tests check the claim "
    f"for **{md(c.image.name)}**, **{md(c.model.name)}**, layer {md(c.layer)}, **{name_of(c.method)}**. "
    "Change the photo, model, layer, class or method on the Explore page."
)

with st.spinner("Explaining..."):
    top1 = gradcam.predict(c.model, photo, top=1)[0].index
target = c.target if c.target is not None else top1
key = (c.image.sha256, c.model_key, c.layer, c.method, target)
# A link opens the page as it was handed on: the baseline, and the ranking and sanity checks already shown.
changes = shared_state.url_changes()
if "baseline" in changes:
    st.session_state["trust_baseline"] = changes["baseline"] if changes["baseline"] in BASELINES else "blur"
linked = {name: changes[name] == "1" for name in ("rank", "sanity", "guided") if name in changes}
for name, state in (("sanity", "trust_sanity_for"), ("guided", "trust_guided_for")):
    if name in linked:
        st.session_state[state] = key if linked[name] else None

# --- faithfulness -------------------------------------------------------------------------
st.header("1. Faithfulness: does the map point at what the model uses?")
st.caption(
    "Deletion removes the pixels the map ranks highest first and watches the class's probability fall; insertion "
    "adds them first to a blurred photo and watches it rise. A faithful map makes the fall steep and the rise "
    "quick, more than random maps do (Petsiuk et al., RISE, BMVC 2018)."
)
baseline = st.segmented_control("Deleted pixels become", list(BASELINES), default="blur", key="trust_baseline",
                                format_func=lambda b: BASELINES[b]) or "blur"
shown = trust.shown_map(*key, photo, c.model)  # Explore's own map: Score-CAM on its budget, with progress
trust.scores_fit(c.model)  # a model too wide to score says so here, before any pass
with st.spinner(f"Scoring the map against random maps and a centred blob ({trust.STEPS} steps each way, "
                "batched)..."):
    scores = trust.scores(*key, baseline, photo, c.model, shown)
say(scores.judgement)(scores.verdict)

left, right = st.columns(2)
with left:
    st.markdown(f"**Deletion** of {md(scores.label)}: the lower the area under the curve, the better")
    st.altair_chart(curve_chart({
        "This map": scores.deletion, "Random maps": scores.random.deletion, "Centred blob": scores.blob.deletion,
    }, deleting=True), width="stretch")
    st.caption("What the network sees while deleting, most important pixels first:")
    frames = trust.deletion_preview(*key, baseline, photo, c.model, shown)
    for column, fraction, frame in zip(st.columns(len(frames)), trust.PREVIEW_FRACTIONS, frames):
        column.image(frame, caption=f"{fraction:.0%} deleted", width="stretch")
with right:
    st.markdown(f"**Insertion** of {md(scores.label)}: the higher the area under the curve, the better")
    st.altair_chart(curve_chart({
        "This map": scores.insertion, "Random maps": scores.random.insertion, "Centred blob": scores.blob.insertion,
    }, deleting=False), width="stretch")

st.subheader("The scores, each next to the same score for random maps and a centred blob")
every = (scores, scores.random, scores.blob)
table = {"": list(ROWS),
         "Deletion AUC (lower is better)": [shown_number(s.deletion.auc) for s in every],
         "Insertion AUC (higher is better)": [shown_number(s.insertion.auc) for s in every],
         "Average Drop % (lower is better)": [shown_number(s.average_drop, 1) for s in every],
         "Increase in Confidence (yes or no)": [increase_text(s.increase_in_confidence, who)
                                                for s, who in zip(every, ("map", "random", "blob"))]}
st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch",
             column_config={k: st.column_config.NumberColumn(format="%.3f") for k in list(table)[1:3]} | {
                 list(table)[3]: st.column_config.NumberColumn(format="%.1f")})
st.caption(
    f"Random maps: the mean of {RANDOM_SEEDS} maps of random values at the layer's "
    "resolution. Centred blob: a map that only says *the middle*, hard to beat on well-framed photos. Average Drop "
    "and Increase in Confidence score the photo multiplied by the map: how much of the class's probability the "
    "highlighted part alone keeps, and whether it even raises it (Chattopadhyay et al., Grad-CAM++, WACV 2018)."
)

st.subheader("ROAD: removal without leaking the map's shape")
st.caption(
    "Deleting pixels leaves a hole shaped like the map, which a network can notice; ROAD fills removed pixels from "
    "their neighbours plus noise, then compares removing the most and the least relevant pixels first (10 to 90%). "
    "Higher combined scores are better (Rong et al., ROAD, ICML 2022)."
)
with st.spinner("ROAD: imputing removed pixels (18 sparse solves per map)..."):
    roads = trust.road(*key, photo, c.model, shown)
road_rows = [("This map", roads.road), ("A random map", roads.random.road), ("Centred blob", roads.blob.road)]
st.dataframe(pd.DataFrame({
    "": [who for who, _ in road_rows],
    "ROAD combined (higher is better)": [shown_number(r.combined) for _, r in road_rows],
    "most relevant removed first (mean change)": [shown_number(r.most_relevant_first.mean()) for _, r in road_rows],
    "least relevant removed first (mean change)": [shown_number(r.least_relevant_first.mean())
                                                   for _, r in road_rows],
}), hide_index=True, width="stretch", column_config={
    k: st.column_config.NumberColumn(format="%.3f") for k in ("ROAD combined (higher is better)",
                                                              "most relevant removed first (mean change)",
                                                              "least relevant removed first (mean change)")})

st.subheader("Which method should I believe here?")
st.caption(f"What this ranks: **faithfulness to this photo** only. Every method's map of {md(scores.label)} at this "
           f"layer (the map Explore shows), scored like the map above: deleted pixels become "
           f"{BASELINES[baseline]}, {trust.STEPS} steps each way, ranked by insertion AUC minus deletion AUC, with "
           "random maps as one more row. A method below the random row is no better than guessing on this photo. "
           "It does **not** say whether a map depends on the model: a method can point at the right pixels and "
           "still fail the sanity check below, so the last column says what is known (Adebayo et al., NeurIPS "
           "2018) or what this session's sanity check found.")
rank_key = (c.image.sha256, c.model_key, c.layer, target, baseline)
if "rank" in linked:
    st.session_state["trust_ranked"] = rank_key if linked["rank"] else None
if st.button("Rank every method", key="trust_rank") or st.session_state.get("trust_ranked") == rank_key:
    st.session_state["trust_ranked"] = rank_key
    methods = gradcam.methods_for(c.model)
    bar = st.progress(0.0, text="Scoring each method...")
    rows = []
    for done, method in enumerate(methods):
        bar.progress(done / (len(methods) + 1), text=f"Scoring {name_of(method)} ({done + 1} of {len(methods)})...")
        method_map = trust.shown_map(c.image.sha256, c.model_key, c.layer, method, target, photo, c.model)
        rows.append(trust.method_score(c.image.sha256, c.model_key, c.layer, method, target, baseline, trust.STEPS,
                                       photo, c.model, method_map))
    bar.progress(len(methods) / (len(methods) + 1), text="Scoring random maps...")
    rows = ranked([*rows, trust.random_score(c.image.sha256, c.model_key, c.layer, target, baseline, trust.STEPS,
                                             photo, c.model)])
    bar.empty()
    sanity_key = (c.image.sha256, c.model_key, c.layer, target)
    if st.session_state.get("trust_sanity_for") == key:  # asked for below: its result belongs in this table too
        trust.sanity(*key, photo, c.model)
    st.dataframe(pd.DataFrame({
        "rank": range(1, len(rows) + 1),
        "method": [("➜ " if row.method == c.method else "") + row.name for row in rows],
        "insertion - deletion": [shown_number(row.score) for row in rows],
        "deletion AUC": [shown_number(row.deletion_auc) for row in rows],
        "insertion AUC": [shown_number(row.insertion_auc) for row in rows],
        "sanity check": ["(a baseline)" if row.method == "random" else trust.sanity_mark(sanity_key, row.method)
                         for row in rows],
    }), hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3,  # every row, the random one too
        column_config={k: st.column_config.NumberColumn(format="%.3f") for k in ("insertion - deletion",
                                                                                 "deletion AUC", "insertion AUC")})
    failing = [gradcam.METHODS[row.method] for row in rows if row.method != "random"
               and gradcam.METHODS[row.method].known_sanity_failure]
    findings = {}  # one sentence per finding, naming every method it is about
    for m in failing:
        findings.setdefault(m.known_sanity_failure, []).append(m.display_name)
    for finding, names in findings.items():
        st.warning(f"Known to fail the sanity check: {' and '.join(names)}. {finding}. A high place in this "
                   "ranking does not make such a map an explanation of the model.")

# --- sanity ---------------------------------------------------------------------------------
st.header("2. Sanity check: does the map depend on what the model learned?")
st.caption(
    "The model's learned weights are replaced by random ones, stage by stage from the top of the network down, and "
    "the map is recomputed each time: a map that explains the model must change, one that stays the same shows the "
    "photo's edges whatever the model (Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018). It runs on "
    "a copy of the model; nobody else's explanations are affected."
)
if st.button("Run the sanity check", key="trust_sanity", type="primary") or st.session_state.get(
        "trust_sanity_for") == key:
    st.session_state["trust_sanity_for"] = key
    with st.spinner("Randomizing a copy of the network stage by stage, one map per stage..."):
        check = trust.sanity(*key, photo, c.model)
    trust.remember_sanity(key)  # the Report page carries its verdict
    st.markdown(f"**{name_of(c.method)}**")
    sanity_strip(check, photo)
    if GUIDED is not None and c.method != GUIDED:
        if st.button(f"Compare with {name_of(GUIDED)}, a method known to fail", key="trust_guided") or \
                st.session_state.get("trust_guided_for") == key:
            st.session_state["trust_guided_for"] = key
            with st.spinner(f"The same test for {name_of(GUIDED)}..."):
                guided = trust.sanity(c.image.sha256, c.model_key, c.layer, GUIDED, target, photo, c.model)
            trust.remember_sanity((*key[:3], GUIDED, target))
            st.markdown(f"**{name_of(GUIDED)}**, the same photo, class and randomized weights")
            sanity_strip(guided, photo)

# The address says what this view shows, so a link (or a reload) opens it the same way.
shared_state.write_url(c, top1, {
    "baseline": baseline if baseline != "blur" else None,
    "rank": 1 if st.session_state.get("trust_ranked") == rank_key else None,
    "sanity": 1 if st.session_state.get("trust_sanity_for") == key else None,
    "guided": 1 if st.session_state.get("trust_guided_for") == key else None,
})
