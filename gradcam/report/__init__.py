"""What leaves the engine for people: HTML and PDF reports (``content`` holds what both
show), and many photos' records, CSV and overlay archives (``batch``)."""

from .content import (
    MAX_EMBEDDED_SIDE, WHAT_IT_DOES_NOT_SHOW, WHAT_IT_SHOWS, ReportItem, file_stem, layer_fact, layer_phrase,
    library_versions, map_grid, no_evidence_notice, predictions_heading, resolution_fact, score_text, token_grid_of,
    what_the_colours_mean,
)
from .audit_report import (
    audit_csv, audit_html, cluster_picture, comparison_html, map_tile, mean_map_image, region_overlay,
)
from .batch import (
    FAITHFULNESS_ORDERS, FAITHFULNESS_STEPS, SORT_ORDERS, auc_caption, batch_report_items, explain_records,
    overlays_zip, predictions_csv, select, shared_concepts_of,
)
from .content import curves_picture, increase_text, sanity_picture, trust_lines, trust_sentences
from .html import report_html
from .pdf import report_pdf

__all__ = ["FAITHFULNESS_ORDERS", "FAITHFULNESS_STEPS", "SORT_ORDERS", "audit_csv", "audit_html", "auc_caption",
           "comparison_html", "map_tile", "batch_report_items", "cluster_picture", "curves_picture", "explain_records", "increase_text", "shared_concepts_of",
           "mean_map_image", "overlays_zip", "predictions_csv", "region_overlay", "sanity_picture", "select",
           "trust_lines", "trust_sentences",
           "MAX_EMBEDDED_SIDE", "WHAT_IT_DOES_NOT_SHOW", "WHAT_IT_SHOWS", "ReportItem", "file_stem",
           "layer_fact", "layer_phrase", "library_versions", "map_grid", "no_evidence_notice", "what_the_colours_mean", "predictions_heading", "report_html", "report_pdf", "resolution_fact", "score_text",
           "token_grid_of"]
