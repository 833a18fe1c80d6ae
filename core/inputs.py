"""Checks on a user's input CSV that are cheap enough to run before anything starts."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
from pathlib import Path

from core import spec
from core.errors import UserError

BUNDLED_DATA = Path(__file__).resolve().parent / "data" / "california_housing.csv.gz"


def check_input_file(path: str | Path) -> Path:
    """The file exists, is readable, and its header names every column the pipeline needs.

    Values are checked by the Preprocess step, which reads the whole file anyway.
    """
    source = Path(path).expanduser()
    if not source.exists():
        raise UserError(f"input file {source} does not exist; pass a CSV with the California housing columns")
    if not source.is_file():
        raise UserError(f"input {source} is not a file; pass a CSV file (optionally .csv.gz)")
    try:
        with open(source, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with gzip.open(raw) if compressed else contextlib.nullcontext(raw) as stream:
                header_line = stream.readline(1 << 16).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"input {source} cannot be read as a CSV file ({exc})") from None
    if not header_line.strip():
        raise UserError(f"input {source} is empty; it needs a header row and data rows")
    header = [c.strip() for c in next(csv.reader(io.StringIO(header_line)))]
    missing = [c for c in (*spec.FEATURES, spec.TARGET) if c not in header]
    if missing:
        raise UserError(
            f"input {source} is missing column(s) {', '.join(missing)}; "
            f"it needs {', '.join((*spec.FEATURES, spec.TARGET))}"
        )
    return source.resolve()
