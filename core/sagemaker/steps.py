"""Which step of the compiled pipeline definition is which of the five steps users see.

The SDK expands RegisterModel into steps it names itself (today `sklearn-RepackModel`, a Training step, and
`Register-RegisterModel`); the names are read from the definition, not assumed, so a repack that fails is
shown as a failed Register whatever the SDK calls it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from core import spec


def _walk(steps: Any, branch: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every step of a definition with the branch it sits in (None: the top level); what is not shaped
    like a step (a definition read back from AWS may be anything) is passed over."""
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        yield step, branch
        arguments = step.get("Arguments")
        if step.get("Type") == "Condition" and isinstance(arguments, dict):
            for key in ("IfSteps", "ElseSteps"):
                yield from _walk(arguments.get(key), f"{step.get('Name')}.{key}")


def display_names(definition: str | dict[str, Any]) -> dict[str, str]:
    """Each step name of the definition -> the user-facing step it belongs to.

    The four top-level steps keep their names; every step the gate's if-branch runs (the repack and the
    registration) is part of Register.
    """
    data = json.loads(definition) if isinstance(definition, str) else definition
    folded: dict[str, str] = {}
    for step, branch in _walk(data.get("Steps") if isinstance(data, dict) else None, None):
        name = step.get("Name")
        if not isinstance(name, str):
            continue
        if name in spec.STEP_NAMES and branch is None:
            folded[name] = name
        elif branch == f"{spec.CHECK_R2}.IfSteps":
            folded[name] = spec.REGISTER
    return folded


def fold(name: str, names: dict[str, str]) -> str | None:
    """The user-facing step of a step record, or None for a step that is none of ours.

    A name the definition does not know (an execution of an older definition) is placed by the rule the
    definition follows: only the gate's if-branch adds steps beyond the four top-level ones.
    """
    if name in names:
        return names[name]
    if name in spec.STEP_NAMES:
        return name
    return spec.REGISTER if name else None
