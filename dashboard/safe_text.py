"""User-supplied text (file names, labels) shown inside Streamlit's Markdown.

Streamlit renders Markdown (never raw HTML unless asked), but a label such as
"[click](javascript:...)" or "**x**" would still be formatted as a link or bold.
Escaping every Markdown character shows it exactly as the user wrote it.
"""

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")


def md(text: str) -> str:
    """``text`` escaped so Markdown shows it literally, on one line."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
