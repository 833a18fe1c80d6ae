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
        timeout = float(field("queue_timeout_seconds", (int, float), 2.0))
        if not timeout > 0:
            raise ConfigError(f"The endpoint config's queue_timeout_seconds {timeout} is not positive.")
        return cls(
            endpoint_name=name,
            model_tar=model_tar,
            model_sha256=sha.lower(),
            max_concurrency=concurrency,
            host=field("host", str, "127.0.0.1"),
            port=port,
            queue_timeout_seconds=timeout,
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
        }


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
