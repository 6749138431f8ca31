"""Buttons whose click is kept until the page acts on it, even when a long job holds the page up.

Streamlit starts a new run at once when a button is clicked during a run (its "fast reruns"),
and the run it cuts short, when it stops at its next progress update, sets every button back
to "not clicked": in the new run too, which has not reached the button yet when a long job
comes first on the page. So "Run the sanity check", clicked while the Trust page ranked the
methods, was lost. A button's callback runs at the start of the new run, before that reset,
and what it writes to the session stays: the click is noted there, and the page takes it when
it draws the button (``button``). While a long job runs, its progress bar names the clicks
waiting for it (``waiting_note``).
"""

from __future__ import annotations

import streamlit as st

_WAITING = "_clicks_waiting"  # session key: {button key: label} of clicks not acted on yet


def _note(key: str, label: str) -> None:
    st.session_state.setdefault(_WAITING, {})[key] = label


def button(label: str, key: str, where=None, **options) -> bool:
    """``st.button`` (drawn in ``where``, a column or container, else the page) that returns True
    once for each click, in the run that reaches it, however many runs were cut short between."""
    (where or st).button(label, key=key, on_click=_note, args=(key, label), **options)
    return st.session_state.get(_WAITING, {}).pop(key, None) is not None


def waiting() -> list[str]:
    """The labels of the buttons clicked and not acted on yet, oldest first."""
    return list(st.session_state.get(_WAITING, {}).values())


def waiting_note() -> str:
    """What a progress bar adds while clicks wait for it: they run once it is done."""
    labels = waiting()
    if not labels:
        return ""
    names = " and ".join(f'"{label}"' for label in labels)
    return f" · then {names}, clicked meanwhile (queued: {'they run' if len(labels) > 1 else 'it runs'} once this is done)"


def forget_unanswered() -> None:
    """After a whole run of a page: clicks whose button this run did not draw (the page or view
    changed) are dropped, so no bar names them and no later run acts on an old click."""
    st.session_state.pop(_WAITING, None)
