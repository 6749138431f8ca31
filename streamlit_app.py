"""Grad-CAM Explorer's entry point (`streamlit run streamlit_app.py`): the router alone.

It boots the app (dashboard.runtime.boot), lists the pages of dashboard/pages/ with
st.navigation under their own titles and the URL paths links use (/Compare,
/How_it_works, ...), draws the sidebar's page links, which carry the view, and runs
the page. The pages are functions, not files Streamlit discovers: a folder named
pages/ next to this file would run a page without this router when a link opens it.
"""

import importlib

import streamlit as st

from dashboard.parts.image_picker import FIRST_SAMPLE
from dashboard.parts.page_menu import close_sidebar_after_page_change, page_links
from dashboard.runtime.boot import boot, first_view_drawn, page_running, this_session_in_the_sandbox
from dashboard.runtime.clicks import forget_unanswered


def imported_when_run(name: str):
    """Page ``dashboard.pages.<name>``, imported when it first runs rather than when the router
    starts: a first visit to Explore need not import the Audit's charts or the Live page's
    camera (whose component registration walks every loaded module). On a cold start TensorFlow
    is importing beside the first run, and every module it imports costs double there."""

    def run() -> None:
        importlib.import_module(f"dashboard.pages.{name}").page()

    run.__name__ = name
    return run


PAGES = [
    st.Page(imported_when_run("explore"), title="Explore", icon=":material/search:", url_path="Explore", default=True),
    st.Page(imported_when_run("how_it_works"), title="How Grad-CAM works", icon=":material/school:",
            url_path="How_it_works"),
    st.Page(imported_when_run("compare"), title="Compare", icon=":material/compare:", url_path="Compare"),
    st.Page(imported_when_run("report"), title="Report", icon=":material/description:", url_path="Report"),
    st.Page(imported_when_run("batch"), title="Batch", icon=":material/photo_library:", url_path="Batch"),
    st.Page(imported_when_run("trust"), title="Can I trust it?", icon=":material/verified:", url_path="Trust"),
    st.Page(imported_when_run("quiz"), title="Where will it look?", icon=":material/quiz:", url_path="Quiz"),
    st.Page(imported_when_run("audit"), title="Audit a dataset", icon=":material/fact_check:", url_path="Audit"),
    st.Page(imported_when_run("live"), title="Live", icon=":material/videocam:", url_path="Live"),
]

boot(first_photo=FIRST_SAMPLE)  # the default model warms on the photo Explore opens on
st.set_page_config(page_title="Grad-CAM Explorer", page_icon=":fire:", layout="wide")
# Our own page list rather than Streamlit's: its links drop the address's query, so
# every page change added an entry without the view (Back then showed the same page,
# or lost the view); ours carry the view. Drawn at once (with the view as last written),
# then again after the page, which writes the view.
page = st.navigation(PAGES, position="hidden")
close_sidebar_after_page_change(page)
st.session_state["page_title"] = page.title  # whose own link keys write_url keeps
menu = st.sidebar.empty()
page_links(menu, PAGES)
try:
    with this_session_in_the_sandbox():  # one session's uploads wait behind its own, not everyone's
        page_running()  # a cold start's warm-up lets this run draw its first view before importing
        page.run()
finally:
    first_view_drawn()
    page_links(menu, PAGES)
forget_unanswered()  # only a run that went to its end: a click its page did not draw is dropped
