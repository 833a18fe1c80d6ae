"""Recognising our detached processes: alive, exited, zombie, or a different process under the same pid."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from core.local.processes import identify, is_alive, spawn_detached


def test_a_running_process_is_alive_and_an_exited_one_is_not(tmp_path: Path) -> None:
    process = spawn_detached([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleep.log")
    try:
        identity = identify(process.pid)
        assert is_alive(identity)
    finally:
        process.kill()
        process.wait()
    assert not is_alive(identity)


def test_a_zombie_counts_as_dead(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = identify(process.pid)
    # Not reaped yet: the kernel keeps a zombie entry, which must not look like a live runner.
    for _ in range(200):
        if Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1].startswith("Z"):
            break
        subprocess.run(["sleep", "0.02"])
    assert not is_alive(identity)
    process.wait()


def test_a_reused_pid_or_a_reboot_is_not_mistaken_for_our_process() -> None:
    me = identify(__import__("os").getpid())
    assert is_alive(me)
    assert not is_alive(dataclasses.replace(me, start_ticks=(me.start_ticks or 0) + 1))
    assert not is_alive(dataclasses.replace(me, boot_id="another-boot"))


def test_a_detached_process_writes_to_its_own_log_and_session(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    process = spawn_detached([sys.executable, "-c", "import os; print('sid', os.getsid(0) == os.getpid())"], log)
    assert process.wait(timeout=30) == 0
    assert log.read_text().strip() == "sid True"


def test_step_logs_hold_back_only_an_unfinished_character(tmp_path: Path) -> None:
    from core.local.backend import _partial_utf8_tail

    assert _partial_utf8_tail(b"abc") == 0
    assert _partial_utf8_tail("r²".encode()) == 0
    assert _partial_utf8_tail("r²".encode()[:-1]) == 1  # the lead byte of ² arrived, its tail not yet
    assert _partial_utf8_tail("€".encode()[:2]) == 2
    assert _partial_utf8_tail(b"abc\xffdef\n") == 0  # garbage inside is not held back forever
