"""One row per photo, the same in each "many photos" output: the CLI's summary.csv
(``gradcam explain FOLDER``), the Batch page's CSV and the Ray Parquet dataset
(``gradcam explain SOURCE --ray``). The columns have the same names and meaning in
all three, so a spreadsheet or a notebook that reads one reads the others:

- ``file``: the photo as it was given (a file name in a folder or an upload, the
  path or URI in a dataset);
- ``sha256``: the SHA-256 of the photo's bytes;
- ``top1_label``, ``top1_probability`` ... ``top5_*``: the model's top classes, most
  likely first (empty past the model's own number of classes);
- ``target``, ``target_label``, ``target_probability``: the class the map explains
  (the top-1 class unless one was asked for);
- ``layer``, ``method``: where and how the map was made;
- ``error``: empty, or the sentence saying why this photo has no map (a broken
  photo is a row, never a failed run).

Each output adds what only it has: the CLI the overlay's path, Batch the trust
scores when asked for, Parquet the map itself. Rows hold plain values (str, int,
float, None); the CSV writer here formats them, Parquet stores them as they are."""

from __future__ import annotations

import csv
import io
import numbers
import re
from typing import Iterable, Sequence

from ..intake.text import valid_text

TOP = 5
ROW_COLUMNS = ("file", "sha256",
               *(f"top{k}_{what}" for k in range(1, TOP + 1) for what in ("label", "probability")),
               "target", "target_label", "target_probability", "layer", "method", "error")


def result_row(*, file: str, sha256: str, layer: str, method: str, target: int, target_label: str,
               target_probability: float, predictions: Iterable[tuple[str, float]]) -> dict:
    """The row of an explained photo; ``predictions`` are (label, probability), most likely first."""
    row = dict.fromkeys(ROW_COLUMNS)
    row.update(file=file, sha256=sha256, layer=layer, method=method, target=int(target), target_label=target_label,
               target_probability=float(target_probability), error="")
    for k, (label, probability) in enumerate(list(predictions)[:TOP], 1):
        row[f"top{k}_label"], row[f"top{k}_probability"] = label, float(probability)
    return row


def explanation_row(explanation, *, file: str, sha256: str) -> dict:
    """The row of a ``gradcam.Explanation`` (its predictions are the model's top classes)."""
    return result_row(file=file, sha256=sha256, layer=explanation.layer, method=explanation.method,
                      target=explanation.target, target_label=explanation.label,
                      target_probability=explanation.probability,
                      predictions=[(p.label, p.probability) for p in explanation.predictions])


def error_row(error: str, *, file: str, sha256: str | None = None, layer: str | None = None,
              method: str | None = None) -> dict:
    """The row of a photo that has no map: ``error`` is the sentence."""
    row = dict.fromkeys(ROW_COLUMNS)
    row.update(file=file, sha256=sha256, layer=layer, method=method, error=str(error))
    return row


# --- CSV ---------------------------------------------------------------------------

# Spreadsheets (Excel, LibreOffice, Google Sheets) read a cell starting with one of
# these as a formula; file names and labels are user data, so they are kept as text.
# Quotes and spaces in front do not hide one from a reader that drops them.
_FORMULA_START = re.compile('(?:^|(?<=[\r\n]))(?=[" ]*[=+\\-@\t\r])')


def csv_cell(value) -> str:
    """A row's value as a CSV cell: nothing for None, probabilities to 6 decimals, text
    as valid Unicode and never a formula. Guarded at the start of the cell and after
    every line break inside it: an importer that splits cells at a bare CR (or does not
    honour quotes) must not find a formula there."""
    if value is None:
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):  # NumPy floats too
        return f"{value:.6f}"
    return _FORMULA_START.sub("'", valid_text(str(value)))


def rows_csv(rows: Sequence[dict], columns: Sequence[str] = ROW_COLUMNS) -> str:
    """The rows as CSV text, one line per row, with a header.

    RFC 4180 line ends (CRLF): the csv module quotes a cell holding a character of the line
    terminator, so with "\\n" alone a bare CR in a file name went out unquoted and a
    spreadsheet started a new row there."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()
