"""Checks JSON against an AWS operation's output shape from botocore's service model (the AWS CLI's JSON)."""

from __future__ import annotations

import base64
import datetime as dt
from functools import cache
from typing import Any

import botocore.session

from core.models import OURS


@cache
def output_shape(service: str, operation: str) -> Any:
    return botocore.session.get_session().get_service_model(service).operation_model(operation).output_shape


def _timestamp(value: Any) -> bool:
    try:
        dt.datetime.fromisoformat(value)
        return True
    except (TypeError, ValueError):
        return False


def _blob(value: Any) -> bool:
    try:
        base64.b64decode(value, validate=True)
        return isinstance(value, str)
    except (TypeError, ValueError):
        return False


def shape_problems(value: Any, shape: Any, path: str = "$") -> list[str]:
    """Everything in `value` that the AWS CLI could not have printed for `shape`; [] when none.

    Keys of ours are allowed only under models.OURS, whose content is ours to define.
    """
    if shape is None:  # an operation without output: everything printed must be ours
        extra = set(value) - {OURS} if isinstance(value, dict) else {"<not an object>"}
        return [f"{path}: {sorted(extra)} where the operation has no output"] if extra else []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not an object"]
        problems = [
            f"{path}.{key}: not a member of {shape.name}" for key in value if key not in shape.members and key != OURS
        ]
        problems += [
            f"{path}.{key}: required by {shape.name}, missing" for key in shape.required_members if key not in value
        ]
        if OURS in value and not isinstance(value[OURS], dict):
            problems.append(f"{path}.{OURS}: not an object")
        for key, member in shape.members.items():
            if key in value:
                problems += shape_problems(value[key], member, f"{path}.{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: not a list"]
        return [p for i, item in enumerate(value) for p in shape_problems(item, shape.member, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        return [p for k, v in value.items() for p in shape_problems(v, shape.value, f"{path}.{k}")]
    checks = {
        "string": lambda v: isinstance(v, str) and (not shape.enum or v in shape.enum),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "timestamp": _timestamp,
        "blob": _blob,
    }
    if not checks[kind](value):
        allowed = f" (one of {shape.enum})" if kind == "string" and shape.enum else ""
        return [f"{path}: {value!r} is not a {kind}{allowed}"]
    return []
