"""What leaves the engine for people: HTML and PDF reports (``content`` holds what both
show), and many photos' records, CSV and overlay archives (``batch``)."""

from .content import (
    MAX_EMBEDDED_SIDE, WHAT_IT_DOES_NOT_SHOW, WHAT_IT_SHOWS, ReportItem, file_stem, library_versions,
    predictions_heading, resolution_fact, score_text, token_grid_of,
)
from .html import report_html
from .pdf import report_pdf

__all__ = ["MAX_EMBEDDED_SIDE", "WHAT_IT_DOES_NOT_SHOW", "WHAT_IT_SHOWS", "ReportItem", "file_stem",
           "library_versions", "predictions_heading", "report_html", "report_pdf", "resolution_fact", "score_text",
           "token_grid_of"]
