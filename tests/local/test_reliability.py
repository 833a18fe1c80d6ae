"""The local backend's state stays true to what happened: runners that die, databases that break."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from core.local import backend as backend_module
from core.local.backend import LocalBackend
from core.local.executions import ExecutionRecords
from core.local.processes import identify
from core.local.runner import Runner, keep_heartbeat
from core.models import ExecutionStatus, StepStatus
from core.spec import RunParameters
from core.waiting import wait_for_execution


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


class ThisProcess:
    pid = os.getpid()


def dead_process() -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["true"])
    process.wait()
    return process


def test_a_runner_killed_after_register_commits_leaves_a_succeeded_run(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run is started as usual but its runner is this process, so the kill lands exactly between
    # Register's commit and the runner's last word.
    monkeypatch.setattr(backend_module, "spawn_detached", lambda *args, **kwargs: ThisProcess())
    backend = LocalBackend(home)
    execution = backend.start_run(RunParameters(r2_threshold=0.5))
    original = ExecutionRecords.finish

    def killed_before_its_own_finish(self, arn, status, failure_reason=None, db=None):
        if db is None:
            raise Killed()
        return original(self, arn, status, failure_reason, db)

    monkeypatch.setattr(ExecutionRecords, "finish", killed_before_its_own_finish)
    runner = Runner(home, execution.arn)
    done = threading.Event()  # the heartbeat a runner process keeps, so a slow machine does not fail the run
    beat = threading.Thread(target=keep_heartbeat, args=(backend.executions, execution.arn, done), daemon=True)
    beat.start()
    try:
        with pytest.raises(Killed):
            runner.run()
    finally:
        done.set()
        beat.join()
    monkeypatch.setattr(ExecutionRecords, "finish", original)

    # Someone looks later: the runner is gone, and the run registered its version.
    backend.executions.set_runner(execution.arn, identify(dead_process().pid))
    final = backend.get_execution(execution.arn)
    [version] = backend.list_versions()
    assert final.status is ExecutionStatus.SUCCEEDED and final.failure_reason is None
    register = {s.name: s for s in backend.list_steps(execution.arn)}["Register"]
    assert register.status is StepStatus.SUCCEEDED and register.model_package_arn == version.arn


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
    import threading

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


def wait_until(condition, what: str, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def executing(backend: LocalBackend, arn: str, step: str) -> bool:
    found = {s.name: s for s in backend.list_steps(arn)}.get(step)
    return found is not None and found.status is StepStatus.EXECUTING


def test_a_stopped_runner_reads_failed_with_the_time_of_its_last_heartbeat(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    from core.local import executions

    monkeypatch.setattr(executions, "HEARTBEAT_TIMEOUT", 3.0)  # the bound, shortened for the test
    backend = LocalBackend(home)
    execution = backend.start_run(RunParameters(r2_threshold=0.0))
    wait_until(lambda: executing(backend, execution.arn, "Train"), "Train to start")
    runner = backend.executions.runner(execution.arn)
    os.kill(runner.pid, signal.SIGSTOP)  # alive, but does nothing: before, it stayed Executing forever
    stopped_at = time.time()
    wait_until(lambda: not backend.get_execution(execution.arn).status.is_active, "the verdict", timeout=60)
    final = backend.get_execution(execution.arn)
    assert final.status is ExecutionStatus.FAILED
    assert f"the local runner (pid {runner.pid}) has sent no heartbeat since " in final.failure_reason
    # It ended when it went silent (its last heartbeat), not when somebody looked, 3 s and more later.
    assert final.last_modified <= stopped_at
    train = {s.name: s for s in backend.list_steps(execution.arn)}["Train"]
    assert train.status is StepStatus.FAILED and train.end_time == final.last_modified
    # Declared dead, it was ended: it cannot resume and write over the verdict.
    wait_until(lambda: not executions.is_alive(runner), "the runner to be ended", timeout=10)


def test_a_killed_runner_ends_at_its_last_heartbeat_not_when_someone_looks(home: Path) -> None:
    import signal
    import time

    backend = LocalBackend(home)
    execution = backend.start_run(RunParameters(r2_threshold=0.0))
    wait_until(lambda: executing(backend, execution.arn, "Train"), "Train to start")
    runner = backend.executions.runner(execution.arn)
    os.killpg(runner.pid, signal.SIGKILL)
    killed_at = time.time()
    time.sleep(3.0)  # nobody looks for a while
    final = backend.get_execution(execution.arn)
    assert final.status is ExecutionStatus.FAILED and "ended without finishing" in final.failure_reason
    assert final.last_modified <= killed_at  # before: the moment of this look, 3 s later


def test_a_database_of_the_previous_version_is_migrated_after_a_backup(home: Path) -> None:
    import sqlite3

    from core.local.store import Store

    Store(home)
    with sqlite3.connect(home / "state.db") as db:  # the heartbeat columns did not exist in version 2
        db.execute("ALTER TABLE executions DROP COLUMN heartbeat_monotonic")
        db.execute("ALTER TABLE executions DROP COLUMN heartbeat")
        db.execute("PRAGMA user_version=2")
    backend = LocalBackend(home)
    with sqlite3.connect(home / "state.db.bak") as copy:
        assert copy.execute("PRAGMA user_version").fetchone()[0] == 2
    execution = backend.start_run(RunParameters(r2_threshold=0.5))
    assert wait_for_execution(backend, execution.arn, timeout=120).status is ExecutionStatus.SUCCEEDED


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
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not let tests mount a small filesystem: {mounted.stderr.strip()}")
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
