"""The local backend's state: one SQLite database (WAL) under the home folder.

Every change runs in its own `BEGIN IMMEDIATE` transaction, so concurrent runners, CLIs and the TUI
serialise their writes instead of failing, and a reader never sees half a change.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import UserError

SCHEMA_VERSION = 3
# Changes to a database an older version created: CREATE TABLE IF NOT EXISTS leaves its tables as they were.
MIGRATIONS = {
    3: (("executions", "heartbeat", "REAL"), ("executions", "heartbeat_monotonic", "REAL")),
}
BACKUP_EVERY_SECONDS = 24 * 3600.0

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
    runner_boot     TEXT,
    heartbeat       REAL,                   -- when the runner last said it was working (time.time())
    heartbeat_monotonic REAL                -- the same moment on CLOCK_MONOTONIC, which a suspend does not advance
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

CREATE TABLE IF NOT EXISTS endpoint_locks (   -- one deploy at a time per endpoint (core/local/locks.py)
    name            TEXT PRIMARY KEY,
    owner_pid       INTEGER NOT NULL,
    owner_start     INTEGER,
    owner_boot      TEXT,
    acquired        REAL NOT NULL
);
"""


class StateError(UserError):
    """The home's database cannot be used; the message names the file and the way out."""


def describe_database_error(path: Path, exc: sqlite3.DatabaseError) -> str:
    """One sentence for any error SQLite raises, naming the file; never the exception's class."""
    text = str(exc)
    backup = backup_path(path)
    if isinstance(exc, sqlite3.OperationalError) and any(marker in text.lower() for marker in NO_SPACE_MARKERS):
        return no_space_sentence(path.parent, text) or f"the local database {path} cannot be written ({text})"
    if isinstance(exc, sqlite3.OperationalError):
        return f"the local database {path} cannot be used ({text}); check --home and its permissions"
    way_out = f"restore the backup {backup}" if backup.exists() else "start with an empty home"
    return (
        f"the local database {path} is damaged ({text}); move it aside and {way_out} "
        "(`housing-tui doctor` checks the database)"
    )


# What a full disk looks like in a script's log or an SQLite message.
NO_SPACE_MARKERS = ("no space left on", "[errno 28]", "database or disk is full", "disk i/o error")


def no_space_sentence(home: Path, evidence: str = "", nearly_full: int = 16 * 2**20) -> str | None:
    """The reason to give when the device holding the home is full, else None.

    Full means: the error says so (`evidence` holds a marker) and little is free, or next to nothing is free.
    """
    try:
        free = os.statvfs(home)
    except OSError:
        return None
    available = free.f_bavail * free.f_frsize
    said = any(marker in evidence.lower() for marker in NO_SPACE_MARKERS)
    if not ((said and available < nearly_full) or available < 2**20):
        return None
    return f"no space left on the device holding {home}: {available / 2**20:.1f} MB free; free some space and retry"


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


class Store:
    """Opens short-lived connections to the home folder's database; safe across threads and processes.

    The home is private (0700, files 0600): models, splits and logs may hold data others must not read on a
    shared host. A copy of the last good database is kept in state.db.bak: before a schema change, and at
    most once a day.
    """

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / "state.db"
        make_private_home(self.home)
        existed = self.path.exists()
        with self.connect() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        if existed and (version < SCHEMA_VERSION or self._backup_is_old()):
            self.backup()
        if version < SCHEMA_VERSION:
            with self.connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                db.executescript(SCHEMA)
                if "executions" in tables:  # an older database: bring its tables up to date
                    for target in range(version + 1, SCHEMA_VERSION + 1):
                        for table, column, kind in MIGRATIONS.get(target, ()):
                            columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                            if column not in columns:
                                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        for name in (self.path.name, self.path.name + "-wal", self.path.name + "-shm"):
            make_private(self.path.with_name(name))

    def _open(self, read_only: bool = False) -> sqlite3.Connection:
        # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE in `transaction`).
        if read_only:
            # Reads without the WAL's shared-memory file, which SQLite must create and cannot on a full disk.
            # Sound once no writer is connected (then the WAL was checkpointed into the file): a full disk
            # has no live writer that could still commit.
            db = sqlite3.connect(f"{self.path.as_uri()}?immutable=1", uri=True, isolation_level=None)
        else:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    @contextmanager
    def connect(self, writable: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection; a reading one falls back to reading the file as it is when the disk is full."""
        try:
            db = self._open()
            if not writable:
                try:
                    db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                except sqlite3.OperationalError as exc:
                    if no_space_sentence(self.home, str(exc)) is None:
                        raise
                    db.close()
                    db = self._open(read_only=True)
        except sqlite3.DatabaseError as exc:
            raise StateError(describe_database_error(self.path, exc)) from None
        try:
            yield db
        except sqlite3.IntegrityError:
            raise  # a constraint the caller expects and turns into its own sentence
        except sqlite3.DatabaseError as exc:
            raise StateError(describe_database_error(self.path, exc)) from None
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change. IMMEDIATE takes the write lock up front, so read-then-write cannot race."""
        with self.connect(writable=True) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ---- health and backups -------------------------------------------------------------------------

    def quick_check(self) -> str:
        """SQLite's quick_check: "ok", or what is wrong."""
        with self.connect() as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
        return "; ".join(str(r[0]) for r in rows[:3])

    def _backup_is_old(self) -> bool:
        try:
            return time.time() - backup_path(self.path).stat().st_mtime > BACKUP_EVERY_SECONDS
        except FileNotFoundError:
            return True

    def backup(self) -> Path | None:
        """Copy the database with SQLite's online backup API, if it is sound; the last good copy is kept."""
        target = backup_path(self.path)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            if self.quick_check() != "ok":
                return None  # keep the last good copy rather than a damaged one
            with self.connect() as source, sqlite3.connect(partial) as copy:
                source.backup(copy)
            copy.close()
            make_private(partial)
            os.replace(partial, target)
        except (StateError, sqlite3.DatabaseError, OSError):
            partial.unlink(missing_ok=True)
            return None  # a backup is a courtesy: never the reason a command fails
        return target


def make_private_home(home: Path) -> None:
    """Create the home 0700; a home an older version left readable by others is made private once."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(home.stat().st_mode)
        if mode & 0o077 and home.stat().st_uid == os.getuid():
            for folder, dirs, files in os.walk(home):
                for name in dirs:
                    make_private(Path(folder) / name, 0o700)
                for name in files:
                    make_private(Path(folder) / name)
            home.chmod(0o700)
    except OSError:
        pass  # not ours to change (a shared folder given as --home): leave it as the user set it


def make_private(path: Path, mode: int = 0o600) -> None:
    try:
        if stat.S_IMODE(path.lstat().st_mode) & 0o077 and not path.is_symlink():
            path.chmod(mode)
    except OSError:
        pass  # gone meanwhile, or not ours
