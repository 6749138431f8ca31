"""Where will it look? A classroom round: guess where the model looks, then see.

The photo is shown without its map and a class is named; the student moves the
crosshair (two sliders: they work with a finger and in AppTest) to where they think
the model looks, then reveals the map with their guess on it and a plain verdict
(gradcam.trust.pointing judges it). Rounds go over the sample photos, and the last
one asks the Clever Hans demo (the model that cheats) about a disc; ROUNDS is a
plain list, so a new photo or model is one more line. After the last round an end
screen gives the score, what it means, and Play again (a new score). The round travels
in the link (``round``), so a class can start on the same photo.
"""

from __future__ import annotations


import streamlit as st
from PIL import Image, ImageDraw

import gradcam
from dashboard.parts import shared_state
from dashboard.parts.image_picker import SAMPLES_DIR
from dashboard.parts.model_picker import load_builtin
from dashboard.safe_text import md
from dashboard.parts.shared_state import choices
from gradcam.trust import judge_guess
from gradcam.zoo import CLEVER_HANS, CLEVER_HANS_PHOTOS
from gradcam.intake import sha256
from dashboard.runtime import explanation_cache


# (photo, class the model is asked about, model); a class of None: the model's own top-1.
ROUNDS = [
    (SAMPLES_DIR / "cat-and-coffee.jpg", "espresso", gradcam.DEFAULT_MODEL),
    (SAMPLES_DIR / "cat-and-coffee.jpg", "tiger cat", gradcam.DEFAULT_MODEL),
    (SAMPLES_DIR / "coffee.jpg", "espresso", gradcam.DEFAULT_MODEL),
    (SAMPLES_DIR / "astronaut.jpg", None, gradcam.DEFAULT_MODEL),
    (SAMPLES_DIR / "rocket.jpg", None, gradcam.DEFAULT_MODEL),
    # The model that cheats (see the Audit page): the disc is plain to see, but where does it look?
    (CLEVER_HANS_PHOTOS / "disc" / "disc-01.jpg", "disc", CLEVER_HANS),
]
# Said before the guess: what the model is, never where it looks (naming the photographer gave the tag away).
HINTS = {CLEVER_HANS: " It is another model, trained to tell discs, squares and triangles apart."}
# What a round teaches once its map is shown.
LESSONS = {CLEVER_HANS: "It looks at the photographer's copyright tag, not at the disc: it learned a shortcut. "
                             "The **Audit a dataset** page catches it across all 72 of its photos."}
END = len(ROUNDS)  # the round number of the end screen, after the last round
SMALL = 480  # a photo smaller than this on its longer side is enlarged, so the mark can be placed with a finger


