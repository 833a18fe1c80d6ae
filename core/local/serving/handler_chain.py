"""What SageMaker's scikit-learn container (image 1.2-1) does with an entry point, run in-process.

The image serves a single model through ``sagemaker_sklearn_container.serving`` on top of
``sagemaker_containers`` 2.8.6.post2 (Flask). For every POST /invocations it:

1. reads the content type from the ``ContentType`` or ``Content-Type`` header (``application/json`` when
   neither is sent) and the Accept header (the model's ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, else
   ``application/json``, when Accept is missing or ``*/*``); the body is handed over as text, decoded as
   UTF-8 with replacement characters, when the content type is exactly ``text/csv`` or
   ``application/json``, and as bytes otherwise;
2. calls the entry point's ``transform_fn(model, body, content_type, accept)`` if it has one, else
   ``input_fn`` -> ``predict_fn`` -> ``output_fn``, each the container's default where the entry point
   defines none. The defaults: decode (CSV read by ``csv.reader`` into an array that is then *squeezed*,
   so one row becomes 1-D; JSON through ``json.loads``; NPY) then ``astype(float32)`` for CSV and JSON;
   ``model.predict``; encode into the Accept type (a type it cannot encode is an error);
3. turns the result into a response: a ``(body, mimetype)`` tuple or a plain text is a 200, a response
   object keeps its status;
4. answers **500** when any of these raises. The scikit-learn image passes its own defaults to the
   framework as if they were user functions, and the framework wraps every user function so that its
   exceptions become ``ClientError``; so even an unsupported content type is a 500 there, not the 415 the
   framework's bare defaults would give.

The local endpoint server runs every request through this chain, so an entry point that would fail on
SageMaker (one CSV row with only ``model_fn``, a ``{"instances": ...}`` body to the default decoder) fails
here the same way. Where the container's behaviour is a hazard it is not copied: NPY bodies are read
without unpickling objects (the container passes ``allow_pickle=True``; any client could then run code in
the server). The parity tier (tests/parity) checks this module against the real ``sagemaker_containers``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

CSV = "text/csv"
JSON = "application/json"
NPY = "application/x-npy"
UTF8_TYPES = (JSON, CSV)
ANY = "*/*"
HANDLERS = ("input_fn", "predict_fn", "output_fn")

log = logging.getLogger("housing_tui.serving")


class ChainError(Exception):
    """The entry point cannot be served (as the container would refuse to start); one sentence."""


class UnsupportedFormatError(Exception):
    """The container's default decoder or encoder has no codec for this media type."""

    def __init__(self, content_type: str) -> None:
        super().__init__(f"Content type {content_type} is not supported by this framework")


@dataclass(frozen=True)
class ContainerAnswer:
    """What the container answers: a status, a body and its Content-Type; ``failure`` says why a 500 (for the log)."""

    status: int
    body: bytes
    content_type: str
    failure: str | None = None


# ----------------------------------------------------------------------------- the container's codecs


def csv_to_numpy(text: str) -> np.ndarray:
    """The container's CSV decoder: rows of strings, squeezed (one row -> 1-D), converted to float64 if it can."""
    reader = csv.reader(io.StringIO(text), delimiter=",", quotechar='"', doublequote=True, strict=True)
    try:
        rows = [row for row in reader]
    except csv.Error as exc:
        raise ValueError(f"Error while decoding csv: {exc}") from None
    array = np.array(rows).squeeze()  # ragged rows raise ValueError here, as they do there
    try:
        return array.astype(None)  # dtype None is float64; text that is no number leaves the strings as they are
    except ValueError:
        return array


def json_to_numpy(text: str) -> np.ndarray:
    return np.array(json.loads(text))


def npy_to_numpy(data: bytes | str) -> np.ndarray:
    raw = data.encode() if isinstance(data, str) else data
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _csv_cell(value: Any) -> str:
    # csv.writer writes a float (np.float64 is one) by repr and anything else by str; numpy 1.24's repr of a
    # float64 is the plain number, while numpy 2 would write "np.float64(...)".
    return repr(float(value)) if isinstance(value, float) else str(value)


def array_to_csv(prediction: Any) -> str:
    array = np.array(prediction)
    if array.ndim == 1:
        array = array.reshape(array.shape[0], 1)
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True)
    writer.writerows([_csv_cell(value) for value in row] for row in np.atleast_2d(array))
    return stream.getvalue()


