"""The local backend's state stays true to what happened: runners that die, databases that break."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from core.local.backend import LocalBackend
from core.models import ExecutionStatus
from core.spec import RunParameters
from core.waiting import wait_for_execution
from tests.local.test_runner_liveness import wait_until


def private_files(home: Path) -> list[str]:
    """Files under the home that others than the owner can read, and the home's own mode if it is open."""
    found = [f"{path}: {stat.S_IMODE(path.stat().st_mode):o}" for path in home.rglob("*") if path.is_file()]
    exposed = [f for f in found if int(f.rsplit(": ", 1)[1], 8) & 0o077]
    if stat.S_IMODE(home.stat().st_mode) != 0o700:
        exposed.append(f"{home}: {stat.S_IMODE(home.stat().st_mode):o}")
    return exposed


def test_the_home_and_everything_a_run_and_an_endpoint_write_are_private(home: Path) -> None:
    backend = LocalBackend(home)
    execution = backend.start_run(RunParameters(r2_threshold=0.5))
    assert wait_for_execution(backend, execution.arn, timeout=120).status is ExecutionStatus.SUCCEEDED
    [version] = backend.list_versions()
    backend.deploy(version.arn, "private", 1024, 1, force=True)
    try:
        written = [p for p in home.rglob("*") if p.is_file()]
        # The database, the splits, the model archives, every log: there are such files, and none is open.
        names = {p.name for p in written}
        assert {"state.db", "train.csv", "test.csv", "model.tar.gz", "Preprocess.log", "server.log"} <= names
        assert private_files(home) == []
    finally:
        backend.delete_endpoint("private")


def test_a_home_an_older_version_left_open_is_made_private(home: Path) -> None:
    LocalBackend(home)
    (home / "executions").mkdir(mode=0o755)
    (home / "executions" / "old.log").write_text("x")
    (home / "executions" / "old.log").chmod(0o644)
    (home / "state.db").chmod(0o644)
    home.chmod(0o755)
    LocalBackend(home)
    assert private_files(home) == []


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "random bytes":
        path.write_bytes(os.urandom(len(data)))
    elif how == "truncated":
        path.write_bytes(data[:1000])
    elif how == "bad header":
        path.write_bytes(b"SQLite format 2\x00" + data[16:])
    elif how == "a text file":
        path.write_text("backend = 'local'\n" * 50)


@pytest.mark.parametrize("how", ["random bytes", "truncated", "bad header", "a text file"])
def test_a_damaged_database_is_one_sentence_with_the_way_out(home: Path, capsys, how: str) -> None:
    from core.local.registry import LocalRegistry
    from tests.unit.test_registry import register
    from tui.cli import main

    backend = LocalBackend(home)
    register(LocalRegistry(backend.store))
    for name in ("state.db-wal", "state.db-shm"):
        (home / name).unlink(missing_ok=True)
    assert backend.store.backup() == home / "state.db.bak"
    corrupt(home / "state.db", how)
    for command in (["executions"], ["versions", "--json"], ["endpoints"], ["run"], ["approve", "1"]):
        capsys.readouterr()
        code = main(["--home", str(home), *command])
        err = capsys.readouterr().err.strip()
        assert code == 2, (command, err)
        assert err.startswith(f"housing-tui: error: the local database {home / 'state.db'} ")
        assert f"restore the backup {home / 'state.db.bak'}" in err or "cannot be used" in err
        assert "\n" not in err and "Traceback" not in err and "sqlite3" not in err and "Error:" not in err
    # doctor says which check failed instead of stopping at the database.
    assert main(["--home", str(home), "doctor", "--json"]) == 1
    checks = {c["Name"]: c for c in json.loads(capsys.readouterr().out)["Checks"]}
    assert checks["database"]["Status"] == "fail" and checks["bundled data"]["Status"] == "ok"
    # The way out works: the backup holds the version.
    (home / "state.db").write_bytes((home / "state.db.bak").read_bytes())
    assert [v.version for v in LocalBackend(home).list_versions()] == [1]


