"""Turning a user's CSV into an endpoint request: the protocol takes 8 numbers a row and no header.

A file with a header that names the columns (such as the data set itself) is accepted too: its feature
columns are sent in the endpoint's order, and MedHouseVal, if present, is kept as the actual values.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from core import spec
from core.errors import UserError


@dataclass(frozen=True)
class PreparedRows:
    body: bytes
    count: int
    actuals: list[float] | None  # MedHouseVal of each row, when the input had it


def _looks_like_header(line: str) -> bool:
    return any(name in line for name in (*spec.FEATURES, spec.TARGET))


def prepare_rows(text: str) -> PreparedRows:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise UserError("there are no rows to send; give CSV rows of 8 numbers (MedInc ... Longitude)")
    if not _looks_like_header(lines[0]):
        return PreparedRows(body=("\n".join(lines) + "\n").encode(), count=len(lines), actuals=None)
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    fields = [f.strip() for f in reader.fieldnames or []]
    missing = [name for name in spec.FEATURES if name not in fields]
    if missing:
        raise UserError(f"the header lacks column(s) {', '.join(missing)}; the endpoint needs all 8 features")
    reader.fieldnames = fields
    rows, actuals = [], []
    for record in reader:
        rows.append(",".join((record.get(name) or "").strip() for name in spec.FEATURES))
        if spec.TARGET in fields:
            actuals.append(_number(record.get(spec.TARGET), reader.line_num))
    return PreparedRows(
        body=("\n".join(rows) + "\n").encode(), count=len(rows), actuals=actuals if spec.TARGET in fields else None
    )


def _number(text: str | None, line: int) -> float:
    try:
        return float(text or "")
    except ValueError:
        raise UserError(f"MedHouseVal on line {line} is {text!r}, not a number") from None
