"""Drive the real dashboard: a `streamlit run` server on loopback and Debian's
Chromium through Playwright. Shared by the end-to-end tests and the browser benchmark."""
