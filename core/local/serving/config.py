"""The endpoint config the deployer writes, and the state.json the server keeps beside it.

Only the standard library here: the deployer imports this module to write configs and read states, and
must not pay for numpy or the web server to do so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Literal

from core.serverless import MAX_CONCURRENCY_RANGE
from core.spec import NAME_RULE

STATE_FILE = "state.json"
MODELS_FOLDER = "models"

Status = Literal["Creating", "InService", "Failed"]

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
# SageMaker's EndpointName rule.
_ENDPOINT_NAME = NAME_RULE
# SageMaker serverless allows MaxConcurrency 1..200.
MAX_CONCURRENCY_LIMIT = MAX_CONCURRENCY_RANGE[1]

# Defaults of the limits below; endpoint.json may set each (the tests shorten the timeouts to seconds).
# A client has this long to send one whole request, head and body, and to take its answer once the server
# writes it: a 6 MB body crosses loopback in milliseconds, so only a client that stalls on purpose (or is
# stuck) ever reaches it, and it must not hold a connection, buffers and a slot for longer.
REQUEST_TIMEOUT_SECONDS = 10.0
# A connection with no request in progress (never sent one, or got its answer) is closed after this long:
# uvicorn's own keep-alive default, long enough for a client to reuse its connection between requests.
IDLE_TIMEOUT_SECONDS = 5.0
# Open connections the server keeps; beyond them a new connection gets a 503 and is closed at once. Above
# SageMaker's largest MaxConcurrency (200), so the concurrency limit and its 429 stay what a client meets,
# and far below the usual file limit (the server lowers it further if its own file limit is lower).
MAX_CONNECTIONS = 256
# A model archive may expand to this many times its own size, and never past MAX_EXTRACTED_BYTES: a pickled
# scikit-learn model compresses 2-5x, while a decompression bomb expands 1,000x. Both are per endpoint.
MAX_EXTRACT_RATIO = 20.0
MAX_EXTRACTED_BYTES = 2 * 1024**3
# Entries (files and folders) of one archive: a model and its code/ folder are a handful, vendored packages
# in code/ a few thousand; a million empty members is an attack on the time and memory of reading them.
MAX_ARCHIVE_MEMBERS = 10_000
# Small archives may always expand this far: a 2 KB archive of a 60 KB entry point is no bomb.
EXTRACT_FLOOR_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ExtractionLimits:
    """How far a model archive may expand when it is extracted."""

    max_ratio: float = MAX_EXTRACT_RATIO
    max_bytes: int = MAX_EXTRACTED_BYTES
    max_members: int = MAX_ARCHIVE_MEMBERS

    def allowance(self, archive_bytes: int) -> int:
        """The most bytes an archive of this size may extract to."""
        return min(self.max_bytes, max(EXTRACT_FLOOR_BYTES, int(archive_bytes * self.max_ratio)))


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may hold of the server: time and a share of its connections."""

    request_timeout: float = REQUEST_TIMEOUT_SECONDS
    idle_timeout: float = IDLE_TIMEOUT_SECONDS
    max_connections: int = MAX_CONNECTIONS


