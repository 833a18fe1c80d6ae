"""Helpers for the endpoint server's limit and artifact tests: a small fitted model, archives, a server process.

Kept apart from test_serving.py, whose module fixtures train two full models through the container scripts:
these tests need a model that loads and answers, not the recipe's numbers, so a LinearRegression fitted in
a few milliseconds on the bundled data is packed as the Register step packs a version.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DATA = ROOT / "core" / "data" / "california_housing.csv.gz"
NAME = "housing-prod"
ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"
START_TIMEOUT = 60.0


def fitted_model_bytes() -> bytes:
    """A joblib pickle of a LinearRegression fitted on the bundled data's 8 raw features."""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    data = pd.read_csv(DATA).head(2000)
    model = LinearRegression().fit(data.iloc[:, :8].to_numpy(), data["MedHouseVal"].to_numpy())
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def add_zeros(tar: tarfile.TarFile, name: str, size: int) -> None:
    """A member of ``size`` zero bytes, streamed: it compresses about 1,000:1."""

    class Zeros(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            count = min(len(buffer), self.left)
            buffer[:count] = bytes(count)
            self.left -= count
            return count

    info = tarfile.TarInfo(name)
    info.size = size
    tar.addfile(info, io.BufferedReader(Zeros(), 1024 * 1024))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_archive(
    path: Path, model: bytes, entry_point: str | None = None, extra: Callable[[tarfile.TarFile], None] | None = None
) -> str:
    """model.joblib and code/entry_point.py (the project's unless given), as the Register step leaves them."""
    code = entry_point if entry_point is not None else (ROOT / "entry_point.py").read_text()
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        add_bytes(tar, "model.joblib", model)
        add_bytes(tar, "code/entry_point.py", code.encode())
        if extra is not None:
            extra(tar)
    return sha256_of(path)


# ------------------------------------------------------------------------------------------ servers


def read_state(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class ServerProcess:
    """One endpoint server, started as the deployer starts it: output appended to server.log, never our pipes."""

    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    @property
    def port(self) -> int:
        return (read_state(self.folder) or {})["port"]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> int:
        """Lines in server.log and its rotated files."""
        return sum(path.read_bytes().count(b"\n") for path in self.folder.glob("server.log*"))

    def rss_kb(self) -> int:
        return _status_field(self.pid, "VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {name}")


@contextlib.contextmanager
def running_server(folder: Path, tar: Path, sha256: str, *args: str, **config: Any) -> Iterator[ServerProcess]:
    """A server for this archive, InService; ended (SIGTERM, then SIGKILL) whatever the test's outcome."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"endpoint_name": NAME, "model_tar": str(tar), "model_sha256": sha256, "port": 0, **config}
    (folder / "endpoint.json").write_text(json.dumps(settings))
    with open(folder / "server.log", "ab") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "core.local.serving", "--config", str(folder / "endpoint.json"), *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(folder, process)
    try:

        def in_service() -> bool:
            state = read_state(folder)
            if process.poll() is not None or (state and state["status"] == "Failed"):
                raise AssertionError(f"the server did not start:\n{server.log()}")
            return bool(state and state["status"] == "InService")

        wait_for(in_service, START_TIMEOUT, "state InService")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


# ------------------------------------------------------------------------------------------ clients


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """What the server sends until it closes the connection (or resets it, or the socket's timeout passes)."""
    received = b""
    with contextlib.suppress(OSError):
        while len(received) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def status_of(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


def post(port: int, body: bytes, content_type: str = "text/csv", path: str = "/invocations") -> tuple[int, bytes]:
    """One request on its own connection with http.client: status and body."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
