"""The device list as CSV, one line per device from the shared presenter (`device_fields`).

Device names and other values a device reports go into spreadsheets: a cell that starts
with =, +, -, @ (or a tab or carriage return) would be read there as a formula (OWASP, "CSV
Injection"), so such a cell is written with a leading apostrophe. Quotes, commas and line
breaks are quoted by the csv module as RFC 4180 says.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

COLUMNS = (
    "udid", "device_name", "serial_number", "model", "model_name", "product_name",
    "os_version", "build_version", "state", "enrolled_at", "last_seen_at", "compliance",
    "compliance_reasons",
)  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_lines(rows: Iterable[Mapping[str, Any]], *, header: bool = False) -> str:
    """CSV text (CRLF line ends) for rows of `device_fields`, the header line first if asked."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        compliance = row["compliance"]
        values = {**row, "compliance": compliance["status"],
                  "compliance_reasons": "; ".join(compliance["reasons"])}  # fmt: skip
        writer.writerow([_cell(values[column]) for column in COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