class ConfigError(Exception):
    """The endpoint config cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class EndpointConfig:
    endpoint_name: str
    model_tar: str
    model_sha256: str
    max_concurrency: int = 5
    host: str = "127.0.0.1"
    port: int = 0
    queue_timeout_seconds: float = 2.0
    request_timeout_seconds: float = REQUEST_TIMEOUT_SECONDS
    idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS
    max_connections: int = MAX_CONNECTIONS
    max_extract_ratio: float = MAX_EXTRACT_RATIO
    max_extracted_bytes: int = MAX_EXTRACTED_BYTES
    max_archive_members: int = MAX_ARCHIVE_MEMBERS

    @classmethod
    def from_dict(cls, data: Any) -> EndpointConfig:
        if not isinstance(data, dict):
            raise ConfigError("The endpoint config must be a JSON object.")

        def field(name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
            if name not in data:
                if default is None:
                    raise ConfigError(f"The endpoint config has no {name!r}.")
                return default
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ConfigError(f"The endpoint config's {name!r} is {value!r}, of the wrong type.")
            return value

        name = field("endpoint_name", str)
        if not _ENDPOINT_NAME.fullmatch(name):
            raise ConfigError(f"The endpoint name {name!r} does not follow SageMaker's endpoint name rule.")
        model_tar = field("model_tar", str)
        if not os.path.isabs(model_tar):
            raise ConfigError(f"The endpoint config's model_tar {model_tar!r} is not an absolute path.")
        sha = field("model_sha256", str)
        if not _SHA256.fullmatch(sha):
            raise ConfigError(f"The endpoint config's model_sha256 {sha!r} is not 64 hexadecimal digits.")
        concurrency = field("max_concurrency", int, 5)
        if not 1 <= concurrency <= MAX_CONCURRENCY_LIMIT:
            raise ConfigError(
                f"The endpoint config's max_concurrency {concurrency} is outside 1..{MAX_CONCURRENCY_LIMIT}."
            )
        port = field("port", int, 0)
        if not 0 <= port <= 65535:
            raise ConfigError(f"The endpoint config's port {port} is outside 0..65535.")

        def positive(name: str, kind: type | tuple[type, ...], default: float) -> Any:
            value = field(name, kind, default)
            if not 0 < value < float("inf"):  # NaN (which json reads) fails this too
                raise ConfigError(f"The endpoint config's {name} {value} is not a positive number.")
            return value

        timeout = float(positive("queue_timeout_seconds", (int, float), 2.0))
        return cls(
            endpoint_name=name,
            model_tar=model_tar,
            model_sha256=sha.lower(),
            max_concurrency=concurrency,
            host=field("host", str, "127.0.0.1"),
            port=port,
            queue_timeout_seconds=timeout,
            request_timeout_seconds=float(positive("request_timeout_seconds", (int, float), REQUEST_TIMEOUT_SECONDS)),
            idle_timeout_seconds=float(positive("idle_timeout_seconds", (int, float), IDLE_TIMEOUT_SECONDS)),
            max_connections=positive("max_connections", int, MAX_CONNECTIONS),
            max_extract_ratio=float(positive("max_extract_ratio", (int, float), MAX_EXTRACT_RATIO)),
            max_extracted_bytes=positive("max_extracted_bytes", int, MAX_EXTRACTED_BYTES),
            max_archive_members=positive("max_archive_members", int, MAX_ARCHIVE_MEMBERS),
        )

    @classmethod
    def load(cls, path: str) -> EndpointConfig:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as exc:
            raise ConfigError(f"The endpoint config {path} could not be read: {exc.strerror}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"The endpoint config {path} is not valid JSON: {exc}.") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "model_tar": self.model_tar,
            "model_sha256": self.model_sha256,
            "max_concurrency": self.max_concurrency,
            "host": self.host,
            "port": self.port,
            "queue_timeout_seconds": self.queue_timeout_seconds,
            "request_timeout_seconds": self.request_timeout_seconds,
            "idle_timeout_seconds": self.idle_timeout_seconds,
            "max_connections": self.max_connections,
            "max_extract_ratio": self.max_extract_ratio,
            "max_extracted_bytes": self.max_extracted_bytes,
            "max_archive_members": self.max_archive_members,
        }

    def extraction_limits(self) -> ExtractionLimits:
        return ExtractionLimits(self.max_extract_ratio, self.max_extracted_bytes, self.max_archive_members)

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(self.request_timeout_seconds, self.idle_timeout_seconds, self.max_connections)


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    """Write through a temporary file and os.replace, so a reader sees the old or the new file, never half."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read_state(path: str) -> dict[str, Any] | None:
    """The server's state.json, or None while it does not exist yet (or was caught mid-creation)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class StateFile:
    """The server's half of state.json: every change rewrites the whole file atomically."""

    def __init__(self, path: str, host: str, port: int) -> None:
        self.path = path
        self.state: dict[str, Any] = {
            "pid": os.getpid(),
            "host": host,
            "port": port,
            "url": url_for(host, port),
            "status": "Creating",
            "model_sha256": None,
            "failure_reason": None,
            "last_reload_error": None,
            "updated": time.time(),
        }

    def update(self, **changes: Any) -> None:
        self.state.update(changes)
        if "port" in changes or "host" in changes:
            self.state["url"] = url_for(self.state["host"], self.state["port"])
        self.state["updated"] = time.time()
        write_json_atomic(self.path, self.state)
