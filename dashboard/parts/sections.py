"""A part of a page (a tab, a section) that fails alone: the rest of the page is drawn."""

from __future__ import annotations

import contextlib
import logging

import streamlit as st

import gradcam

from dashboard.safe_text import md

log = logging.getLogger(__name__)


@contextlib.contextmanager
def drawn_alone(what: str):
    """Draw a part of a page inside this block. The engine's refusal (a ValueError) ends
    the part with its own sentence; anything unforeseen with one sentence naming the part
    (the traceback goes to the server's log, not to the visitor). Streamlit's own stop and
    rerun pass through (they are not Exceptions), and so does a long job superseded by a
    newer one."""
    try:
        yield
    except gradcam.ExplanationStopped:
        raise
    except ValueError as refused:
        st.error(md(str(refused)))
    except Exception:
        log.exception("%s failed", what)
        st.error(f"{what} could not be drawn.")
