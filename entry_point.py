"""SageMaker inference entry point: model_fn and transform_fn, run by the scikit-learn container and locally.

SageMaker's scikit-learn container (image 1.2-1) imports this module from the repacked model.tar.gz
(code/entry_point.py), calls ``model_fn`` once, then ``transform_fn`` for every request. The local endpoint
server runs the same two functions through the same handler chain (core/local/serving/handler_chain.py).

Why ``transform_fn`` and not the container's defaults or input_fn/predict_fn/output_fn:

- the container's default CSV decoder squeezes its array, so a one-row request reaches the model as a 1-D
  array and fails ("Expected 2D array"): every single-row smoke test would be a 500;
- the container turns any exception of a handler into a 500, so a handler cannot say "row 3 has 7 values"
  with a 4xx by raising. A ``transform_fn`` that returns the container's own ``Response`` with a status is
  the one way to answer bad input with a 4xx and one sentence on SageMaker.

Requests: ``text/csv`` rows of the 8 raw features without a header (one row or many, trailing newline or
not), or ``application/json`` as ``{"instances": [[8 numbers], ...]}`` or a bare list of rows. Answers: one
prediction per line for ``text/csv``, ``{"predictions": [...]}`` for ``application/json``, as Accept asks.

This file ships alone (SageMaker's repack copies just it next to the model), runs on the container's
Python 3.9 with numpy 1.24 and pandas 1.1, and imports nothing of this project.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

FEATURES = ("MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude")
N_FEATURES = len(FEATURES)
_FEATURE_LIST = ", ".join(FEATURES)
_HEADER_WORDS = frozenset(name.lower() for name in (*FEATURES, "MedHouseVal"))

CSV = "text/csv"
JSON = "application/json"
_TEXT = "text/plain"

# What a feature value can be. The six census quantities are counts and averages, never negative;
# AveOccup divides AveRooms in the model, so it must be above 0; places are degrees on the globe.
_LOW = np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.nextafter(0.0, 1.0), -90.0, -180.0])
_HIGH = np.array([np.inf, np.inf, np.inf, np.inf, np.inf, np.inf, 90.0, 180.0])
_RULES = (
    "MedInc is at least 0",
    "HouseAge is at least 0",
    "AveRooms is at least 0",
    "AveBedrms is at least 0",
    "Population is at least 0",
    "AveOccup is above 0",
    "Latitude lies between -90 and 90 degrees",
    "Longitude lies between -180 and 180 degrees",
)
# House values are in units of $100,000 and lie between 0.15 and 5.0 in the data. A prediction beyond
# this bound only comes from inputs far outside anything the model learned from: it is refused, not sent.
MAX_ABS_PREDICTION = 1000.0

# Below this many characters (~100 rows) plain Python splitting beats pandas' fixed cost of ~300 us.
_PANDAS_MIN_CHARS = 8 * 1024

try:  # In SageMaker's container: its Flask response class, the one way a handler chooses the status.
    # (framework.worker is an attribute of that package, not a module of its own: import it as serving.py does.)
    from sagemaker_containers.beta.framework import worker as _worker

    Response = _worker.Response
except ImportError:  # Elsewhere (the local endpoint server): the same constructor and the fields it reads.

    class Response:  # type: ignore[no-redef]
        """Stand-in for sagemaker_containers' worker.Response: a body, a status and a media type.

        It is a WSGI application as well, which Flask accepts as a view's answer, so even a Flask-based server
        without sagemaker_containers would send its status.
        """

        def __init__(self, response: bytes | str = b"", status: int = 200, mimetype: str | None = None) -> None:
            self.data = response.encode() if isinstance(response, str) else response
            self.status_code = status
            self.mimetype = mimetype

        def get_data(self) -> bytes:
            return self.data

        def __call__(self, environ, start_response):
            headers = [("Content-Type", self.mimetype or "text/plain"), ("Content-Length", str(len(self.data)))]
            start_response(f"{self.status_code} {'OK' if self.status_code < 400 else 'Error'}", headers)
            return [self.data]


class RequestError(Exception):
    """Input this endpoint refuses: an HTTP status and one sentence for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------------------------- model


