"""A photo a person draws a box on, with a mouse or a finger.

Our own small Streamlit component (Components v2: it renders in the page itself,
not in an iframe, from the inline code below), rather than a drawing package:
the drawing packages draw on a canvas of a fixed width in pixels, which is wider
than a phone held upright (390 px) or small on a desktop, while this is the photo
at the column's width. Pointer events serve the mouse, a pen and a finger alike;
``touch-action: none`` keeps a finger's drag on the photo from scrolling the page
(the page scrolls from anywhere else). The box shows while it is dragged, and at
the end of the stroke it is sent to Python once, as fractions of the photo
(``x0, y0, x1, y1``), which is what ``gradcam.what_if`` takes. Nothing is loaded
from anywhere: the photo travels as a data URL.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import streamlit as st
from PIL import Image

SMALLEST = 0.02  # a stroke narrower or shorter than this (fractions of the photo) is a tap, not a box

_HTML = '<div class="box-draw"><img draggable="false"><div class="band" hidden></div></div>'
_CSS = """
.box-draw { position: relative; width: 100%; touch-action: none; user-select: none; -webkit-user-select: none;
            cursor: crosshair; line-height: 0; }
.box-draw img { width: 100%; height: auto; display: block; pointer-events: none; }
.band { position: absolute; border: 3px dashed rgb(230, 40, 40); background: rgba(230, 40, 40, 0.18);
        box-sizing: border-box; pointer-events: none; }
.band[hidden] { display: none; }
"""
# Called on every render with the new data; returns the cleanup Streamlit runs before the next one.
_JS = f"""
export default function ({{ parentElement, data, setTriggerValue }}) {{
  const root = parentElement.querySelector(".box-draw");
  const img = root.querySelector("img");
  const band = root.querySelector(".band");
  if (img.getAttribute("src") !== data.src) {{
    img.setAttribute("src", data.src);
    band.hidden = true;  // the new photo shows the box drawn (or not): the band has done its work
  }}
  img.alt = data.alt;
  root.setAttribute("role", "img");
  root.setAttribute("aria-label", data.label);
  let start = null;
  const clamp = (v) => Math.min(Math.max(v, 0), 1);
  const at = (event) => {{
    const r = img.getBoundingClientRect();
    return [clamp((event.clientX - r.left) / r.width), clamp((event.clientY - r.top) / r.height)];
  }};
  const outline = (a, b) => {{
    band.style.left = 100 * Math.min(a[0], b[0]) + "%";
    band.style.top = 100 * Math.min(a[1], b[1]) + "%";
    band.style.width = 100 * Math.abs(a[0] - b[0]) + "%";
    band.style.height = 100 * Math.abs(a[1] - b[1]) + "%";
  }};
  const down = (event) => {{
    if (event.button > 0 || data.disabled) return;
    start = at(event);
    root.setPointerCapture(event.pointerId);
    outline(start, start);
    band.hidden = false;
    event.preventDefault();
  }};
  const move = (event) => {{ if (start) outline(start, at(event)); }};
  const up = (event) => {{
    if (!start) return;
    const end = at(event), first = start;
    start = null;
    const box = [Math.min(first[0], end[0]), Math.min(first[1], end[1]),
                 Math.max(first[0], end[0]), Math.max(first[1], end[1])];
    if (box[2] - box[0] < {SMALLEST} || box[3] - box[1] < {SMALLEST}) {{ band.hidden = true; return; }}
    setTriggerValue("box", box);
  }};
  const cancel = () => {{ start = null; band.hidden = true; }};
  root.addEventListener("pointerdown", down);
  root.addEventListener("pointermove", move);
  root.addEventListener("pointerup", up);
  root.addEventListener("pointercancel", cancel);
  return () => {{
    root.removeEventListener("pointerdown", down);
    root.removeEventListener("pointermove", move);
    root.removeEventListener("pointerup", up);
    root.removeEventListener("pointercancel", cancel);
  }};
}}
"""

_component = st.components.v2.component("gradcam_box_drawing", html=_HTML, css=_CSS, js=_JS)


def _data_url(photo: Image.Image) -> str:
    buffer = io.BytesIO()
    photo.convert("RGB").save(buffer, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def drawn_box(key: str) -> tuple[float, float, float, float] | None:
    """The box the last stroke drew (in an ``on_draw`` callback), as fractions, else None."""
    result = st.session_state.get(key)
    box = result.get("box") if hasattr(result, "get") else None
    try:
        x0, y0, x1, y1 = (min(max(float(v), 0.0), 1.0) for v in box)
    except (TypeError, ValueError):  # nothing drawn, or not four numbers: the browser is not trusted either
        return None
    if x1 - x0 < SMALLEST or y1 - y0 < SMALLEST:
        return None
    return x0, y0, x1, y1


def draw_box(photo: Image.Image, *, key: str, on_draw: Callable[[], None], alt: str, label: str,
             disabled: bool = False) -> None:
    """Show ``photo`` at the column's width; a stroke over it calls ``on_draw`` (before the
    rerun), where ``drawn_box(key)`` is the box."""
    _component(key=key, data={"src": _data_url(photo), "alt": alt, "label": label, "disabled": disabled},
               on_box_change=on_draw, width="stretch")
