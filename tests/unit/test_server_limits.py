"""The endpoint server against clients that misbehave on purpose (issue 10, item 11).

Each test runs a real server process on 127.0.0.1 and attacks it with a few sockets for a few seconds: a
flood of requests that each used to write a log line.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LESSON_ENTRY_POINT
from tests.unit.serving_support import (
    NAME,
    ServerProcess,
    fitted_model_bytes,
    model_archive,
    post,
    running_server,
    status_of,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return fitted_model_bytes()


def answer_then_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; fails if it keeps it open past the timeout."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open; it sent {received[:80]!r}") from None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


# ------------------------------------------------------------------------------- 11. log flood


@pytest.fixture(scope="module")
def lesson(model: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The lesson's entry point (model_fn only): the container's default JSON decoder parses the integers."""
    folder = tmp_path_factory.mktemp("lesson")
    sha = model_archive(folder / "model.tar.gz", model, entry_point=LESSON_ENTRY_POINT)
    with running_server(folder / "endpoint", folder / "model.tar.gz", sha) as server:
        yield server


HUGE_INTEGER = ("[[" + "9" * 5000 + ",1,2,3,4,5,6,7]]").encode()
INTERNALS = (b"sys.", b"set_int_max_str_digits", b"ValueError", b"Traceback", b"Exceeds the limit")


def test_answers_never_mention_python_internals(lesson: ServerProcess) -> None:
    status, body = post(lesson.port, HUGE_INTEGER, "application/json")
    assert status == 500
    assert not any(word in body for word in INTERNALS), body
    assert body.count(b"\n") == 0 and body.endswith(b".")
    status, body = post(lesson.port, HUGE_INTEGER, "application/json", f"/endpoints/{NAME}/invocations")
    error = json.loads(body)
    assert status == 424 and error["OriginalStatusCode"] == 500
    assert not any(word.decode() in error["Message"] for word in INTERNALS), error
    # The reason is in the server's log, which is where the container writes it too.
    assert "Exceeds the limit" in lesson.log()


def test_a_flood_of_client_errors_writes_a_few_lines_a_second(lesson: ServerProcess) -> None:
    lines_before = lesson.log_lines()
    sent = 0
    conn = http.client.HTTPConnection("127.0.0.1", lesson.port, timeout=30)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 2.0:
            conn.request("POST", "/invocations", body=HUGE_INTEGER, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 500
            with socket.create_connection(("127.0.0.1", lesson.port), timeout=10) as raw:
                raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # what uvicorn logs as an invalid request
                assert status_of(answer_then_close(raw)) == 400
            sent += 2
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    time.sleep(1.5)  # the "suppressed" summary of the last second is written by the next tick
    added = lesson.log_lines() - lines_before
    assert sent >= 200
    assert added <= 12 * (elapsed + 2), f"{sent} bad requests wrote {added} log lines"
    log = "".join(path.read_text() for path in sorted(lesson.folder.glob("server.log*")))
    assert "suppressed" in log and "Traceback" not in log


def test_server_log_rotates_and_stray_output_follows_it(model: bytes, tmp_path: Path) -> None:
    sha = model_archive(tmp_path / "model.tar.gz", model)
    endpoint = tmp_path / "endpoint"
    # As the deployer starts it: stdout and stderr appended to server.log, which the server itself rotates.
    log_args = ["--log-file", str(endpoint / "server.log"), "--log-max-bytes", "512", "--log-backups", "2"]
    with running_server(endpoint, tmp_path / "model.tar.gz", sha, *log_args) as server:
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # invalid requests: a line each, up to the rate limit
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
                raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                answer_then_close(raw)
            time.sleep(0.02)
        time.sleep(1.2)
        logs = sorted(path.name for path in endpoint.glob("server.log*"))
        assert logs == ["server.log", "server.log.1", "server.log.2"]  # two backups kept, older ones removed
        for name in logs:
            assert (endpoint / name).stat().st_size <= 512 + 512, name  # a file ends before the line that overflows
        # The process's own stderr (faulthandler, C libraries) follows the current file, not a rotated one.
        assert os.readlink(f"/proc/{server.pid}/fd/2") == str(endpoint / "server.log")