class ServingModel:
    """What model_fn hands to transform_fn: the fitted pipeline and the fastest exact way to predict with it.

    The pipeline (cap -> RoomsPerHousehold -> StandardScaler -> LinearRegression) spends ~1.5 ms of
    scikit-learn's validation and ColumnTransformer machinery on every call, ten times the rest of a
    request. When the pipeline has exactly the training recipe's shape, its fitted numbers are read out
    and applied with the same numpy operations in the same order (~10 us); that shortcut is used only
    after it has matched ``estimator.predict`` on probe rows at load time, so it can never serve anything
    the pipeline would not. Any other estimator is served through its own ``predict``.
    """

    def __init__(self, estimator) -> None:
        self.estimator = estimator
        compiled = _compile_linear_recipe(estimator)
        self.predict = compiled if compiled is not None and _agrees(compiled, estimator) else estimator.predict
        self.compiled = self.predict is compiled


def _compile_linear_recipe(estimator):
    """The training recipe's arithmetic as one numpy function, or None if the estimator has another shape."""
    try:
        steps = dict(estimator.steps)
        if list(steps) != ["cap", "features", "standardscaler", "linearregression"]:
            return None
        cap, features = steps["cap"], steps["features"]
        if cap.func is not np.clip or set(cap.kw_args or {}) != {"a_min", "a_max"} or cap.kw_args["a_min"] is not None:
            return None
        caps = np.asarray(cap.kw_args["a_max"], dtype=np.float64)
        # The constructor's spec, which keeps "passthrough" (fitted copies replace it with an identity).
        (_, raw, raw_columns), (_, ratio, ratio_columns) = features.transformers
        if raw != "passthrough" or list(raw_columns) != list(range(N_FEATURES)) or features.remainder != "drop":
            return None
        if ratio.func != np.divide.reduce or ratio.kw_args != {"axis": 1, "keepdims": True}:
            return None
        numerator, denominator = ratio_columns  # unpacking refuses any other number of columns
        scaler, regression = steps["standardscaler"], steps["linearregression"]
        mean = scaler.mean_ if scaler.with_mean else None
        scale = scaler.scale_ if scaler.with_std else None
        coef = np.asarray(regression.coef_, dtype=np.float64)
        intercept = float(regression.intercept_)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if caps.shape != (N_FEATURES,) or coef.shape != (N_FEATURES + 1,):
        return None

    def predict(matrix: np.ndarray) -> np.ndarray:
        # The pipeline's operations, written into one buffer: np.minimum is what np.clip does with no lower
        # bound, and the ratio column is np.divide.reduce of its two columns.
        features = np.empty((matrix.shape[0], N_FEATURES + 1))
        capped = np.minimum(matrix, caps, out=features[:, :N_FEATURES])
        np.divide(capped[:, numerator], capped[:, denominator], out=features[:, N_FEATURES])
        if mean is not None:
            features -= mean
        if scale is not None:
            features /= scale
        return features @ coef + intercept

    return predict


def _agrees(compiled, estimator) -> bool:
    """The shortcut gives the pipeline's predictions on rows on both sides of every cap."""
    rng = np.random.default_rng(0)
    probe = rng.uniform(0.01, 2.0, size=(256, N_FEATURES)) * [15, 52, 10, 2, 5000, 6, 1, 1]
    probe[:, 6] = rng.uniform(32.0, 42.0, 256)
    probe[:, 7] = rng.uniform(-125.0, -114.0, 256)
    try:
        expected = np.asarray(estimator.predict(probe), dtype=np.float64)
        got = compiled(probe)
    except Exception:  # a pipeline that cannot predict the probe is served as it is, by its own predict
        return False
    return expected.shape == got.shape and bool(np.allclose(got, expected, rtol=1e-12, atol=1e-12))


