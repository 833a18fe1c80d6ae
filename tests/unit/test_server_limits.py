"""The endpoint server against clients that misbehave on purpose (issue 10, items 9-11).

Each test runs a real server process on 127.0.0.1 and attacks it with a few raw sockets for a few seconds:
slow bodies and heads, idle connections, oversized headers, more connections than the cap, a flood of
requests that each used to write a log line. The server's timeouts are shortened through endpoint.json so
the tests wait seconds, not the production defaults.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.conftest import LESSON_ENTRY_POINT
from tests.unit.serving_support import (
    NAME,
    ROW,
    ServerProcess,
    fitted_model_bytes,
    model_archive,
    post,
    running_server,
    status_of,
)

REQUEST_TIMEOUT = 2  # seconds a client has to send a whole request (head and body)
IDLE_TIMEOUT = 1  # seconds a connection may sit with no request in progress
MAX_CONNECTIONS = 20
TWO_ROWS = f"{ROW}\n{ROW}\n".encode()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return fitted_model_bytes()


@pytest.fixture(scope="module")
def limited(model: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The project's entry point behind short timeouts and a small connection cap."""
    folder = tmp_path_factory.mktemp("limited")
    sha = model_archive(folder / "model.tar.gz", model)
    with running_server(
        folder / "endpoint",
        folder / "model.tar.gz",
        sha,
        max_concurrency=5,
        request_timeout_seconds=REQUEST_TIMEOUT,
        idle_timeout_seconds=IDLE_TIMEOUT,
        max_connections=MAX_CONNECTIONS,
    ) as server:
        yield server


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


@contextlib.contextmanager
def sockets(server: ServerProcess, count: int, timeout: float = 10.0) -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(server.connect(timeout))
        yield opened
    finally:
        for sock in opened:
            sock.close()


def assert_serves(server: ServerProcess) -> None:
    status, body = post(server.port, TWO_ROWS)
    assert status == 200, body
    assert len(body.splitlines()) == 2


# ------------------------------------------------------------------------------- 9. slow clients


def test_slow_bodies_do_not_take_the_slots_and_get_408(limited: ServerProcess) -> None:
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n"
    with sockets(limited, 5) as slow:  # as many as max_concurrency
        for sock in slow:
            sock.sendall(head + ROW.encode()[:10])  # ...and the other 990 bytes never come
        sent = time.monotonic()
        time.sleep(0.3)  # the server has read the five heads
        # A complete request is served at once: a slot is taken only once a body has arrived.
        assert_serves(limited)
        for sock in slow:
            answer = answer_then_close(sock)
            assert status_of(answer) == 408, answer[:200]
            assert f"{REQUEST_TIMEOUT} s".encode() in answer and b"\r\n\r\nThe request" in answer
        assert time.monotonic() - sent >= REQUEST_TIMEOUT  # a timeout never ends a request early
    assert_serves(limited)


def test_slow_heads_get_408_and_idle_connections_are_closed(limited: ServerProcess) -> None:
    with sockets(limited, 3) as (slow_head, idle, after_answer):
        slow_head.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Ty")
        # A keep-alive connection that got its answer and then says nothing more.
        body = TWO_ROWS
        after_answer.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert status_of(answer_then_close(slow_head)) == 408
        assert answer_then_close(idle) == b""  # never sent a byte: closed without an answer
        assert status_of(answer_then_close(after_answer)) == 200
    assert_serves(limited)


# ------------------------------------------------------------------- 10. headers and connections


def test_oversized_headers_get_431_without_growing_the_server(limited: ServerProcess) -> None:
    header = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nX-Padding: "
    piece = b"a" * 65536
    pieces = 20 * 16  # 20 MB of one header per connection, unless the server answers first
    before = limited.rss_kb()
    with sockets(limited, 3) as attackers:
        answers = dict.fromkeys(attackers, b"")
        for sock in attackers:
            sock.sendall(header)
        sending = list(attackers)
        for _ in range(pieces):
            for sock in list(sending):
                try:
                    sock.sendall(piece)
                except OSError:  # the server closed the connection: read its answer below
                    sending.remove(sock)
            readable, _, _ = select.select(sending, [], [], 0.002)
            for sock in readable:
                sending.remove(sock)  # the server answered: stop sending, read what it said
            if not sending:
                break
        grown_mb = (limited.rss_kb() - before) / 1024  # measured while every attacker is still connected
        assert grown_mb < 25, f"the server grew by {grown_mb:.0f} MB"
        for sock in attackers:
            answers[sock] = answer_then_close(sock)
    statuses = [status_of(answer) for answer in answers.values()]
    assert statuses.count(431) >= 1 and set(statuses) <= {431, None}, statuses  # None: reset before it was read
    assert b"16384 bytes" in next(a for a in answers.values() if status_of(a) == 431)
    assert_serves(limited)


def test_connections_over_the_cap_get_503_and_idle_ones_are_closed(limited: ServerProcess) -> None:
    fds_before = limited.open_fds()
    extra = 10
    with sockets(limited, MAX_CONNECTIONS + extra) as opened:
        time.sleep(0.3)  # every connection accepted
        fds_during = limited.open_fds()
        answers = []
        for sock in opened:
            sock.settimeout(IDLE_TIMEOUT + 5)
            answers.append(answer_then_close(sock))  # over the cap: 503 now; the others: closed when idle
    refused = [answer for answer in answers if status_of(answer) == 503]
    assert len(refused) == extra, [status_of(a) for a in answers]
    assert b"connections" in refused[0] and b"\r\n\r\nThe endpoint" in refused[0]
    assert answers.count(b"") == MAX_CONNECTIONS
    assert fds_during <= fds_before + MAX_CONNECTIONS + 2, (fds_before, fds_during)
    assert_serves(limited)


def test_requests_within_the_limits_are_served_in_one_write_or_pipelined(limited: ServerProcess) -> None:
    # Headers just under the bound with a 2 MB body, all in one write; then three requests in one write.
    padding = "x" * (15 * 1024)
    body = (ROW + "\n").encode() * 40_000
    big = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        + f"X-Padding: {padding}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    small = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        + f"Content-Length: {len(TWO_ROWS)}\r\n\r\n".encode()
        + TWO_ROWS
    )
    with sockets(limited, 1) as (sock,):
        reader = sock.makefile("rb")
        for payload, answers in ((big, 1), (small * 3, 3)):
            sock.sendall(payload)
            for _ in range(answers):
                status, answer = read_response(reader)
                assert status == 200, answer[:200]
                assert len(answer.splitlines()) == (40_000 if payload is big else 2)


def read_response(reader: BinaryIO) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length from a connection's reader (several may follow it)."""
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


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
