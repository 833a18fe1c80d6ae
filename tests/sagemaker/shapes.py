"""Hypothesis strategies for the answers an AWS operation may give, built from botocore's own service model.

`Answers(hints).output(operation_model)` draws a response dict that botocore's Stubber accepts for that
operation: required members always, optional ones present or absent; strings of every kind the model
allows (enum values, one SageMaker may add tomorrow, empty, unicode, an HTML page, 10 KB); numbers within
the model's bounds; timestamps with a time zone; a streaming payload as the StreamingBody botocore hands
over. Lists stay short and nesting shallow, so an example is small and a test fast.

`hints` maps a member name (e.g. "StepName"), or an operation's member ("GetObject.Body"), to values that
take the backend further than random text would (a step named Evaluate, an S3 URI, a JSON document): a
hinted member is present three times in four, and then holds a hinted value two times in three. A member
named in `forced` is always present with a hinted value: a test that is about a deep path (the gate's
evaluation.json) gets there every time, while the other members vary.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import OperationModel, Shape
from botocore.response import StreamingBody
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

MAX_DEPTH = 3  # below this, structures carry only their required members and lists are as short as allowed
MAX_LIST = 2
MAX_TEXT = 12_000  # a string the model leaves unbounded is at most this long here

HTML_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>503 Service Unavailable</title>\n<h1>Service Unavailable</h1>\n"
    "<p>The server is temporarily unable to service your request.</p>\n"
)
LONG_TEXT = ("Rate exceeded for this account and operation; " * 250).strip()  # about 11 KB on one line
ODD_STRINGS = [
    "",
    " ",
    "None",
    "null",
    "NaN",
    "-1",
    "1e309",
    "line one\nline two",
    "tab\there",
    "quote ' and \" and \\",
    "Ωmega 🚀 ünïcode",
    "\x00\x1b[31mred",
    "<b>bold</b>",
    HTML_PAGE,
    LONG_TEXT,
]
TOMORROWS_ENUM_VALUES = ["Paused", "CompletedWithFailures", "Archived", "PendingReview"]
TIME_ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
INT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _fit(low: int, high: int) -> Callable[[str], str]:
    """Cut or pad a string to the length the model allows."""

    def fit(text: str) -> str:
        text = text[:high]
        return text + "x" * (low - len(text))

    return fit


_ABSENT = object()  # an optional member left out


class Answers:
    """Strategies for operation outputs; one instance caches the strategy of each shape it built."""

    def __init__(
        self,
        hints: Mapping[str, SearchStrategy[Any]] | None = None,
        forced: frozenset[str] = frozenset(),
        max_depth: int = MAX_DEPTH,
    ) -> None:
        self.hints = dict(hints or {})
        self.forced = forced
        self.max_depth = max_depth
        self._cache: dict[tuple[str, int, str | None], SearchStrategy[Any]] = {}
        self._operations: dict[str, Answers] = {}

    def output(self, operation: OperationModel) -> SearchStrategy[dict[str, Any]]:
        """A whole response of `operation`; a blob payload (S3 GetObject, InvokeEndpoint) as a StreamingBody."""
        shape = operation.output_shape
        if shape is None:
            return st.just({})
        prefix = f"{operation.name}."
        own = {k.removeprefix(prefix): v for k, v in self.hints.items() if k.startswith(prefix)}
        if own:  # this operation's hints win over the general ones; its strategies are cached apart
            if operation.name not in self._operations:
                self._operations[operation.name] = Answers({**self.hints, **own}, self.forced, self.max_depth)
            return self._operations[operation.name]._payload(operation, shape)
        return self._payload(operation, shape)

    def _payload(self, operation: OperationModel, shape: Shape) -> SearchStrategy[dict[str, Any]]:
        strategy = self.shape(shape)
        payload = shape.serialization.get("payload")
        if payload and shape.members[payload].type_name == "blob":
            return strategy.map(lambda response: _streamed(response, payload))
        return strategy

    def shape(self, shape: Shape, depth: int = 0, member: str | None = None) -> SearchStrategy[Any]:
        key = (shape.name, min(depth, self.max_depth), member)
        if key not in self._cache:
            self._cache[key] = self._build(shape, depth, member)
        return self._cache[key]

    def _build(self, shape: Shape, depth: int, member: str | None) -> SearchStrategy[Any]:
        if depth > self.max_depth + 8:
            raise RecursionError(f"{shape.name} requires itself; the strategy cannot end")
        kind = shape.type_name
        generic: SearchStrategy[Any]
        if kind == "structure":
            generic = self._structure(shape, depth)
        elif kind == "list":
            low = shape.metadata.get("min", 0)
            high = low if depth >= self.max_depth else max(low, min(shape.metadata.get("max", MAX_LIST), MAX_LIST))
            generic = st.lists(self.shape(shape.member, depth + 1), min_size=low, max_size=high)
        elif kind == "map":
            high = 0 if depth >= self.max_depth else 2
            generic = st.dictionaries(
                self.shape(shape.key, depth + 1), self.shape(shape.value, depth + 1), max_size=high
            )
        elif kind == "string":
            generic = self._string(shape)
        elif kind in INT_BOUNDS:
            low, high = INT_BOUNDS[kind]
            low, high = int(shape.metadata.get("min", low)), int(shape.metadata.get("max", high))
            generic = st.one_of(st.sampled_from(sorted({low, high, max(low, min(high, 0))})), st.integers(low, high))
        elif kind in ("float", "double"):
            generic = st.floats(
                min_value=shape.metadata.get("min"),
                max_value=shape.metadata.get("max"),
                allow_nan=False,
                allow_infinity=False,
            )
        elif kind == "boolean":
            generic = st.booleans()
        elif kind == "timestamp":
            generic = st.datetimes(
                min_value=dt.datetime(1970, 1, 2),
                max_value=dt.datetime(2200, 1, 1),
                timezones=st.sampled_from(TIME_ZONES),
            )
        elif kind == "blob":
            generic = st.one_of(st.binary(max_size=64), st.sampled_from([s.encode() for s in ODD_STRINGS]))
        else:
            raise NotImplementedError(f"no strategy for {kind} shapes ({shape.name})")
        hint = self.hints.get(member) if member is not None else None
        if hint is None:
            return generic
        if kind == "string":  # a hint is plausible text; the model's length limits still hold
            hint = hint.map(_fit(int(shape.metadata.get("min", 0)), int(shape.metadata.get("max", MAX_TEXT))))
        return hint if member in self.forced else st.one_of(hint, hint, generic)

    def _structure(self, shape: Shape, depth: int) -> SearchStrategy[dict[str, Any]]:
        if getattr(shape, "is_document_type", False):
            return st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=2)
        # Below the depth limit only required members are built, so a shape that contains itself ends.
        deep = depth >= self.max_depth
        union = getattr(shape, "is_tagged_union", False)  # exactly one member, none of them required
        names = [n for n in shape.members if not deep or n in shape.required_members]
        names = list(shape.members)[: 1 if deep else None] if union else names
        members = {name: self.shape(shape.members[name], depth + 1, name) for name in names}
        if union:
            return st.one_of([st.fixed_dictionaries({name: s}) for name, s in members.items()])
        required = {name: s for name, s in members.items() if name in shape.required_members}
        optional = {n: s for n, s in members.items() if n not in required}
        hinted = {
            n: s if n in self.forced else st.one_of(st.just(_ABSENT), s, s, s)
            for n, s in optional.items()
            if n in self.hints
        }
        optional = {n: s for n, s in optional.items() if n not in hinted}
        drawn = st.fixed_dictionaries({**required, **hinted}, optional=optional)
        return drawn.map(lambda d: {k: v for k, v in d.items() if v is not _ABSENT}) if hinted else drawn

    @staticmethod
    def _string(shape: Shape) -> SearchStrategy[str]:
        if shape.enum:
            tomorrow = st.one_of(
                st.sampled_from(TOMORROWS_ENUM_VALUES), st.from_regex(r"[A-Z][a-z]{2,9}[A-Z][a-z]{2,9}", fullmatch=True)
            )
            return st.one_of(st.sampled_from(list(shape.enum)), tomorrow)
        low = int(shape.metadata.get("min", 0))
        high = int(shape.metadata.get("max", MAX_TEXT))
        text = st.one_of(st.text(max_size=min(high, 24)), st.sampled_from(ODD_STRINGS))
        return text.map(_fit(low, high))


def _streamed(response: dict[str, Any], payload: str) -> dict[str, Any]:
    body = response.get(payload)
    if body is None:
        return response
    data = body.encode() if isinstance(body, str) else bytes(body)
    return {**response, payload: StreamingBody(io.BytesIO(data), len(data))}
