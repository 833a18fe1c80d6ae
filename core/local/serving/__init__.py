"""The local endpoint: a real HTTP inference server process speaking SageMaker's container protocol.

The deployer writes ``endpoint.json`` in the endpoint's folder and starts
``python -m core.local.serving --config <folder>/endpoint.json --log-file <folder>/server.log`` with that
log file as stdout and stderr too (the server rotates it by size); the server keeps ``<folder>/state.json``
(pid, url, status, model_sha256, failure_reason, last_reload_error), reloads the config's model on SIGHUP
and stops on SIGTERM. Importing this package
costs only the standard library, so the deployer can use the helpers below without loading numpy or uvicorn.
"""

from __future__ import annotations

import sys

from .config import (
    MAX_CONCURRENCY_LIMIT,
    MODELS_FOLDER,
    STATE_FILE,
    ConfigError,
    EndpointConfig,
    read_state,
    url_for,
    write_json_atomic,
)

__all__ = [
    "MAX_CONCURRENCY_LIMIT",
    "MODELS_FOLDER",
    "STATE_FILE",
    "ConfigError",
    "EndpointConfig",
    "read_state",
    "server_command",
    "url_for",
    "write_json_atomic",
]


def server_command(config_path: str, python: str | None = None, log_file: str | None = None) -> list[str]:
    """The command line that starts the server for one endpoint config.

    ``log_file`` is the file the caller also gives the process as stdout and stderr: the server then
    rotates it by size (logs.py) instead of letting it grow without bound.
    """
    command = [python or sys.executable, "-m", "core.local.serving", "--config", config_path]
    return [*command, "--log-file", log_file] if log_file else command
