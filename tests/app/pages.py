"""Open the dashboard's pages in AppTest: one page alone (as a link that opens it runs it),
or the whole app through its router (streamlit_app.py) and then another page."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
ROUTER = str(ROOT / "streamlit_app.py")

# The URL path of each page (the router's st.Page url_path): module name -> path.
URL_PATHS = {"explore": "Explore", "how_it_works": "How_it_works", "compare": "Compare", "report": "Report",
             "batch": "Batch", "trust": "Trust", "quiz": "Quiz", "audit": "Audit", "live": "Live"}


def page_app(name: str, default_timeout: float = 180) -> AppTest:
    """An AppTest of one page, ``dashboard.pages.<name>.page()``, without the router (boot() as the router does)."""
    script = ("from dashboard.runtime.boot import boot\n"
              "boot()\n"
              f"from dashboard.pages.{name} import page\n"
              "page()\n")
    return AppTest.from_string(script, default_timeout=default_timeout)


def switch_to(at: AppTest, name: str) -> AppTest:
    """Go to another page of the router's app (``at`` was made from ROUTER and has run once).
    AppTest.switch_page knows pages by file only, and ours are functions: this asks for the
    page the way a link does, by its URL path's hash (what st.navigation matches on)."""
    from streamlit.util import calc_hash

    at._page_hash = calc_hash(URL_PATHS[name])
    return at
