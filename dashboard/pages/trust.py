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
from dashboard.parts import trust_scores
from dashboard.safe_text import md
from dashboard.parts import shared_state
from dashboard.parts.layer_labels import breakable
from dashboard.parts.link_numbers import link_number
from dashboard.parts.sections import drawn_alone
from dashboard.parts.shared_state import choices
from dashboard.parts.stepper import current_step, stepper
from dashboard.runtime import clicks
from gradcam import report
from gradcam.engine import strongest_colour
from gradcam.report import increase_text
from gradcam.trust import BETTER, CANNOT_JUDGE, MASKED_PHOTO_SCORES, RANDOM_SEEDS, how_judged, judged_step, ranked


GUIDED = next((key for key, m in gradcam.METHODS.items() if m.known_sanity_failure and m.layer_free), None)
BASELINES = {"blur": "a blurred copy", "mean": "the photo's mean colour", "black": "black"}


def shown_number(value: float, digits: int = 3) -> float:
    return round(float(value), digits) + 0.0  # + 0.0: never "-0.000"


def say(judgement: str):
    """The box a verdict goes in: green only for a map that beat every baseline it was weighed against."""
    return st.success if judgement == BETTER else st.info if judgement == CANNOT_JUDGE else st.warning
ROWS = ("This map", "Random maps", "Centred blob")
STRIP_ITEM_WIDTH = 100  # pixels: a whole strip (7 maps for Lite0) in one row on a desktop, three to a row on a phone


def narrow_table(rows: dict[str, list], columns: list[str]) -> None:
    """A table whose cells wrap (st.table), scores as rows and the maps as columns: four short columns fit a
    390-pixel phone, where a wide dataframe scrolled sideways."""
    st.table(pd.DataFrame(rows, index=columns).T)


def metric_text(metric: gradcam.Metric, value, who: str) -> str:
    """One registry score as the tables print it: yes/no for Increase in Confidence, else its number."""
    if value is None:
        return "not run"
    if metric.higher == "yes":
        return increase_text(value, who)
    digits = len(metric.form.format(0.0).split(".")[-1])
    return metric.form.format(shown_number(value, digits))


def name_of(method: str) -> str:
    return gradcam.METHODS[method].display_name


def curve_chart(curves: dict[str, gradcam.Curve], deleting: bool) -> alt.Chart:
    rows = [{"fraction": f, "probability": p, "map": who}
            for who, curve in curves.items() for f, p in zip(curve.fractions, curve.scores)]
    return alt.Chart(pd.DataFrame(rows)).mark_line().encode(
        x=alt.X("fraction:Q", title="share of pixels " + ("deleted" if deleting else "inserted"),
                axis=alt.Axis(format="%")),
        y=alt.Y("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
        # Two to a row and never shortened: three in one row were cut at 390 px ("Centred blo").
        color=alt.Color("map:N", title=None, sort=list(ROWS),
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=0, symbolType="stroke")),
        strokeDash=alt.StrokeDash("map:N", sort=list(ROWS), legend=None),
    ).properties(height=240)


