"""An engine's or a service's refusal ends the page with its one sentence."""

from __future__ import annotations

import contextlib

import streamlit as st

import gradcam

from dashboard.safe_text import md


@contextlib.contextmanager
def refusals_said(url: str | None = None):
    """An explanation over the memory budget, or a service that is down or refuses a
    request, ends the page with its sentence (the choices stay, so another model, method
    or class can be picked); other in-process errors pass as before."""
    try:
        yield
    except gradcam.ExplanationTooCostly as error:
        st.error(md(str(error)))
        st.stop()
    except ValueError as error:
        if not url:
            raise
        st.error(md(str(error)))  # the sentence may quote a request's text: shown as written
        st.stop()
