"""What the method picker says: every method's one line, and a note on the chosen one."""

from __future__ import annotations

import streamlit as st

import gradcam
from gradcam.engine import SCORECAM_DEFAULT_CHANNELS

# The picker's tooltip: every method with its one-line description (Markdown list).
HELP = "\n".join(f"- **{m.display_name}**: {m.description}" for m in gradcam.METHODS.values())


def note(method: str) -> str:
    """One or two sentences on what the chosen method's map means here."""
    chosen = gradcam.METHODS[method]
    parts = [chosen.description]
    if not chosen.class_specific:
        parts.append("Class-agnostic: the map is the same whichever class you pick.")
    if chosen.channel_budget:
        parts.append(f"Here it uses the {SCORECAM_DEFAULT_CHANNELS} feature maps with the largest variance (Faster "
                     f"{chosen.display_name}), which agree closely with all of them; the library and CLI use every one.")
    elif chosen.slow:
        parts.append(f"It takes a while: a progress bar counts the {chosen.progress_unit} done.")
    if chosen.kind == "pixel-gradient":
        parts.append("Shown at the network's input resolution, pixel by pixel.")
    if chosen.kind == "attention":
        parts.append("Made from every attention layer at once, on the patch grid: the layer choice does not apply.")
    parts.append(f"Paper: {chosen.paper}.")
    return " ".join(parts)


def describe(method: str) -> None:
    st.caption(note(method))


def planned_passes(model: gradcam.Model, method: str, layer: str) -> int | None:
    """How many passes the method runs on this model from this layer, for the methods that
    run another method many times (SESS, RefineCAM); None for the others (one pass, or a
    progress bar of feature maps) and where the engine will refuse the request anyway."""
    if gradcam.METHODS[method].kind != "combined":
        return None
    try:
        return gradcam.planned_passes(model, method, layer)
    except ValueError:  # the explanation itself says why, in its own sentence
        return None


def passes_text(count: int) -> str:
    """"1 pass", "127 passes"."""
    return f"{count} pass" if count == 1 else f"{count} passes"


def option_label(model: gradcam.Model, layer: str):
    """The picker's format_func once the model is known: "SESS (127 passes on this model)"."""
    def label(method: str) -> str:
        count = planned_passes(model, method, layer)
        name = gradcam.METHODS[method].display_name
        return name if count is None else f"{name} ({passes_text(count)} on this model)"

    return label


def passes_note(model: gradcam.Model, method: str, layer: str) -> str | None:
    """Said before the method runs: "SESS runs 127 passes on this model, each about one Grad-CAM pass"."""
    count = planned_passes(model, method, layer)
    if count is None:
        return None
    chosen = gradcam.METHODS[method]
    base = gradcam.METHODS[chosen.combines].display_name
    where = " from this layer" if chosen.fuses == "layers" else ""
    return f"{chosen.display_name} runs {passes_text(count)} on this model{where}, each about one {base} pass"


def show_passes(slot, model: gradcam.Model, method: str, layer: str) -> None:
    """The pass count under the picker (the picker is drawn before the model loads)."""
    text = passes_note(model, method, layer)
    if text:
        slot.caption(f"{text}; a progress bar counts them.")
