"""The Streamlit dashboard: one wing beside the library, which it uses through public names only.

- ``pages/``: one module per page, each a ``page()`` function (streamlit_app.py lists them);
- ``parts/``: what several pages draw: pickers, panels, the box-drawing surface, the stepper;
- ``runtime/``: the caches around the engine, the explanation service switch, long jobs, boot();
- ``safe_text``: user text shown as literal Markdown, for all three.

The maths lives in ``gradcam``; nothing here computes a map.
"""

# streamlit-webrtc's SRTP binding (pylibsrtp, under aiortc; the Live page) crashes the process
# with a segfault when it loads after TensorFlow (`import tensorflow; import pylibsrtp` exits 139,
# pylibsrtp 0.12 and 1.0 alike). Every dashboard module reaches TensorFlow through gradcam, so the
# binding loads here, before any of them.
try:
    import pylibsrtp  # noqa: F401
except ImportError:  # no streamlit-webrtc: the Live page says what to install
    pass
