"""Form values checked as they are typed, with the core's own rules and sentences.

Each parser turns the text of one field into its value or raises `UserError` with one sentence that says
what is wrong and what would do; `Checked` adapts a parser to Textual's `Validator`, so an `Input` shows
the sentence while the user types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from textual.validation import ValidationResult, Validator

from core import serverless, spec
from core.errors import UserError

MAX_SAMPLE_ROWS = 10_000


def _number(text: str, what: str, example: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        shown = text.strip() or "an empty value"
        raise UserError(f"{what}: {shown!r} is not a number; use a value such as {example}") from None
    if not math.isfinite(value):
        raise UserError(f"{what}: {text.strip()} is not a finite number; use a value such as {example}")
    return value


def _whole(text: str, what: str, example: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        shown = text.strip() or "an empty value"
        raise UserError(f"{what}: {shown!r} is not a whole number; use a value such as {example}") from None


def parse_threshold(text: str) -> float:
    return spec.validate_threshold(_number(text, "threshold", "0.6"))


def parse_test_size(text: str) -> float:
    value = _number(text, "test size", "0.2")
    spec.RunParameters(test_size=value)  # the core's rule and sentence
    return value


def parse_split_seed(text: str) -> int:
    value = _whole(text, "split seed", "42")
    spec.RunParameters(split_seed=value)
    return value


def parse_min_improvement(text: str) -> float | None:
    """Empty: the champion gate is off."""
    if not text.strip():
        return None
    value = _number(text, "min improvement", "0.01 (or leave it empty)")
    spec.RunParameters(min_improvement=value)
    return value


def parse_endpoint_name(text: str) -> str:
    return serverless.validate_endpoint_name(text.strip())


def parse_max_concurrency(text: str) -> int:
    return serverless.validate_max_concurrency(_whole(text, "max concurrency", "5"))


def parse_sample_rows(text: str) -> int:
    value = _whole(text, "rows", "5")
    if not 1 <= value <= MAX_SAMPLE_ROWS:
        raise UserError(f"rows: {value} is outside 1..{MAX_SAMPLE_ROWS}; load fewer rows per request")
    return value


class Checked(Validator):
    """A Textual validator whose failure description is the parser's sentence."""

    def __init__(self, parse: Callable[[str], Any]) -> None:
        super().__init__()
        self.parse = parse

    def validate(self, value: str) -> ValidationResult:
        try:
            self.parse(value)
        except UserError as exc:
            return self.failure(str(exc), value)
        return self.success()
