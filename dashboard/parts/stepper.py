"""The presenter's stepper: one part of a page at a time, with Previous and Next.

How Grad-CAM works steps through its lesson and "Can I trust it?" through its
sections with it. The step lives in a plain session key (not a widget), so a
presenter who looks at another page comes back to the same step. Previous and Next
also answer the arrow keys: a presenter's clicker sends them.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st


def current_step(state_key: str, count: int) -> int:
    """The step shown (1 to ``count``), kept in ``st.session_state[state_key]``."""
    step = min(max(int(st.session_state.get(state_key, 1)), 1), count)
    st.session_state[state_key] = step
    return step


def _go(state_key: str, delta: int, count: int) -> None:
    st.session_state[state_key] = min(max(st.session_state.get(state_key, 1) + delta, 1), count)


def stepper(state_key: str, titles: Sequence[str], word: str, key: str) -> int:
    """Draw "Previous  ·  <word> n of N · title  ·  Next" and a progress bar; return n.
    ``key`` prefixes the buttons' keys (``<key>_previous``, ``<key>_next``)."""
    count = len(titles)
    step = current_step(state_key, count)
    back, where, forward = st.columns([1, 4, 1], vertical_alignment="center")
    back.button("Previous", key=f"{key}_previous", on_click=_go, args=(state_key, -1, count), disabled=step == 1,
                shortcut="Left", width="stretch")
    where.markdown(f"**{word} {step} of {count}** · {titles[step - 1]}", text_alignment="center")
    forward.button("Next", key=f"{key}_next", on_click=_go, args=(state_key, 1, count), disabled=step == count,
                   shortcut="Right", type="primary", width="stretch")
    st.progress(step / count)
    return step
