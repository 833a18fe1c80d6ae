"""Shared fixtures: a temporary home for the local backend, and cleanup of every process a test starts."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from core.local.processes import ProcessIdentity, is_alive

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "core" / "data" / "california_housing.csv.gz"

# The lesson's entry point: model_fn alone, so SageMaker's container decodes, predicts and encodes by itself
# (and squeezes a one-row CSV body to 1-D). The local server and the container must fail it the same way.
LESSON_ENTRY_POINT = """
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""

# No test may reach AWS, nor read the developer's own settings. Dummy credentials, no instance-metadata
# lookups (link-local network calls), and an endpoint where nothing listens: a call that escapes moto
# fails here, at once, instead of going out. The moto fixtures point AWS_ENDPOINT_URL at their server.
for _variable in list(os.environ):
    # Anything that could point boto3 elsewhere (per-service endpoints, container or web-identity
    # credentials) or change this project's settings.
    if _variable.startswith(("AWS_", "HOUSING_TUI_", "AMAZON_")) or _variable == "SAGEMAKER_USER_CONFIG_OVERRIDE":
        os.environ.pop(_variable)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "HOUSING_TUI_CONFIG": "/nonexistent/housing-tui/config.toml",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
)


def kill_recorded_processes(home: Path) -> None:
    """End every runner and endpoint server recorded in a home, with their children: each leads its own
    process group (session), so killing the group takes the step scripts along."""
    rows: list = []
    # A test may have damaged the database on purpose: then its backup holds the processes recorded.
    for database in (home / "state.db", home / "state.db.bak"):
        if not database.exists():
            continue
        try:
            with sqlite3.connect(database) as db:
                rows += db.execute(
                    "SELECT runner_pid, runner_start, runner_boot FROM executions WHERE runner_pid IS NOT NULL"
                ).fetchall()
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if "endpoints" in tables:
                    rows += db.execute(
                        "SELECT server_pid, server_start, server_boot FROM endpoints WHERE server_pid IS NOT NULL"
                    ).fetchall()
            break
        except sqlite3.DatabaseError:
            continue
    for pid, start, boot in rows:
        if is_alive(ProcessIdentity(pid, start, boot)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def home_with_runs(home: Path, seeds: tuple[int, ...] = (42, 123)):
    """A home where runs with these split seeds (threshold 0.5, started together) have registered their
    versions; every runner and endpoint server recorded in it is ended afterwards, pass or fail."""
    from core.local.backend import LocalBackend
    from core.spec import RunParameters
    from core.waiting import wait_for_execution

    backend = LocalBackend(home)
    try:
        started = [backend.start_run(RunParameters(r2_threshold=0.5, split_seed=seed)) for seed in seeds]
        assert all(wait_for_execution(backend, e.arn, timeout=120).status == "Succeeded" for e in started)
        yield backend
    finally:
        kill_recorded_processes(home)


@pytest.fixture(autouse=True)
def _entry_point_module_restored():
    """The local server imports a model's code/entry_point.py as the module entry_point, as the container
    does; a test that loads one in-process must not leave it in place of this project's for later tests."""
    before = sys.modules.get("entry_point")
    yield
    if before is None:
        sys.modules.pop("entry_point", None)
    else:
        sys.modules["entry_point"] = before


@pytest.fixture
def home(tmp_path: Path):
    """An empty home folder; runners started in it are killed at teardown, pass or fail."""
    folder = tmp_path / "home"
    yield folder
    kill_recorded_processes(folder)


@pytest.fixture
def backend(home: Path):
    from core.local.backend import LocalBackend

    return LocalBackend(home)


# The AWS backend's fixtures (moto server, the SageMaker stand-in), for tests/sagemaker and tests/contract.
from tests.aws import aws, moto_server, sagemaker_backend, sagemaker_clients, simulator  # noqa: E402, F401
