"""One module per page, each with a ``page()`` function that draws it; streamlit_app.py
lists them. Modules here that are not pages serve one page only (audit_results: Audit)."""
