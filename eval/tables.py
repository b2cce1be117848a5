"""Tabular outputs of the evaluation programs: CSV, JSON and Markdown, always written atomically.

Every writer builds the whole file in memory and hands it to `atomic_write`, which writes a
temporary file in the destination folder and renames it over the destination, so a reader (or
a crash) never sees a half-written file.
"""
import csv
import io
import json
import math
import numbers
import os
from pathlib import Path

import numpy as np

from tfgan3d import io as _io


# The writers live in tfgan3d.io (one home for every file tfgan3d writes); these names stay.
atomic_write = _io.atomic_write
_plain = _io.plain


def write_json(obj, path, indent=2):
    """Writes `obj` as strict JSON (NaN and infinities become null; numpy values become lists
    and numbers).

    Returns:
        The destination as a `pathlib.Path`.
    Raises:
        TypeError: `obj` holds a value JSON cannot represent (the message names its type).
    """
    text = json.dumps(_plain(obj), indent=indent, allow_nan=False)
    return atomic_write(path, text + "\n")


def _columns(rows, columns):
    """The given columns, or the union of the rows' keys in order of first appearance."""
    if columns is not None:
        return list(columns)
    seen = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _csv_cell(value):
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that round-trips; nan and inf as "nan", "inf"
    return value


def write_csv(rows, path, columns=None):
    """Writes a list of dicts as CSV with a header line.

    Args:
        rows: list of dicts, one per line; a key missing from a row leaves its cell empty.
        path: destination file.
        columns: column order; defaults to the keys in order of first appearance. Keys of a row
            that are not in `columns` raise ValueError.
    Returns:
        The destination as a `pathlib.Path`.
    """
    columns = _columns(rows, columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    if columns:
        writer.writeheader()
    for i, row in enumerate(rows):
        extra = [key for key in row if key not in columns]
        if extra:
            raise ValueError(f"row {i} has keys {extra} that are not among the columns {columns}")
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
    return atomic_write(path, buf.getvalue())


def _is_number(value):
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def _md_cell(value, floatfmt):
    if value is None:
        return ""
    if _is_number(value) and isinstance(value, numbers.Integral):
        return str(int(value))
    if _is_number(value) and isinstance(value, numbers.Real):
        value = float(value)
        return format(value, floatfmt) if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows, columns=None, floatfmt=".4f", title=None):
    """Formats a list of dicts as a GitHub-flavoured Markdown table.

    Columns whose cells are all numbers (or empty) are right-aligned; real numbers use
    `floatfmt`, integers are written whole, None is an empty cell. Cells are padded so that the
    raw text lines up.

    Args:
        rows: list of dicts, one per table row.
        columns: column order; defaults to the keys in order of first appearance.
        floatfmt: format spec for real numbers, e.g. ".4f" or ".3g".
        title: optional heading, written as `### title` above the table.
    Returns:
        The table text, ending with a newline.
    """
    columns = _columns(rows, columns)
    if not columns:
        raise ValueError("markdown_table needs at least one column; got no rows and no columns")
    cells = [[_md_cell(row.get(col), floatfmt) for col in columns] for row in rows]
    numeric = [all(row.get(col) is None or _is_number(row.get(col)) for row in rows)
               and any(row.get(col) is not None for row in rows) for col in columns]
    header = [str(col).replace("|", "\\|") for col in columns]
    widths = [max([3, len(header[j])] + [len(line[j]) for line in cells])
              for j in range(len(columns))]

    def line(parts):
        padded = [part.rjust(w) if right else part.ljust(w)
                  for part, w, right in zip(parts, widths, numeric)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join("-" * (w - 1) + ":" if right else "-" * w
                             for w, right in zip(widths, numeric)) + " |"
    lines = [line(header), rule] + [line(row) for row in cells]
    text = "\n".join(lines) + "\n"
    return f"### {title}\n\n{text}" if title else text


def write_markdown_table(rows, path, columns=None, floatfmt=".4f", title=None):
    """Writes `markdown_table(rows, columns, floatfmt, title)` to `path` atomically.

    Returns:
        The destination as a `pathlib.Path`.
    """
    return atomic_write(path, markdown_table(rows, columns, floatfmt=floatfmt, title=title))
