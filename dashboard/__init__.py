"""The Streamlit dashboard: one wing beside the library, which it uses through public names only.

- ``pages/``: one module per page, each a ``page()`` function (streamlit_app.py lists them);
- ``parts/``: what several pages draw: pickers, panels, the box-drawing surface, the stepper;
- ``runtime/``: the caches around the engine, the explanation service switch, long jobs, boot();
- ``safe_text``: user text shown as literal Markdown, for all three.

The maths lives in ``gradcam``; nothing here computes a map.
"""
