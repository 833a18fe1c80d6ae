"""Reading AWS answers defensively: a member the model calls optional may be missing, an enum may gain a
value after this code was written, a number may come as text that is no number."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TypeVar

Status = TypeVar("Status", bound=StrEnum)


def status_of(kind: type[Status], raw: object) -> Status:
    """`raw` as a member of `kind`. A value SageMaker added later (e.g. CompletedWithFailures), or none at all
    ("Unknown"), is kept as spelled so the user sees it; it equals no member, so it is neither running nor
    any state the code acts on."""
    text = raw if isinstance(raw, str) and raw.strip() else "Unknown"
    try:
        return kind(text)
    except ValueError:
        member = str.__new__(kind, text)
        member._name_ = text
        member._value_ = text
        return member


def finite(raw: object) -> float | None:
    """A number given as a string or a number (a pipeline parameter, a metric); None if it is none."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None