def test_the_backup_is_taken_before_a_migration_and_keeps_the_last_good_copy(home: Path) -> None:
    import sqlite3

    from core.local.store import Store

    store = Store(home)
    assert not (home / "state.db.bak").exists()  # a new home has nothing to keep yet
    with store.connect() as db:
        db.execute("PRAGMA user_version=1")  # as an older version of the tool left it
    Store(home)
    with sqlite3.connect(home / "state.db.bak") as copy:
        assert copy.execute("PRAGMA user_version").fetchone()[0] == 1
    good = (home / "state.db.bak").read_bytes()
    corrupt(home / "state.db", "truncated")
    assert store.backup() is None
    assert (home / "state.db.bak").read_bytes() == good


def test_a_hung_local_endpoint_costs_one_attempt_and_the_timeout_the_user_set() -> None:
    import socket

    from core.runtime import EndpointError, invoke, local_runtime_client

    # A server that accepts connections and never answers, as a hung endpoint would.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(EndpointError) as caught:
            invoke(local_runtime_client(url, timeout=1.0), "hung", b"1,2,3,4,5,6,7,8\n")
    finally:
        stop.set()
        thread.join()
        listener.close()
        for connection in accepted:
            connection.close()
    assert len(accepted) == 1  # botocore's max_attempts 1 meant a retry: two connections, twice the wait
    assert str(caught.value).startswith("endpoint hung did not answer (Read timeout on endpoint URL")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["deploy", "arn:aws:sagemaker:local:000000000000:model-package/californiahousing/1", "--endpoint", "nl\n"],
            "endpoint name 'nl\\n' breaks SageMaker's name rule",
        ),
        (["--group", "grp\n", "versions"], "model package group 'grp\\n' breaks SageMaker's name rule"),
        (["approve", "²"], "'²' is neither a model package ARN nor a version number"),
        (
            ["steps", "arn:aws:sagemaker:local:000000000000:pipeline/p/execution/abc\nx"],
            "is not a pipeline execution ARN",
        ),
    ],
)
def test_names_and_numbers_are_whole_string_matches(home: Path, capsys, argv: list[str], message: str) -> None:
    from tui.cli import main

    assert main(["--home", str(home), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 6 MB filesystem of its own (tmpfs), unmounted afterwards; its runners are ended first."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    # No skip: a full disk is only real on a filesystem that fills, and CI's machine lets tests mount one.
    assert mounted.returncode == 0, f"the full-disk test needs to mount a 6 MB tmpfs: {mounted.stderr.strip()}"
    try:
        yield mount_point
    finally:
        from tests.conftest import kill_recorded_processes

        kill_recorded_processes(mount_point / "home")
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all of the disk's free space but `leave` bytes."""
    free = os.statvfs(disk)
    filler = disk / f"filler-{len(list(disk.glob('filler-*')))}"
    with open(filler, "wb") as file:
        remaining = free.f_bavail * free.f_frsize - leave
        while remaining > 0:
            chunk = min(remaining, 2**20)
            try:
                file.write(b"\0" * chunk)
                file.flush()
            except OSError:
                break
            remaining -= chunk
    return filler


def test_a_full_disk_is_the_reason_and_reading_still_works(small_disk: Path, capsys) -> None:
    from tui.cli import main

    home = small_disk / "home"
    backend = LocalBackend(home)
    fill(small_disk, leave=400 * 1024)  # room for the run's records, not for the splits Preprocess writes
    execution = backend.start_run(RunParameters(r2_threshold=0.5))
    wait_until(lambda: not backend.get_execution(execution.arn).status.is_active, "the run to end")
    final = backend.get_execution(execution.arn)
    assert final.status is ExecutionStatus.FAILED
    assert f"no space left on the device holding {home}: " in final.failure_reason
    assert "killed, crashed" not in final.failure_reason and "disk I/O error" not in final.failure_reason
    # Completely full now: every read-only command still answers.
    fill(small_disk, leave=0)
    shown = {}
    for command in (["executions"], ["steps", execution.execution_id], ["versions"], ["endpoints"]):
        capsys.readouterr()
        assert main(["--home", str(home), *command]) == 0, capsys.readouterr().err
        shown[command[0]] = capsys.readouterr().out
    [reason] = [line for line in shown["steps"].splitlines() if line.startswith("reason: ")]
    assert f"no space left on the device holding {home}: " in reason
    assert main(["--home", str(home), "run"]) == 2
    assert f"no space left on the device holding {home}" in capsys.readouterr().err
