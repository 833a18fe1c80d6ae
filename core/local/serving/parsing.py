"""Request bodies to feature matrices, predictions to response bodies, and the sentences for bad input.

The protocol is the SageMaker scikit-learn container's: ``text/csv`` rows without a header, 8 numbers each,
or ``application/json`` ``{"instances": [[8 numbers], ...]}``. Every way a body can be wrong ends in a
``RequestError`` that carries the HTTP status and one sentence for the caller; nothing here raises anything
else for any input, which is what keeps the server from answering 5xx.

Two CSV paths, picked by body size (measured on 2 cores): plain Python splitting costs ~3 us a row with no
set-up, ``pandas.read_csv`` ~300 us of set-up then ~0.4 us a row, so small bodies (every single-row request)
take the Python path and batches take pandas. The pandas path is only trusted when it succeeds on a clean
result; on anything odd it falls back to the precise Python path, which both decides and explains, so the
two paths always agree on what is accepted.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

from core.spec import FEATURES

N_FEATURES = len(FEATURES)
# Header names a caller might paste from the training CSV, compared case-insensitively.
_HEADER_WORDS = frozenset(name.lower() for name in (*FEATURES, "MedHouseVal"))

# SageMaker's limit for a real-time InvokeEndpoint payload.
MAX_BODY_BYTES = 6 * 1024 * 1024

CSV = "text/csv"
JSON = "application/json"

# Below this many bytes (~100 rows) plain Python parsing beats pandas' fixed cost.
PANDAS_MIN_BYTES = 8 * 1024

_FEATURE_LIST = ", ".join(FEATURES)


class RequestError(Exception):
    """A request the server refuses: an HTTP status, one sentence, and SageMaker's error type name."""

    def __init__(self, status: int, message: str, error_type: str = "ValidationError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


def _show(value: str, limit: int = 40) -> str:
    """A value quoted for a message, cut so a huge field cannot flood the answer."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def media_type(header_value: str | None) -> str | None:
    """The bare media type of a Content-Type or Accept item, lower-cased, without parameters."""
    if header_value is None:
        return None
    return header_value.split(";", 1)[0].strip().lower()


def request_format(content_type: str | None) -> str:
    """CSV or JSON for a Content-Type header; 415 for anything else."""
    kind = media_type(content_type)
    if kind in (CSV, JSON):
        return kind
    if not kind:
        raise RequestError(415, "The request has no Content-Type: send text/csv rows or application/json instances.")
    raise RequestError(415, f"Content type {_show(kind)} is not supported: send text/csv or application/json.")


def response_format(accept: str | None, request_kind: str) -> str:
    """The answer's media type: the first Accept item this server can produce, else the request's own."""
    if not accept:
        return request_kind
    for item in accept.split(","):
        kind = media_type(item)
        if kind in (CSV, JSON):
            return kind
        if kind in ("*/*", "*", ""):
            return request_kind
        if kind == "text/*":
            return CSV
        if kind == "application/*":
            return JSON
    raise RequestError(
        406,
        f"Accept {_show(accept)} names no type this endpoint produces: it answers text/csv or application/json.",
    )


# ---------------------------------------------------------------------------------------------- CSV


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(fields: list[str]) -> bool:
    """A first row naming a feature, or of several fields with words and no number, is a header."""
    cleaned = [field.strip().strip('"').strip() for field in fields]
    if any(field.lower() in _HEADER_WORDS for field in cleaned):
        return True
    has_words = any(char.isalpha() for field in cleaned for char in field)
    return len(cleaned) > 1 and has_words and not any(_is_number(field) for field in cleaned)


def _header_error(line: str) -> RequestError:
    return RequestError(
        400,
        f"Row 1 is a header ({_show(line.strip(), 60)}): rows take no header, "
        f"so send only the {N_FEATURES} numbers of each row, in the order {_FEATURE_LIST}.",
    )


def _parse_csv_rows(text: str) -> np.ndarray:
    """The precise path: every row checked in order, the first problem explained."""
    rows: list[list[float]] = []
    first = True
    # Line ends as the batch path's CSV reader knows them: \n, \r\n and a lone \r.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines (a trailing newline above all) carry no row
        fields = line.split(",")
        if first:
            first = False
            if _looks_like_header(fields):
                raise _header_error(line)
        if len(fields) != N_FEATURES:
            raise RequestError(
                400,
                f"Row {number} has {_plural(len(fields), 'value')}; each row needs {N_FEATURES}: {_FEATURE_LIST}.",
            )
        values: list[float] = []
        for column, field in enumerate(fields, start=1):
            try:
                value = float(field)
            except ValueError:
                raise RequestError(
                    400, f"Row {number}, column {column}: {_show(field.strip())} is not a number."
                ) from None
            if not math.isfinite(value):
                raise RequestError(
                    400,
                    f"Row {number}, column {column}: {_show(field.strip())} is not a finite number, "
                    "and predictions are only made for finite values.",
                )
            values.append(value)
        rows.append(values)
    if not rows:
        raise RequestError(400, f"The request body has no rows: send one CSV row of {N_FEATURES} numbers per line.")
    return np.array(rows, dtype=np.float64)


def _parse_csv_pandas(body: bytes) -> np.ndarray | None:
    """The batch path; None whenever the precise path has to decide (or explain) instead."""
    import pandas as pd  # already imported at start-up by warm_up(); this is a dictionary look-up

    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            header=None,
            dtype=np.float64,
            engine="c",
            # Quotes are data, as in the precise path: '"1.5"' is no number in either.
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=True,
        )
    except Exception:  # any parser complaint: the precise path finds and words the problem
        return None
    matrix = frame.to_numpy(dtype=np.float64, copy=False)
    if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES or not np.isfinite(matrix).all():
        return None
    return matrix


def parse_csv(body: bytes) -> np.ndarray:
    """Rows of 8 numbers, one per line, no header -> an (n, 8) float64 matrix."""
    if not body.strip():
        raise RequestError(400, f"The request body is empty: send one CSV row of {N_FEATURES} numbers per line.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400, f"The request body is not UTF-8 text (byte {exc.start} is invalid): send CSV rows of numbers."
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors put first
    if len(body) >= PANDAS_MIN_BYTES:
        first_line = text.replace("\r", "\n").split("\n", 1)[0]
        if _looks_like_header(first_line.split(",")):
            raise _header_error(first_line)
        matrix = _parse_csv_pandas(body if not body.startswith(b"\xef\xbb\xbf") else body[3:])
        if matrix is not None:
            return matrix
    return _parse_csv_rows(text)


# --------------------------------------------------------------------------------------------- JSON


def _json_error(detail: str) -> RequestError:
    return RequestError(400, f"The JSON body is not valid: {detail}.")


def parse_json(body: bytes) -> np.ndarray:
    """``{"instances": [[8 numbers], ...]}`` (or the bare list of rows) -> an (n, 8) float64 matrix."""
    if not body.strip():
        raise RequestError(
            400, 'The request body is empty: send {"instances": [[8 numbers], ...]} as application/json.'
        )
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise _json_error(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError:
        raise _json_error("it is not UTF-8 text") from None
    except RecursionError:
        raise _json_error("it is nested too deeply") from None
    rows = document.get("instances") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise RequestError(
            400,
            'The JSON body must be an object with "instances": a list of rows of '
            f"{N_FEATURES} numbers ({_FEATURE_LIST}).",
        )
    if not rows:
        raise RequestError(400, 'The JSON body has no rows: "instances" is an empty list.')
    matrix = np.empty((len(rows), N_FEATURES), dtype=np.float64)
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise RequestError(400, f"instances[{index}] is not a list of {N_FEATURES} numbers ({_FEATURE_LIST}).")
        if len(row) != N_FEATURES:
            raise RequestError(
                400,
                f"instances[{index}] has {_plural(len(row), 'value')}; each row needs {N_FEATURES}: {_FEATURE_LIST}.",
            )
        for column, value in enumerate(row):
            # bool is an int subclass, and true is no house feature.
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestError(400, f"instances[{index}][{column}]: {_show(json.dumps(value))} is not a number.")
            try:
                number = float(value)
            except OverflowError:  # an integer beyond float range
                number = math.inf
            if not math.isfinite(number):
                raise RequestError(
                    400,
                    f"instances[{index}][{column}]: {_show(str(value))} is not a finite number, "
                    "and predictions are only made for finite values.",
                )
            matrix[index, column] = number
    return matrix


def parse_body(body: bytes, kind: str) -> np.ndarray:
    return parse_csv(body) if kind == CSV else parse_json(body)


# ---------------------------------------------------------------------------------------- responses


def predictions_to_list(raw: object, n_rows: int) -> list[float]:
    """The model's output as one finite float per row; RequestError when it cannot be that."""
    try:
        output = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError(
            424, "The model returned predictions that are not numbers, so none can be sent.", "ModelError"
        ) from None
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.ndim != 1 or output.shape[0] != n_rows:
        raise RequestError(
            424,
            f"The model returned an output of shape {output.shape} for {n_rows} rows, not one prediction per row.",
            "ModelError",
        )
    finite = np.isfinite(output)
    if not finite.all():
        row = int(np.argmin(finite)) + 1
        raise RequestError(
            400,
            f"The prediction for row {row} is not a finite number ({output[row - 1]!r}): "
            "its values are too far outside the data the model was trained on.",
        )
    return output.tolist()


def format_predictions(values: list[float], kind: str) -> bytes:
    """One prediction per line for CSV, ``{"predictions": [...]}`` for JSON; repr keeps full precision."""
    if kind == CSV:
        return ("\n".join(map(repr, values)) + "\n").encode()
    return json.dumps({"predictions": values}).encode()


def warm_up() -> None:
    """Run both CSV paths and the JSON path once, so the first real request pays no import or set-up."""
    row = ",".join(["1.0"] * N_FEATURES)
    parse_csv((row + "\n").encode())
    parse_csv(((row + "\n") * (PANDAS_MIN_BYTES // len(row) + 1)).encode())
    parse_json(json.dumps({"instances": [[1.0] * N_FEATURES]}).encode())