def sanity_strip(check: gradcam.SanityCheck, photo) -> None:
    """The map as the network is randomized from the top down, a similarity under each."""
    shown = [("Trained model", check.original_heatmap, "the original")]
    judged = judged_step(check.steps) if check.steps else -1
    # breakable: a narrow caption breaks a layer's name at an underscore, not mid-word.
    shown += [(f"random down to {breakable(step.randomized_down_to)}",
               step.heatmap,
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
    # Draws that disagree are no pass and no proof of failure either: a warning, not an error.
    {"passed": st.success, "not settled": st.warning}.get(check.outcome, st.error)(check.verdict)
    st.caption(how_judged(check))


def page() -> None:
    """The Can I trust it? page: faithfulness scores and the sanity check of the map shown."""
    st.set_page_config(page_title="Can I trust it? - Grad-CAM Explorer", page_icon=":fire:", layout="wide")
    c = choices()
    photo = c.image.image
    st.title("Can I trust this map?")
    chosen = gradcam.METHODS[c.method]
    # "layer top_activation" only for a method that uses one (Occlusion covers the photo itself).
    st.markdown(
        f"A heatmap is a claim: *these regions are why the model said this class*. Two standard tests check the claim "
        f"for **{md(c.image.name)}**: **{name_of(c.method)}** of **{md(c.model.name)}** "
        f"{md(report.layer_phrase(c.method, c.layer))}. Change the photo, model, layer, class or method on the "
        "Explore page."
    )

    with st.spinner("Explaining..."):
        top1 = gradcam.predict(c.model, photo, top=1)[0].index
    target = c.target if c.target is not None else top1
    if not chosen.class_specific:  # its map makes no claim about the class: say so before scoring it against one
        label = f"**{md(c.model.labels[target])}**"
        colour = strongest_colour("jet")  # this page's overlays are drawn in overlay()'s default colormap
        st.info(f"{report.what_the_colours_mean(c.method, colour, label)} The tests below still score it against "
                f"{label}: how well a map that ignores the class happens to point at what the model uses for it.")
    key = (c.image.sha256, c.model_key, c.layer, c.method, target)
    # A link opens the page as it was handed on: the baseline, the ranking and sanity checks already shown, and a
    # presenter's section.
    changes = shared_state.url_changes()
    if "baseline" in changes:
        st.session_state["trust_baseline"] = changes["baseline"] if changes["baseline"] in BASELINES else "blur"
    if "present" in changes:
        st.session_state["trust_present"] = changes["present"] == "1"
    if "section" in changes:
        st.session_state["trust_section"] = link_number(changes["section"]) or 1
    linked = {name: changes[name] == "1" for name in ("rank", "sanity", "guided") if name in changes}
    for name, state in (("sanity", "trust_sanity_for"), ("guided", "trust_guided_for")):
        if name in linked:
            st.session_state[state] = key if linked[name] else None

    # Drawn in both modes (a widget not drawn forgets its value): every faithfulness score below uses it.
    controls, toggle = st.columns([3, 1], vertical_alignment="bottom")
    with controls:
        baseline = st.segmented_control("Deleted pixels become", list(BASELINES), default="blur", key="trust_baseline",
                                        format_func=lambda b: BASELINES[b]) or "blur"
    presenting = toggle.toggle("Present", key="trust_present",
                               help="One section at a time, with Previous and Next (or the arrow keys), for a class.")
    rank_key = (c.image.sha256, c.model_key, c.layer, target, baseline)
    if "rank" in linked:
        st.session_state["trust_ranked"] = rank_key if linked["rank"] else None
    shown = trust_scores.shown_map(*key, photo, c.model)  # Explore's own map: Score-CAM on its budget, with progress


    def faithfulness_scores() -> gradcam.Faithfulness:
        trust_scores.scores_fit(c.model)  # a model too wide to score says so under the section's heading, before any pass
        with st.spinner(f"Scoring the map against random maps and a centred blob ({trust_scores.STEPS} steps each way, "
                        "batched)..."):
            return trust_scores.scores(*key, baseline, photo, c.model, shown)


    def section_faithfulness() -> None:
        st.header("Faithfulness: does the map point at what the model uses?")
        st.caption(
            "Deletion removes the pixels the map ranks highest first and watches the class's probability fall; "
            "insertion adds them first to a blurred photo and watches it rise. A faithful map makes the fall steep and "
            "the rise quick, more than random maps do (Petsiuk et al., RISE, BMVC 2018)."
        )
        scores = faithfulness_scores()
        say(scores.judgement)(scores.verdict)
        left, right = st.columns(2)
        with left:
            st.markdown(f"**Deletion** of {md(scores.label)}: the lower the area under the curve, the better")
            st.altair_chart(curve_chart({
                "This map": scores.deletion, "Random maps": scores.random.deletion, "Centred blob": scores.blob.deletion,
            }, deleting=True), width="stretch")
            st.caption("What the network sees while deleting, most important pixels first:")
            frames = trust_scores.deletion_preview(*key, baseline, photo, c.model, shown)
            # A row of fixed-width pictures: st.columns stacked three full-width photos on a phone.
            with st.container(horizontal=True, gap="small"):
                for fraction, frame in zip(trust_scores.PREVIEW_FRACTIONS, frames):
                    with st.container(width=STRIP_ITEM_WIDTH, gap="xsmall"):
                        st.image(frame, caption=f"{fraction:.0%} deleted", width="stretch")
        with right:
            st.markdown(f"**Insertion** of {md(scores.label)}: the higher the area under the curve, the better")
            st.altair_chart(curve_chart({
                "This map": scores.insertion, "Random maps": scores.random.insertion,
                "Centred blob": scores.blob.insertion,
            }, deleting=False), width="stretch")


    def section_scores() -> None:
        scores = faithfulness_scores()
        st.subheader("The scores, each next to the same score for random maps and a centred blob")
        every = (scores, scores.random, scores.blob)
        # Every score of the metrics registry that this table's run computed (ROAD's below).
        narrow_table({metric.title: [metric_text(metric, s.value(key), who)
                                     for s, who in zip(every, ("map", "random", "blob"))]
                      for key, metric in gradcam.METRICS.items() if scores.value(key) is not None}, list(ROWS))
        st.caption(
            f"Random maps: the mean of {RANDOM_SEEDS} maps of random values at the layer's "
            "resolution. Centred blob: a map that only says *the middle*, hard to beat on well-framed photos."
        )
        # Beside the two scores a random map can win, what they reward (the reports' words).
        st.caption(f"{MASKED_PHOTO_SCORES} (Chattopadhyay et al., Grad-CAM++, WACV 2018.)")


    def section_road() -> None:
        st.subheader("ROAD: removal without leaking the map's shape")
        st.caption(
            "Deleting pixels leaves a hole shaped like the map, which a network can notice; ROAD fills removed pixels "
            "from their neighbours plus noise, then compares removing the most and the least relevant pixels first (10 "
            "to 90%). Higher combined scores are better (Rong et al., ROAD, ICML 2022)."
        )
        with st.spinner("ROAD: imputing removed pixels (18 sparse solves per map)..."):
            roads = trust_scores.road(*key, photo, c.model, shown)
        every = (roads.road, roads.random.road, roads.blob.road)
        arcc = gradcam.METRICS["arcc"]
        scored = (roads, roads.random, roads.blob)
        narrow_table({
            "ROAD combined (higher is better)": [f"{shown_number(r.combined):.3f}" for r in every],
            **({arcc.title: [metric_text(arcc, s.arcc, "map") for s in scored]} if roads.arcc is not None else {}),
            "most relevant removed first (mean change)": [f"{shown_number(r.most_relevant_first.mean()):.3f}"
                                                          for r in every],
            "least relevant removed first (mean change)": [f"{shown_number(r.least_relevant_first.mean()):.3f}"
                                                           for r in every],
        }, ["This map", "A random map", "Centred blob"])


    def section_ranking() -> None:
        st.subheader("Which method should I believe here?")
        st.caption(f"What this ranks: **faithfulness to this photo** only. Every method's map of "
                   f"{md(c.model.labels[target])} at this layer (the map Explore shows), scored like the map above: "
                   f"deleted pixels become {BASELINES[baseline]}, {trust_scores.STEPS} steps each way, ranked by insertion AUC "
                   "minus deletion AUC, with random maps as one more row. A method below the random row is no better "
                   "than guessing on this photo. It does **not** say whether a map depends on the model: a method can "
                   "point at the right pixels and still fail the sanity check below, so the last column says what is "
                   "known (Adebayo et al., NeurIPS 2018) or what this session's sanity check found.")
        if not (clicks.button("Rank every method", key="trust_rank") or st.session_state.get("trust_ranked") == rank_key):
            return
        st.session_state["trust_ranked"] = rank_key
        methods = gradcam.methods_for(c.model)
        bar = st.progress(0.0, text="Scoring each method...")
        rows = []
        for done, method in enumerate(methods):
            bar.progress(done / (len(methods) + 1),
                         text=f"Scoring {name_of(method)} ({done + 1} of {len(methods)})..." + clicks.waiting_note())
            method_map = trust_scores.shown_map(c.image.sha256, c.model_key, c.layer, method, target, photo, c.model)
            rows.append(trust_scores.method_score(c.image.sha256, c.model_key, c.layer, method, target, baseline, trust_scores.STEPS,
                                           photo, c.model, method_map))
        bar.progress(len(methods) / (len(methods) + 1), text="Scoring random maps..." + clicks.waiting_note())
        rows = ranked([*rows, trust_scores.random_score(c.image.sha256, c.model_key, c.layer, target, baseline, trust_scores.STEPS,
                                                 photo, c.model)])
        bar.empty()
        sanity_key = (c.image.sha256, c.model_key, c.layer, target)
        if st.session_state.get("trust_sanity_for") == key:  # asked for below: its result belongs in this table too
            trust_scores.sanity(*key, photo, c.model)
        # Every row at once, the random one too, in cells that wrap on a phone.
        st.table(pd.DataFrame({
            "method": [("➜ " if row.method == c.method else "") + row.name for row in rows],
            "insertion - deletion": [f"{shown_number(row.score):.3f}" for row in rows],
            # One column for both AUCs: five columns did not fit a 390-pixel phone.
            "deletion / insertion AUC": [f"{shown_number(row.deletion_auc):.3f} / {shown_number(row.insertion_auc):.3f}"
                                         for row in rows],
            "sanity check": ["(a baseline)" if row.method == "random" else trust_scores.sanity_mark(sanity_key, row.method)
                             for row in rows],
        }, index=range(1, len(rows) + 1)))
        failing = [gradcam.METHODS[row.method] for row in rows if row.method != "random"
                   and gradcam.METHODS[row.method].known_sanity_failure]
        findings = {}  # one sentence per finding, naming every method it is about
        for m in failing:
            findings.setdefault(m.known_sanity_failure, []).append(m.display_name)
        for finding, names in findings.items():
            st.warning(f"Known to fail the sanity check: {' and '.join(names)}. {finding}. A high place in this "
                       "ranking does not make such a map an explanation of the model.")


    def section_sanity() -> None:
        st.header("Sanity check: does the map depend on what the model learned?")
        st.caption(
            "The model's learned weights are replaced by random ones, stage by stage from the top of the network down, "
            "and the map is recomputed each time: a map that explains the model must change, one that stays the same "
            "shows the photo's edges whatever the model (Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS "
            "2018). It runs on a copy of the model; nobody else's explanations are affected."
        )
        if not (clicks.button("Run the sanity check", key="trust_sanity", type="primary")
                or st.session_state.get("trust_sanity_for") == key):
            return
        st.session_state["trust_sanity_for"] = key
        with st.spinner("Randomizing a copy of the network stage by stage, one map per stage..."):
            check = trust_scores.sanity(*key, photo, c.model)
        trust_scores.remember_sanity(key)  # the Report page carries its verdict
        st.markdown(f"**{name_of(c.method)}**")
        sanity_strip(check, photo)
        if GUIDED is None or c.method == GUIDED:
            return
        if clicks.button(f"Compare with {name_of(GUIDED)}, a method known to fail", key="trust_guided") or \
                st.session_state.get("trust_guided_for") == key:
            st.session_state["trust_guided_for"] = key
            with st.spinner(f"The same test for {name_of(GUIDED)}..."):
                guided = trust_scores.sanity(c.image.sha256, c.model_key, c.layer, GUIDED, target, photo, c.model)
            trust_scores.remember_sanity((*key[:3], GUIDED, target))
            st.markdown(f"**{name_of(GUIDED)}**, the same photo, class and randomized weights")
            sanity_strip(guided, photo)


    SECTIONS = (("Faithfulness: the verdict and the curves", section_faithfulness),
                ("The scores next to random maps and a centred blob", section_scores),
                ("ROAD", section_road),
                ("Which method should I believe here?", section_ranking),
                ("The sanity check", section_sanity))


    titles = [title for title, _ in SECTIONS]
    section = current_step("trust_section", len(SECTIONS))
    if presenting:  # like How Grad-CAM works: one section on the screen, the arrow keys of a presenter's clicker
        section = stepper("trust_section", titles, "Section", key="trust")
        shown_sections = [SECTIONS[section - 1]]
    else:
        shown_sections = SECTIONS
    for title, draw in shown_sections:
        with drawn_alone(f"The section \"{title}\""):  # one section that fails leaves the others standing
            draw()

    # The address says what this view shows, so a link (or a reload) opens it the same way.
    shared_state.write_url(c, top1, {
        "baseline": baseline if baseline != "blur" else None,
        "rank": 1 if st.session_state.get("trust_ranked") == rank_key else None,
        "sanity": 1 if st.session_state.get("trust_sanity_for") == key else None,
        "guided": 1 if st.session_state.get("trust_guided_for") == key else None,
        "present": 1 if presenting else None,
        "section": section if presenting and section != 1 else None,
    })
