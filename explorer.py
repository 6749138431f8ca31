"""Grad-CAM Explorer's server: ``streamlit run explorer.py`` (the README's start command).

It serves the router, streamlit_app.py, as Streamlit's own ASGI app (``st.App``) with one
thing more: a start-up hook that runs as the server starts. The hook starts a thread that
imports the library (TensorFlow with it) and calls ``boot()``, which starts the image sandbox
and loads the default model and explains the first sample into the very caches the pages
read. The server answers at once; a visitor who arrives later finds the first overlay made,
one who arrives at once sees the photo and pickers first (boot's warm-up lets a running page
draw them before it imports).

``streamlit run streamlit_app.py`` runs the same app without the hook: Streamlit runs
no app code until the first visitor's page runs, so there the warm-up starts only then.
"""

from __future__ import annotations

import contextlib
import threading

import streamlit as st


def start() -> None:
    """Boot the app as the server starts: import what the warm-up needs (the library,
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
    # Not awaited: awaiting it held every visitor back by the whole import (first photo 7.1 s
    # against 3.8 s for the router alone, quiet, 2 CPUs) and the first overlay came no sooner
    # (9.2 s against 9.0 s): the imports are one process's work under one interpreter lock,
    # whichever thread does them.
    threading.Thread(target=start, name="gradcam-boot", daemon=True).start()
    open_browser_unless_headless()
    yield


app = st.App("streamlit_app.py", lifespan=warm_start)
