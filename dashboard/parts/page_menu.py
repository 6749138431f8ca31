"""The sidebar's list of pages, and closing the sidebar after a page change on a narrow screen."""

from __future__ import annotations

import json

import streamlit as st

# Streamlit closes its sidebar after a page link is tapped only when the browser's
# user agent says "phone"; in any other narrow window (a phone in desktop mode, a small
# tablet) the sidebar stayed over the new page. This closes it once per page change,
# below Streamlit's mobile width; same-page reruns (a slider in the sidebar) never do.
_CLOSE_SIDEBAR_AFTER_PAGE_CHANGE = """<script>
(() => {
  const page = %s;
  const previous = window.__gradcamPage;
  window.__gradcamPage = page;
  if (previous === undefined || previous === page || window.innerWidth > 768) return;
  const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
  if (close && close.getAttribute("aria-expanded") === "true") close.click();
})();
</script>"""


def close_sidebar_after_page_change(page: st.Page) -> None:
    with st.sidebar:  # our own fixed script; the only data in it is the page's own title, as JSON
        st.html(_CLOSE_SIDEBAR_AFTER_PAGE_CHANGE % json.dumps(page.title), unsafe_allow_javascript=True)


def page_links(where, pages: list) -> None:
    """The sidebar's list of pages, drawn into ``where`` (an st.empty). Each link carries
    the view (as each page last wrote it: shared_state.write_url), so a page change is one
    history entry that already holds it (Streamlit's own list drops the query: the new
    page then wrote its view as a second entry)."""
    own = st.session_state.get("link_own", {})
    shared = st.session_state.get("link_shared", {})
    with where.container():
        for page in pages:
            st.page_link(page, label=page.title, icon=page.icon, query_params={**shared, **own.get(page.title, {})})
        st.divider()