def model_fn(model_dir: str) -> ServingModel:
    """Load the pipeline training.py saved, and make the first request as cheap as every other."""
    import joblib

    model = ServingModel(joblib.load(os.path.join(model_dir, "model.joblib")))
    # One batch-sized body through the parser: pandas is imported now, not during the first request.
    row = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"
    parse_csv("\n".join([row] * (_PANDAS_MIN_CHARS // len(row) + 1)))
    return model


# ----------------------------------------------------------------------------------------- handlers


def transform_fn(model: ServingModel, request_body, request_content_type: str, accept: str) -> Response:
    """One request: parse the rows, predict, answer; bad input gets a 4xx and one sentence, never a 500."""
    try:
        kind = request_format(request_content_type)
        answer_kind = response_format(accept, kind)
        matrix = parse_body(request_body, kind)
        with np.errstate(all="ignore"):  # overflow shows up as a non-finite prediction, refused below
            predictions = checked_predictions(model.predict(matrix), len(matrix))
    except RequestError as error:
        return Response(error.message, status=error.status, mimetype=_TEXT)
    return Response(format_predictions(predictions, answer_kind), status=200, mimetype=answer_kind)


def media_type(header_value: str | None) -> str:
    """The bare media type of a Content-Type or Accept item, lower-cased, without parameters."""
    return (header_value or "").split(";", 1)[0].strip().lower()


def request_format(content_type: str | None) -> str:
    kind = media_type(content_type)
    if kind in (CSV, JSON):
        return kind
    if not kind:
        raise RequestError(415, "The request has no Content-Type: send text/csv rows or application/json instances.")
    raise RequestError(415, f"Content type {_show(kind)} is not supported: send text/csv or application/json.")


def response_format(accept: str | None, request_kind: str) -> str:
    """The first Accept item this endpoint can produce; no Accept (or */*) answers in the request's type."""
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
        406, f"Accept {_show(accept)} names no type this endpoint produces: it answers text/csv or application/json."
    )


def parse_body(body, kind: str) -> np.ndarray:
    """A request body (text, or bytes when the container did not decode it) -> an (n, 8) float64 matrix."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(
                400, f"The request body is not UTF-8 text (byte {exc.start} is invalid): send rows of numbers."
            ) from None
    elif "\ufffd" in body:  # the container decodes text with replacement characters for invalid bytes
        raise RequestError(400, "The request body is not UTF-8 text: send rows of numbers.")
    body = body[1:] if body.startswith("\ufeff") else body  # a byte-order mark some editors put first
    matrix = parse_csv(body) if kind == CSV else parse_json(body)
    check_domain(matrix)
    return matrix


# ---------------------------------------------------------------------------------------------- CSV


def _plain_number(text: str) -> float:
    """A plain decimal number: what float() takes, minus the underscores and non-ASCII digits it also takes."""
    value = float(text)
    if not text.isascii() or "_" in text:
        raise ValueError(text)
    return value


def _is_number(text: str) -> bool:
    try:
        _plain_number(text)
    except ValueError:
        return False
    return True


def _looks_like_header(fields: list) -> bool:
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
    """The precise path: every row checked in order, the first problem explained.

    A row of 8 plain numbers is read with one float() per field; only a row that fails is looked at again,
    to tell a header, a short row or the bad field apart (a row of numbers is never a header).
    """
    rows = []
    first = True
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if not line.strip():
            continue  # blank lines (a trailing newline above all) carry no row
        fields = line.split(",")
        try:
            if len(fields) != N_FEATURES or not line.isascii() or "_" in line:
                raise ValueError(line)
            values = [float(field) for field in fields]
        except ValueError:
            raise _row_error(number, line, fields, first) from None
        if not all(map(math.isfinite, values)):
            column = next(i for i, value in enumerate(values) if not math.isfinite(value))
            raise RequestError(
                400,
                f"Row {number}, column {column + 1}: {_show(fields[column].strip())} is not a finite number, "
                "and predictions are only made for finite values.",
            )
        rows.append(values)
        first = False
    if not rows:
        raise RequestError(400, f"The request body has no rows: send one CSV row of {N_FEATURES} numbers per line.")
    return np.array(rows, dtype=np.float64)


def _row_error(number: int, line: str, fields: list, first: bool) -> RequestError:
    """What is wrong with a row that is not 8 plain numbers, in one sentence."""
    if first and _looks_like_header(fields):
        return _header_error(line)
    if len(fields) != N_FEATURES:
        return RequestError(
            400, f"Row {number} has {_plural(len(fields), 'value')}; each row needs {N_FEATURES}: {_FEATURE_LIST}."
        )
    column = next(i for i, field in enumerate(fields) if not _is_number(field))
    return RequestError(
        400,
        f"Row {number}, column {column + 1}: {_show(fields[column].strip())} is not a plain decimal number "
        "(digits 0-9 with an optional sign, point and exponent).",
    )


def _parse_csv_pandas(text: str):
    """The batch path; None whenever the precise path has to decide (or explain) instead."""
    import pandas as pd  # imported once by model_fn's warm-up; a dictionary look-up after that

    try:
        frame = pd.read_csv(
            io.BytesIO(text.encode()),  # pandas reads bytes ~15% faster than text
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


def parse_csv(text: str) -> np.ndarray:
    """Rows of 8 numbers, one per line, no header -> an (n, 8) float64 matrix."""
    if not text.strip():
        raise RequestError(400, f"The request body is empty: send one CSV row of {N_FEATURES} numbers per line.")
    if len(text) >= _PANDAS_MIN_CHARS and text.isascii():
        first_line = text.lstrip("\r\n").replace("\r", "\n").split("\n", 1)[0]
        if _looks_like_header(first_line.split(",")):
            raise _header_error(first_line)
        if "_" not in text:  # pandas reads 1_0 as 10; only the precise path refuses it
            matrix = _parse_csv_pandas(text)
            if matrix is not None:
                return matrix
    return _parse_csv_rows(text)


# --------------------------------------------------------------------------------------------- JSON


def _json_error(detail: str) -> RequestError:
    return RequestError(
        400,
        f'The JSON body is not valid ({detail}): send {{"instances": [[8 numbers], ...]}}, '
        "or CSV rows with Content-Type text/csv.",
    )


def parse_json(text: str) -> np.ndarray:
    """``{"instances": [[8 numbers], ...]}`` or the bare list of rows -> an (n, 8) float64 matrix."""
    if not text.strip():
        raise RequestError(
            400, 'The request body is empty: send {"instances": [[8 numbers], ...]} as application/json.'
        )
    try:
        # Integers are read as floats: a 5,000-digit integer is then just too large, not a conversion limit.
        document = json.loads(text, parse_int=float)
    except json.JSONDecodeError as exc:
        raise _json_error(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise _json_error("it is nested too deeply") from None
    rows = document.get("instances") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise RequestError(
            400,
            f'The JSON body must be {{"instances": [...]}} or a list of rows, each of {N_FEATURES} numbers '
            f"({_FEATURE_LIST}).",
        )
    if not rows:
        raise RequestError(400, "The JSON body has no rows: its list of instances is empty.")
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
            if isinstance(value, bool) or not isinstance(value, float):
                raise RequestError(400, f"instances[{index}][{column}]: {_show(json.dumps(value))} is not a number.")
            if not math.isfinite(value):
                raise RequestError(
                    400,
                    f"instances[{index}][{column}]: {_show(repr(value))} is not a finite number, "
                    "and predictions are only made for finite values.",
                )
            matrix[index, column] = value
    return matrix


# -------------------------------------------------------------------------------------- the answer


def check_domain(matrix: np.ndarray) -> None:
    """Refuse values no house has: the first one found is named with its row, column and the rule."""
    if (matrix >= _LOW).all() and (matrix <= _HIGH).all():
        return
    row, column = (int(i) for i in np.argwhere((matrix < _LOW) | (matrix > _HIGH))[0])
    raise RequestError(
        400,
        f"Row {row + 1}, column {column + 1}: {FEATURES[column]} {float(matrix[row, column])!r} is impossible; "
        f"{_RULES[column]}.",
    )


def checked_predictions(raw, n_rows: int) -> list:
    """The model's output as one finite, plausible float per row; a RequestError otherwise."""
    output = np.asarray(raw, dtype=np.float64)
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.shape != (n_rows,):
        raise RequestError(500, f"The model returned an output of shape {output.shape} for {n_rows} rows.")
    plausible = np.abs(output) <= MAX_ABS_PREDICTION  # False for NaN and infinity too
    if not plausible.all():
        row = int(np.argmin(plausible))
        raise RequestError(
            400,
            f"Row {row + 1}'s prediction ({output[row]:.4g}) is not a house value: its features lie too far "
            "outside the data the model was trained on for it to mean anything.",
        )
    return output.tolist()


def format_predictions(values: list, kind: str) -> str:
    """One prediction per line for CSV, ``{"predictions": [...]}`` for JSON; repr keeps full precision."""
    if kind == CSV:
        return "\n".join(map(repr, values)) + "\n"
    return json.dumps({"predictions": values})


def _show(value: str, limit: int = 40) -> str:
    """A value quoted for a message, cut so a huge field cannot flood the answer."""
    return repr(value[:limit] + "..." if len(value) > limit else value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
