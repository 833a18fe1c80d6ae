"""Shared fixtures: a temporary home for the local backend, and cleanup of every process a test starts."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from core.local.processes import ProcessIdentity, is_alive

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "core" / "data" / "california_housing.csv.gz"


def kill_recorded_runners(home: Path) -> None:
    """End every runner recorded in a home, with its step scripts (the runner leads their process group)."""
    database = home / "state.db"
    if not database.exists():
        return
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT runner_pid, runner_start, runner_boot FROM executions WHERE runner_pid IS NOT NULL"
        ).fetchall()
    for pid, start, boot in rows:
        if is_alive(ProcessIdentity(pid, start, boot)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def home(tmp_path: Path):
    """An empty home folder; runners started in it are killed at teardown, pass or fail."""
    folder = tmp_path / "home"
    yield folder
    kill_recorded_runners(folder)


@pytest.fixture
def backend(home: Path):
    from core.local.backend import LocalBackend

    return LocalBackend(home)