def array_to_json(prediction: Any) -> str:
    def default(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        return json.JSONEncoder().default(value)

    return json.dumps(prediction, default=default)


def array_to_npy(prediction: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, prediction)
    return buffer.getvalue()


DECODERS: dict[str, Callable[[Any], np.ndarray]] = {NPY: npy_to_numpy, CSV: csv_to_numpy, JSON: json_to_numpy}
ENCODERS: dict[str, Callable[[Any], str | bytes]] = {NPY: array_to_npy, CSV: array_to_csv, JSON: array_to_json}


def default_input_fn(body: Any, content_type: str) -> np.ndarray:
    if content_type not in DECODERS:
        raise UnsupportedFormatError(content_type)
    array = DECODERS[content_type](body)
    return array.astype(np.float32) if content_type in UTF8_TYPES else array


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


@dataclass(frozen=True)
class _Body:
    """The container's Response for a default output_fn: its body and media type, status 200."""

    data: str | bytes
    mimetype: str
    status_code: int = 200

    def get_data(self) -> bytes:
        return self.data.encode() if isinstance(self.data, str) else self.data


def default_output_fn(prediction: Any, accept: str) -> _Body:
    if accept not in ENCODERS:
        raise UnsupportedFormatError(accept)
    return _Body(ENCODERS[accept](prediction), accept)


# ------------------------------------------------------------------------------------------ the chain


def content_type_header(mimetype: str) -> str:
    """Flask's Content-Type for a response mimetype: text types (and a few others) get a charset."""
    if (
        mimetype.startswith("text/")
        or mimetype.endswith("+xml")
        or mimetype in ("application/xml", "application/javascript")
    ):
        return f"{mimetype}; charset=utf-8"
    return mimetype


def _one_line(exc: BaseException) -> str:
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first.strip().rstrip(':')}" if first else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class HandlerChain:
    """One entry point module and the model its model_fn loaded, answering requests as the container does."""

    def __init__(self, module: ModuleType, default_accept: str = JSON) -> None:
        self.module = module
        self.default_accept = default_accept
        self.transform_fn = getattr(module, "transform_fn", None)
        defined = [name for name in HANDLERS if getattr(module, name, None) is not None]
        if self.transform_fn is not None and defined:
            raise ChainError(
                f"{module.__name__} defines transform_fn and {', '.join(defined)}: the scikit-learn container "
                "refuses to start with both, so define one or the other."
            )
        self.input_fn = getattr(module, "input_fn", None) or default_input_fn
        self.predict_fn = getattr(module, "predict_fn", None) or default_predict_fn
        self.output_fn = getattr(module, "output_fn", None) or default_output_fn
        self.model: Any = None

    def load(self, model_dir: str) -> None:
        model_fn = getattr(self.module, "model_fn", None)
        if model_fn is None:
            raise ChainError(f"{self.module.__name__} defines no model_fn: the scikit-learn container has no default.")
        self.model = model_fn(model_dir)

    def names(self) -> str:
        """The handlers in use, for the log: which ones are the entry point's and which the container's."""
        if self.transform_fn is not None:
            return "model_fn, transform_fn"
        own = [name for name in HANDLERS if getattr(self.module, name, None) is not None]
        return (
            "model_fn" + "".join(f", {name}" for name in own) + (" + the container's defaults" if len(own) < 3 else "")
        )

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> ContainerAnswer:
        """One request, as the container's Flask worker handles it."""
        content_type = content_type or JSON
        if not accept or accept == ANY:
            accept = self.default_accept
        content: str | bytes = body.decode("utf-8", "replace") if content_type in UTF8_TYPES else body
        try:
            if self.transform_fn is not None:
                result = self._call("transform_fn", self.transform_fn, self.model, content, content_type, accept)
            else:
                data = self._call("input_fn", self.input_fn, content, content_type)
                prediction = self._call("predict_fn", self.predict_fn, data, self.model)
                result = self._call("output_fn", self.output_fn, prediction, accept)
            return _as_answer(result)
        except _HandlerFailed as failure:
            return ContainerAnswer(500, failure.answer.encode(), content_type_header("text/plain"), failure.sentence)

    def _call(self, name: str, handler: Callable[..., Any], *args: Any) -> Any:
        try:
            return handler(*args)
        except Exception as exc:  # the container wraps every handler: whatever it raises is a 500
            whose = "the container's default" if handler.__module__ == __name__ else self.module.__name__
            # The exception's text is for the log: it can name Python's own internals ("use
            # sys.set_int_max_str_digits()" for a 5,000-digit integer) or echo the request. The container
            # answers a 500 with Flask's generic page and logs the traceback; the answer here names the
            # handler that failed and where the reason is.
            raise _HandlerFailed(
                f"{name} ({whose}) raised {_one_line(exc)}.",
                f"{name} ({whose}) failed on this request; the endpoint's log has the reason.",
            ) from exc


class _HandlerFailed(Exception):
    """A 500: ``sentence`` says why (for the log), ``answer`` is what the client is told."""

    def __init__(self, sentence: str, answer: str | None = None) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.answer = answer if answer is not None else sentence


def _as_answer(result: Any) -> ContainerAnswer:
    """A handler's return value as Flask (under the container's Transformer) makes a response of it."""
    if isinstance(result, tuple):  # the Transformer turns (body, mimetype) into a 200 of its Response class
        if len(result) < 2:
            raise _HandlerFailed("the handlers returned a tuple without a content type: return (body, content type).")
        return _answer(200, result[0], result[1] or JSON)
    status = getattr(result, "status_code", None)
    if isinstance(status, int) and callable(getattr(result, "get_data", None)):
        return _answer(status, result.get_data(), getattr(result, "mimetype", None) or "text/html")
    if isinstance(result, str | bytes):
        return _answer(200, result, "text/html")
    if isinstance(result, dict):
        return _answer(200, json.dumps(result), JSON)
    raise _HandlerFailed(
        f"the handlers returned a {type(result).__name__}, which is no response: return the container's "
        "Response, a (body, content type) tuple, or text."
    )


def _answer(status: int, body: Any, mimetype: str) -> ContainerAnswer:
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        raise _HandlerFailed(f"the handlers returned a body of type {type(body).__name__}, not text or bytes.")
    return ContainerAnswer(status, body, content_type_header(mimetype))
