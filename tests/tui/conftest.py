"""Fixtures for the application's tests: UTC rendering, a config file in tmp, and waiting on conditions."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

WAIT_SECONDS = 60.0


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):
    """Absolute times render the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The settings file the app reads and writes (the threshold), never the user's."""
    path = tmp_path / "config" / "config.toml"
    monkeypatch.setenv("HOUSING_TUI_CONFIG", str(path))
    for variable in [v for v in os.environ if v.startswith("HOUSING_TUI_") and v != "HOUSING_TUI_CONFIG"]:
        monkeypatch.delenv(variable)
    return path


def scenario(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop (no pytest async plugin needed); fixtures pass through."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def wait_for(pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Poll `condition` between pauses of the app until it is true; fail saying `what` never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await pilot.pause(0.05)


def notices(app) -> list[str]:
    """The text of every notice the app has shown and not yet dismissed."""
    return [str(notification.message) for notification in app._notifications]
