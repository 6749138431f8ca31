"""Grad-CAM Explorer's server: ``streamlit run explorer.py`` (the README's start command).

It serves the router, streamlit_app.py, as Streamlit's own ASGI app (``st.App``) with one
thing more: a start-up hook that runs as the server starts, before its first visitor.
The hook imports the library (TensorFlow with it) and calls ``boot()``, which starts the
image sandbox and, in a background thread, loads the default model and explains the
first sample into the very caches the pages read. By the time a browser has the page,
the first overlay is made or nearly so.

``streamlit run streamlit_app.py`` runs the same app without the hook: Streamlit runs
no app code until the first visitor's page runs, so there the warm-up starts only then,
and the first overlay waits for the imports, the model and the first map in a row.
"""

from __future__ import annotations

import asyncio
import contextlib

import streamlit as st


def start() -> None:
    """Boot the app before the server serves anyone: import what the warm-up needs (the library,
    TensorFlow with it) and call boot(). The pages themselves are imported by the first visitor's
    run, as with the plain command: the Live page's camera is a Streamlit component, and Streamlit
    registers a component only when its module is imported inside a page's run."""
    from dashboard.parts.image_picker import FIRST_SAMPLE  # dashboard/__init__ loads the SRTP binding first
    from dashboard.runtime.boot import boot

    boot(first_photo=FIRST_SAMPLE)


def open_browser_unless_headless() -> None:
    """What `streamlit run` does for a plain script, and not for an st.App: open the app in
    the desktop's browser (which waits for the server, already listening, to answer)."""
    from streamlit import cli_util, config
    from streamlit.web.server import server_util

    if not config.get_option("server.headless"):
        cli_util.open_browser(server_util.get_url(config.get_option("browser.serverAddress")))


@contextlib.asynccontextmanager
async def warm_start(_app):
    open_browser_unless_headless()
    await asyncio.to_thread(start)  # seconds of imports, off the event loop
    yield


app = st.App("streamlit_app.py", lifespan=warm_start)