def crosshair(photo: Image.Image, x: float, y: float, colour=(230, 40, 40)) -> Image.Image:
    shown = photo.convert("RGB")
    if max(shown.size) < SMALL:
        scale = SMALL / max(shown.size)
        shown = shown.resize((round(shown.width * scale), round(shown.height * scale)), Image.BICUBIC)
    shown.thumbnail((640, 640))
    draw = ImageDraw.Draw(shown)
    width, height = shown.size
    cx, cy, r = x * width, y * height, max(6, min(width, height) // 25)
    line = max(2, min(width, height) // 120)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=line)
    draw.line((cx - 2 * r, cy, cx + 2 * r, cy), fill=colour, width=line)
    draw.line((cx, cy - 2 * r, cx, cy + 2 * r), fill=colour, width=line)
    return shown


def fresh_tally() -> dict:
    return {"played": 0, "hits": 0, "scored": set(), "hit_rounds": set()}


def play_again() -> None:
    """Back to round 1 with a new score and every guess back in the middle (a button's callback)."""
    st.session_state["quiz_round"] = 0
    st.session_state["quiz_tally"] = fresh_tally()
    for key in [k for k in st.session_state if k.startswith(("quiz_x_", "quiz_y_"))]:
        del st.session_state[key]
    st.session_state.pop("quiz_revealed", None)
    st.session_state.pop("quiz_guess", None)


def what_it_means(tally: dict) -> str:
    """The score in one sentence, and what it says about guessing where a model looks."""
    played, hits = tally["played"], tally["hits"]
    if played == 0:
        return ("No round was revealed, so there is nothing to score: press **Reveal the map** in a round to see where "
                "the model looked.")
    skipped = len(ROUNDS) - played
    score = f"Your guess landed inside the map's strongest region in **{hits} of {played}** rounds" + (
        f" you revealed ({skipped} skipped without revealing)." if skipped else ".")
    share = hits / played
    if share >= 0.8:
        meaning = "Where you would look is mostly where these models look."
    elif share >= 0.4:
        meaning = ("These models often look where a person would, but not always: a map is worth checking, not "
                   "assuming.")
    else:
        meaning = ("These models often look where a person would not expect: that is what explanations are for. A "
                   "right answer does not mean the model looked at the right thing.")
    last = len(ROUNDS) - 1
    if last in tally["scored"]:
        # The cheating model's round is the lesson either way: say which way it went.
        meaning += (" In the last round you found the Clever Hans model's shortcut: it looks at the copyright tag."
                    if last in tally.get("hit_rounds", ()) else
                    " In the last round the model looked at a copyright tag, not at the disc: it was right for the "
                    "wrong reason, and only the map showed it.")
    return f"{score} {meaning}"


def end_screen(c) -> None:
    """After the last round: the score, what it means, and Play again."""
    tally = st.session_state.get("quiz_tally") or fresh_tally()
    st.subheader("The end")
    st.markdown(what_it_means(tally))
    st.caption("A guess counts when it lands where the map is at least half of its peak (the pointing game). Each "
               "round counts once, at its first reveal.")
    st.button("Play again", key="quiz_again", type="primary", on_click=play_again,
              help="Back to round 1 with a new score.")
    top1 = gradcam.predict(c.model, c.image.image, top=1)[0].index
    shared_state.write_url(c, top1, {"round": None})


def page() -> None:
    """The Where will it look? page: guess where the model looks, then see."""
    st.set_page_config(page_title="Where will it look? - Grad-CAM Explorer", page_icon=":fire:", layout="wide")
    c = choices()
    changes = shared_state.url_changes()
    if "round" in changes:
        try:
            linked = int(changes["round"] or 1) - 1
        except ValueError:
            linked = 0
        st.session_state["quiz_round"] = linked if 0 <= linked < len(ROUNDS) else 0  # no such round: the first
    number = min(max(int(st.session_state.get("quiz_round", 0)), 0), END)
    tally = st.session_state.setdefault("quiz_tally", fresh_tally())

    st.title("Where will it look?")
    if number == END:
        end_screen(c)
        return
    photo_path, asked, model_name = ROUNDS[number]
    data = photo_path.read_bytes()
    photo = explanation_cache.display_image(sha256(data), data)
    model = load_builtin(model_name)
    layer = gradcam.default_layer(model).name
    target = model.labels.index(asked) if asked else gradcam.predict(model, photo, top=1)[0].index
    st.markdown(f"Round {number + 1} of {len(ROUNDS)}. {md(model_name)} is asked about "
                f"**{md(model.labels[target])}**.{HINTS.get(model_name, '')} Where in the photo does it look? "
                "Move the red mark, then reveal.")

    controls, picture = st.columns([1, 1.6])
    with controls:
        revealed = st.session_state.get("quiz_revealed") == number
        # Once the map is shown the guess is fixed: moving it then would be no guess.
        x = st.slider("Across (%)", 0, 100, 50, key=f"quiz_x_{number}", disabled=revealed) / 100
        y = st.slider("Down (%)", 0, 100, 50, key=f"quiz_y_{number}", disabled=revealed) / 100
        if st.button("Reveal the map", key="quiz_reveal", type="primary", disabled=revealed, width="stretch"):
            st.session_state["quiz_revealed"] = number
            st.session_state["quiz_guess"] = (x, y)  # the guess as it was when the map was asked for
            st.rerun()  # again, so the guess's sliders are drawn fixed
        last = number == len(ROUNDS) - 1
        if st.button("See your score" if last else "Next round", key="quiz_next", width="stretch",
                     type="primary" if last and revealed else "secondary"):
            st.session_state["quiz_round"] = number + 1  # after the last round: END, the end screen
            st.session_state.pop("quiz_revealed", None)
            st.rerun()

    with picture:
        if not revealed:
            st.image(crosshair(photo, x, y), width="stretch", caption="Your guess: the red mark.")
        else:
            with st.spinner("Explaining..."):
                class_map = explanation_cache.explain_class(sha256(data), model_name, layer, "gradcam", target, photo, model)
            heatmap = class_map.heatmap
            x, y = st.session_state.get("quiz_guess", (x, y))
            verdict = judge_guess(heatmap, x, y)
            shown = crosshair(gradcam.overlay(photo, heatmap, 0.45, "jet"), x, y, colour=(255, 255, 255))
            st.image(crosshair(shown, *verdict.peak, colour=(0, 0, 0)), width="stretch", alt="Quiz map",
                     caption="White: your guess. Black: where the map is strongest.")
            if number not in tally["scored"]:  # each round counts once, at its first reveal
                tally["scored"].add(number)
                tally["played"] += 1
                tally["hits"] += verdict.hit
                if verdict.hit:
                    tally.setdefault("hit_rounds", set()).add(number)
            away = f"{100 * verdict.distance:.0f}% of the photo's diagonal from the strongest point"
            with controls:
                if verdict.hit:
                    st.success(f"Inside the map's strongest region ({away}).")
                else:
                    st.warning(f"Outside the map's strongest region: {away}.")
                if model_name in LESSONS:
                    st.markdown(LESSONS[model_name])

    st.caption(f"Score: {tally['hits']} of {tally['played']} rounds played inside the strongest region.")
    top1 = gradcam.predict(c.model, c.image.image, top=1)[0].index
    shared_state.write_url(c, top1, {"round": number + 1 if number else None})
