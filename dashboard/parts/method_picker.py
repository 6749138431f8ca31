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
        parts.append(f"It takes a while: a progress bar counts the {chosen.progress_unit} done.")  # Occlusion: patch positions
    if chosen.kind == "pixel-gradient":
        parts.append("Shown at the network's input resolution, pixel by pixel.")
    if chosen.kind == "attention":
        parts.append("Made from every attention layer at once, on the patch grid: the layer choice does not apply.")
    parts.append(f"Paper: {chosen.paper}.")
    return " ".join(parts)


def describe(method: str) -> None:
    st.caption(note(method))
