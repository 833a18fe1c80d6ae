"""Local endpoints: one HTTP inference server process per endpoint, its lifecycle kept in the store.

Creating -> InService once the server answers, Failed with the reason when the model cannot load or the
port cannot be bound, Updating while a new model is loaded beside the old one, Deleting -> gone. A
server process that died reads as Failed ("process exited") on the next read, never as InService.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from core import arns, serverless
from core.errors import Conflict, NotFound, UserError
from core.hashing import file_sha256
from core.local.locks import endpoint_lock
from core.local.processes import ProcessIdentity, identify, is_alive, spawn_detached, terminate
from core.local.registry import LocalRegistry
from core.local.serving import STATE_FILE, EndpointConfig, read_state, server_command, write_json_atomic
from core.local.store import Store
from core.models import Endpoint, EndpointStatus, Invocation, ModelVersion
from core.runtime import DEFAULT_INVOKE_TIMEOUT, invoke, local_runtime_client

CONFIG_FILE = "endpoint.json"
LOG_FILE = "server.log"
WAIT_SECONDS = 120.0
STOP_SECONDS = 10.0


def endpoint_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{arns.LOCAL_REGION}:{arns.LOCAL_ACCOUNT}:endpoint/{name.lower()}"


def artifact_path(version: ModelVersion) -> Path:
    url = urlparse(version.model_data_url or "")
    if url.scheme not in ("file", ""):
        raise UserError(f"version {version.version}'s model is at {version.model_data_url}, not a local file")
    return Path(unquote(url.path))


def _endpoint(row: sqlite3.Row) -> Endpoint:
    return Endpoint(
        name=row["name"],
        arn=endpoint_arn(row["name"]),
        status=EndpointStatus(row["status"]),
        model_package_arn=row["model_package_arn"],
        created=row["created"],
        last_modified=row["last_modified"],
        memory_mb=row["memory_mb"],
        max_concurrency=row["max_concurrency"],
        url=row["url"],
        failure_reason=row["failure_reason"],
    )


class LocalEndpoints:
    def __init__(self, store: Store, registry: LocalRegistry) -> None:
        self.store = store
        self.registry = registry
        self.root = store.home / "endpoints"
        self._clients: dict[str, Any] = {}

    # ---- deploy ---------------------------------------------------------------------------------------

    def deploy(
        self,
        model_package_arn: str,
        name: str,
        memory_mb: int = serverless.DEFAULT_MEMORY,
        max_concurrency: int = serverless.DEFAULT_MAX_CONCURRENCY,
        force: bool = False,
        wait: bool = True,
    ) -> Endpoint:
        """Create the endpoint, or point an existing one at another version without dropping a request."""
        serverless.validate_endpoint_name(name)  # before the lookup: a bad name is the first thing to say
        # One deploy of a name at a time: two that both saw it InService would each point the server at their
        # version, and the record could name the one it did not load.
        with endpoint_lock(self.store, name):
            return self._deploy(model_package_arn, name, memory_mb, max_concurrency, force, wait)

    def _deploy(
        self, model_package_arn: str, name: str, memory_mb: int, max_concurrency: int, force: bool, wait: bool
    ) -> Endpoint:
        version = self.registry.get(model_package_arn)
        serverless.check_deploy(version, name, memory_mb, max_concurrency, force)
        archive = artifact_path(version)
        if not archive.is_file():
            raise UserError(f"version {version.version}'s model artifact {archive} is missing; it cannot be served")
        if file_sha256(archive) != version.model_sha256:
            raise UserError(
                f"version {version.version}'s model artifact {archive} no longer matches the sha256 the registry "
                "recorded; it was changed after registration and will not be served"
            )
        existing = self._reconciled_row(name)
        if existing is not None and existing["status"] == EndpointStatus.IN_SERVICE:
            return self._update(existing, version, memory_mb, max_concurrency, wait)
        if existing is not None and existing["status"] != EndpointStatus.FAILED:
            raise Conflict(f"endpoint {name} is {existing['status']}; wait until it is InService, then deploy again")
        if existing is not None:
            self._remove(existing)  # a Failed endpoint is replaced, as a user redeploying expects
        return self._create(name, version, memory_mb, max_concurrency, wait)

    def _create(self, name: str, version: ModelVersion, memory_mb: int, max_concurrency: int, wait: bool) -> Endpoint:
        folder = self.root / name
        now = time.time()
        try:
            with self.store.transaction() as db:
                db.execute(
                    "INSERT INTO endpoints (name, status, model_package_arn, model_sha256, memory_mb,"
                    " max_concurrency, created, last_modified, folder) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        str(EndpointStatus.CREATING),
                        version.arn,
                        version.model_sha256,
                        memory_mb,
                        max_concurrency,
                        now,
                        now,
                        str(folder),
                    ),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"endpoint {name} is being created by another command; wait for it") from None
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700, parents=True)
        self._write_config(folder, name, version, max_concurrency)
        try:
            command = server_command(str(folder / CONFIG_FILE), log_file=str(folder / LOG_FILE))  # it rotates the log
            process = spawn_detached(command, folder / LOG_FILE, cwd=folder)
        except OSError as exc:
            self._set(name, status=EndpointStatus.FAILED, failure_reason=f"the server could not start: {exc}")
            raise UserError(f"the endpoint server could not start ({exc})") from None
        identity = identify(process.pid)
        self._set(name, server_pid=identity.pid, server_start=identity.start_ticks, server_boot=identity.boot_id)
        return self._wait_while(name, EndpointStatus.CREATING) if wait else self.get(name)

    def _update(
        self, row: sqlite3.Row, version: ModelVersion, memory_mb: int, max_concurrency: int, wait: bool
    ) -> Endpoint:
        name = row["name"]
        folder = Path(row["folder"])
        self._set(
            name,
            status=EndpointStatus.UPDATING,
            pending_arn=version.arn,
            pending_sha256=version.model_sha256,
            pending_memory_mb=memory_mb,
            pending_max_concurrency=max_concurrency,
            failure_reason=None,
        )
        self._write_config(folder, name, version, max_concurrency)
        # The server loads the new model beside the old one and swaps it in only when it is ready.
        terminate(self._identity(row), signal.SIGHUP)
        if not wait:
            return self.get(name)
        endpoint = self._wait_while(name, EndpointStatus.UPDATING)
        if endpoint.model_package_arn != version.arn:
            why = endpoint.failure_reason or "the update did not take"
            raise UserError(f"endpoint {name} keeps serving {endpoint.model_package_arn}: {why}")
        return endpoint

    def _write_config(self, folder: Path, name: str, version: ModelVersion, max_concurrency: int) -> None:
        config = EndpointConfig(
            endpoint_name=name,
            model_tar=str(artifact_path(version)),
            model_sha256=version.model_sha256 or "",
            max_concurrency=max_concurrency,
        )
        write_json_atomic(str(folder / CONFIG_FILE), config.to_dict())

    def _wait_while(self, name: str, status: EndpointStatus) -> Endpoint:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            endpoint = self.get(name)
            if endpoint.status is not status:
                return endpoint
            if time.monotonic() > deadline:
                raise UserError(
                    f"endpoint {name} is still {status} after {WAIT_SECONDS:.0f} s; see {self.root / name / LOG_FILE}"
                )
            time.sleep(0.05)

    # ---- read, with the live state of the server folded in -------------------------------------------

    def get(self, name: str) -> Endpoint:
        row = self._reconciled_row(name)
        if row is None:
            raise NotFound(f"no endpoint named {name}; `housing-tui endpoints` lists them")
        return _endpoint(row)

    def list(self) -> list[Endpoint]:
        with self.store.connect() as db:
            names = [r["name"] for r in db.execute("SELECT name FROM endpoints ORDER BY name")]
        rows = [self._reconciled_row(n) for n in names]
        return [_endpoint(r) for r in rows if r is not None]

    def _reconciled_row(self, name: str) -> sqlite3.Row | None:
        row = self._row(name)
        if row is None or row["status"] in (EndpointStatus.DELETING, EndpointStatus.FAILED):
            return row
        state = read_state(str(Path(row["folder"]) / STATE_FILE)) or {}
        alive = row["server_pid"] is not None and is_alive(self._identity(row))
        if not alive and (row["server_pid"] is not None or time.time() - row["created"] > WAIT_SECONDS):
            reason = state.get("failure_reason") or "the endpoint's server process exited"
            log = Path(row["folder"]) / LOG_FILE
            self._set(
                name,
                expect=row["status"],
                status=EndpointStatus.FAILED,
                failure_reason=f"{reason} (process exited; see {log}); deploy again or delete the endpoint",
            )
        elif (
            row["status"] == EndpointStatus.CREATING
            and state.get("status") != "InService"
            and time.time() - row["created"] > WAIT_SECONDS
        ):
            # Alive but still loading after this long: it is hung; stop it rather than wait forever.
            terminate(self._identity(row), signal.SIGKILL)
            self._set(
                name,
                expect=row["status"],
                status=EndpointStatus.FAILED,
                failure_reason=(
                    f"the model did not load within {WAIT_SECONDS:.0f} s; see {Path(row['folder']) / LOG_FILE}"
                ),
            )
        elif row["status"] == EndpointStatus.CREATING and state.get("status") == "InService":
            self._set(name, expect=row["status"], status=EndpointStatus.IN_SERVICE, url=state.get("url"))
        elif row["status"] == EndpointStatus.CREATING and state.get("status") == "Failed":
            self._set(name, expect=row["status"], status=EndpointStatus.FAILED, failure_reason=state["failure_reason"])
        elif row["status"] == EndpointStatus.UPDATING:
            if state.get("model_sha256") == row["pending_sha256"]:
                self._set(
                    name,
                    expect=row["status"],
                    status=EndpointStatus.IN_SERVICE,
                    model_package_arn=row["pending_arn"],
                    model_sha256=row["pending_sha256"],
                    memory_mb=row["pending_memory_mb"],
                    max_concurrency=row["pending_max_concurrency"],
                    pending_arn=None,
                    pending_sha256=None,
                )
            elif state.get("last_reload_error") and state.get("updated", 0) >= row["last_modified"]:
                self._set(
                    name,
                    expect=row["status"],
                    status=EndpointStatus.IN_SERVICE,
                    pending_arn=None,
                    pending_sha256=None,
                    failure_reason=f"update to {row['pending_arn']} failed: {state['last_reload_error']}",
                )
        return self._row(name)

    # ---- delete ---------------------------------------------------------------------------------------

    def delete(self, name: str) -> None:
        row = self._row(name)
        if row is None:
            raise NotFound(f"no endpoint named {name}; `housing-tui endpoints` lists them")
        self._set(name, status=EndpointStatus.DELETING)
        self._remove(row)

    def _remove(self, row: sqlite3.Row) -> None:
        identity = self._identity(row)
        if row["server_pid"] is not None and terminate(identity, signal.SIGTERM):
            deadline = time.monotonic() + STOP_SECONDS
            while is_alive(identity) and time.monotonic() < deadline:
                time.sleep(0.05)
            terminate(identity, signal.SIGKILL)
        self._clients.pop(row["name"], None)
        shutil.rmtree(row["folder"], ignore_errors=True)
        with self.store.transaction() as db:
            db.execute("DELETE FROM endpoints WHERE name = ?", (row["name"],))

    # ---- invoke ---------------------------------------------------------------------------------------

    def invoke(
        self, name: str, body: bytes, content_type: str = "text/csv", timeout: float | None = None
    ) -> Invocation:
        endpoint = self.get(name)
        if endpoint.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING) or not endpoint.url:
            why = f": {endpoint.failure_reason}" if endpoint.failure_reason else ""
            raise UserError(f"endpoint {name} is {endpoint.status}{why}; it takes requests once InService")
        wait = timeout or DEFAULT_INVOKE_TIMEOUT
        client = self._clients.get(name)
        if client is None or client.meta.endpoint_url != endpoint.url or client.meta.config.read_timeout != wait:
            client = self._clients[name] = local_runtime_client(endpoint.url, wait)
        return invoke(client, name, body, content_type)

    # ---- rows ---------------------------------------------------------------------------------------

    def _row(self, name: str) -> sqlite3.Row | None:
        with self.store.connect() as db:
            return db.execute("SELECT * FROM endpoints WHERE name = ?", (name,)).fetchone()

    @staticmethod
    def _identity(row: sqlite3.Row) -> ProcessIdentity:
        return ProcessIdentity(row["server_pid"], row["server_start"], row["server_boot"])

    def _set(self, name: str, expect: str | None = None, **changes: object) -> None:
        """Change columns of one endpoint; with `expect`, only if its status is still that (no lost race)."""
        changes["last_modified"] = time.time()
        assignments = ", ".join(f"{column} = ?" for column in changes)
        values = [str(v) if isinstance(v, EndpointStatus) else v for v in changes.values()]
        query = f"UPDATE endpoints SET {assignments} WHERE name = ?"
        values.append(name)
        if expect is not None:
            query += " AND status = ?"
            values.append(str(expect))
        with self.store.transaction() as db:
            db.execute(query, values)
