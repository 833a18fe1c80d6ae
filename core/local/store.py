"""The local backend's state: one SQLite database (WAL) under the home folder.

Every change runs in its own `BEGIN IMMEDIATE` transaction, so concurrent runners, CLIs and the TUI
serialise their writes instead of failing, and a reader never sees half a change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id    TEXT PRIMARY KEY,
    arn             TEXT NOT NULL UNIQUE,
    pipeline_name   TEXT NOT NULL,
    status          TEXT NOT NULL,
    created         REAL NOT NULL,
    last_modified   REAL NOT NULL,
    parameters      TEXT NOT NULL,          -- JSON: SageMaker PipelineParameters by name
    run_parameters  TEXT NOT NULL,          -- JSON: RunParameters as the runner needs them
    failure_reason  TEXT,
    workdir         TEXT NOT NULL,
    runner_pid      INTEGER,
    runner_start    INTEGER,
    runner_boot     TEXT
);
CREATE INDEX IF NOT EXISTS executions_by_created ON executions (created);

CREATE TABLE IF NOT EXISTS steps (
    execution_id    TEXT NOT NULL REFERENCES executions (execution_id),
    position        INTEGER NOT NULL,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      REAL,
    end_time        REAL,
    failure_reason  TEXT,
    gate            TEXT,                   -- JSON: CheckR2's conditions and outcome
    model_package_arn TEXT,                 -- Register's result
    log_path        TEXT,
    PRIMARY KEY (execution_id, name)
);

CREATE TABLE IF NOT EXISTS model_package_groups (
    name            TEXT PRIMARY KEY,
    arn             TEXT NOT NULL UNIQUE,
    created         REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS model_packages (
    arn             TEXT PRIMARY KEY,
    group_name      TEXT NOT NULL REFERENCES model_package_groups (name),
    version         INTEGER NOT NULL,
    approval_status TEXT NOT NULL,
    approval_description TEXT,
    created         REAL NOT NULL,
    last_modified   REAL NOT NULL,
    evaluation      TEXT,                   -- JSON: the evaluation.json the version was gated on
    model_data_url  TEXT NOT NULL,
    model_sha256    TEXT NOT NULL,
    execution_arn   TEXT,
    parameters      TEXT NOT NULL,          -- JSON: the pipeline parameters it was trained with
    UNIQUE (group_name, version)
);

CREATE TABLE IF NOT EXISTS endpoints (
    name            TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    model_package_arn TEXT NOT NULL,
    model_sha256    TEXT NOT NULL,
    memory_mb       INTEGER NOT NULL,
    max_concurrency INTEGER NOT NULL,
    created         REAL NOT NULL,
    last_modified   REAL NOT NULL,
    url             TEXT,
    failure_reason  TEXT,
    folder          TEXT NOT NULL,
    pending_arn     TEXT,                   -- the version an update is loading
    pending_sha256  TEXT,
    pending_memory_mb INTEGER,
    pending_max_concurrency INTEGER,
    server_pid      INTEGER,
    server_start    INTEGER,
    server_boot     TEXT
);
"""


class Store:
    """Opens short-lived connections to the home folder's database; safe across threads and processes."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / "state.db"
        self.home.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE in `transaction`).
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change. IMMEDIATE takes the write lock up front, so read-then-write cannot race."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
