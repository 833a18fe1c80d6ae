"""Following an execution until it ends, for `run --wait` and scripts; the TUI polls on its own."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.backend import Backend
from core.models import Execution, StepRun


def wait_for_execution(
    backend: Backend,
    arn: str,
    on_step: Callable[[StepRun], None] | None = None,
    poll_seconds: float | None = None,
    timeout: float | None = None,
) -> Execution:
    """Poll until the execution ends; call on_step once for each step status seen for the first time."""
    poll_seconds = backend.poll_seconds if poll_seconds is None else poll_seconds
    seen: set[tuple[str, str]] = set()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        execution = backend.get_execution(arn)
        for step in backend.list_steps(arn):
            key = (step.name, str(step.status))
            if key not in seen:
                seen.add(key)
                if on_step:
                    on_step(step)
        if not execution.status.is_active:
            return execution
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still {execution.status} after {timeout:.0f} s")
        time.sleep(poll_seconds)
