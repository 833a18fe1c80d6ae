"""The endpoint server process: bind, report state, load the model, serve, reload on SIGHUP, stop on SIGTERM.

One process, one event loop (uvloop), uvicorn's httptools protocol and the bare ASGI app of app.py.
Of the stacks measured by ``bench/serve.py --floor`` this one answers a trivial request fastest on one
connection (~13,000/s against ~6,000 for uvicorn's h11 + asyncio and ~4,000 for granian), the case
where per-request overhead shows most. One process per endpoint, not workers: a single connection
gains nothing from them, each worker would hold its own ~150 MB copy of numpy, pandas and
scikit-learn, and a hot swap stays one assignment in one process.

Order of start-up, and why:
1. bind the socket first, so the OS-chosen port is known and written to state.json while loading;
   connections that arrive meanwhile wait in the listen backlog and are answered once the model is in;
2. load the model (checksum, safe extraction, the archive's entry point and its model_fn, one warm-up
   request through the container's handler chain), then
   ``gc.freeze()``: the model, numpy, pandas and scikit-learn objects leave the collector's view, so full
   collections (~100 ms over MLflow's object graph) stay out of the request path;
3. serve, and only then say InService.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import resource
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
import uvloop

from . import logs
from .config import MAX_CONNECTIONS, MODELS_FOLDER, STATE_FILE, ConfigError, ConnectionLimits, EndpointConfig, StateFile
from .protocol import ConnectionGuard

if TYPE_CHECKING:  # numpy and scikit-learn load only after the port is bound and reported
    from .app import InferenceApp
    from .artifacts import LoadedModel

log = logging.getLogger("housing_tui.serving")


# The BLAS libraries numpy may load read these when they load, which happens here only after the port is bound.
_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _one_blas_thread() -> None:
    # Requests are answered one at a time on the event loop's thread, on matrices of a few thousand numbers:
    # BLAS worker threads add nothing but their spinning after each call, which on 2 cores takes the core the
    # client runs on. Measured with wrk, one connection: p99 0.4-0.6 ms with one thread, 0.4-1.4 ms without.
    # A variable the user set is left as it is.
    for name in _BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


class _Stop(BaseException):
    """SIGTERM or SIGINT while the model is still loading: end start-up without serving."""


def bind_socket(host: str, port: int, backlog: int = MAX_CONNECTIONS) -> socket.socket:
    """A listening TCP socket; port 0 lets the OS pick a free one.

    The backlog holds connections the kernel has completed while the loop is busy (a prediction, the model
    loading): as many as the server would keep open anyway, not uvicorn's 2,048 on top of them.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY on Linux: small responses leave at once, with no Nagle
        # wait for the client's delayed ACK (the 40 ms stalls of uvicorn issue 3149).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.set_inheritable(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_other_models(models_root: str, keep: str) -> None:
    # Extracted folders of models no longer served only take disk space.
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(models_root):
            if name != keep and not name.startswith("."):
                shutil.rmtree(os.path.join(models_root, name), ignore_errors=True)


def _refreeze() -> None:
    # The previous model is freed by reference counting even though it was frozen (a fitted pipeline
    # holds no reference cycles); unfreezing to look for cycles would cost a ~70 ms full collection
    # in the request path. Collect what is not frozen (little), then freeze the new model with it.
    gc.collect()
    gc.freeze()


# Descriptors the process needs besides client connections: the listening socket, the log, the model's files
# while it loads, uvloop's own and the reload thread's.
_RESERVED_DESCRIPTORS = 64


def connection_limits(config: EndpointConfig) -> ConnectionLimits:
    """The config's limits, the connection cap kept within the process's file limit (raised if it may be)."""
    limits = config.connection_limits()
    wanted = limits.max_connections + _RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return limits
    raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft >= wanted:
        return limits
    allowed = max(1, soft - _RESERVED_DESCRIPTORS)
    log.warning("the file limit (%d) allows %d connections, not %d", soft, allowed, limits.max_connections)
    return replace(limits, max_connections=allowed)


class EndpointServer:
    """The state of one endpoint process: its config, state file, app and reload machinery."""

    def __init__(self, config_path: str, access_log: bool = False) -> None:
        self.config_path = os.path.abspath(config_path)
        self.folder = os.path.dirname(self.config_path)
        self.models_root = os.path.join(self.folder, MODELS_FOLDER)
        self.access_log = access_log
        self.state: StateFile | None = None
        self._stopping = False
        self._loading = False
        self._reload_requested = threading.Event()
        self.guard = ConnectionGuard(ConnectionLimits())  # replaced by the config's limits at start

    # ------------------------------------------------------------------------------------------- start

    def _fail(self, reason: str, host: str = "127.0.0.1", port: int = 0) -> int:
        log.error("endpoint failed: %s", reason)
        if self.state is None:
            self.state = StateFile(os.path.join(self.folder, STATE_FILE), host, port)
        try:
            self.state.update(status="Failed", failure_reason=reason)
        except OSError as exc:
            log.error("could not write %s: %s", self.state.path, exc)
        return 1

    @contextlib.contextmanager
    def _start_up_signals(self) -> Iterator[None]:
        # Until the event loop runs, signals are plain Python handlers: stop ends start-up cleanly and a
        # SIGHUP is remembered, since the config may have changed while the first model was loading.
        def stop(signum: int, frame: FrameType | None) -> None:
            if self._loading:
                raise _Stop
            self._stopping = True  # between load and serve: the loop's handler takes it from here

        def hup(signum: int, frame: FrameType | None) -> None:
            self._reload_requested.set()

        # They stay installed after start-up: the event loop's own handlers replace them, and a signal
        # in between must not fall back to the default action (death without a word).
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        signal.signal(signal.SIGHUP, hup)
        self._loading = True
        try:
            yield
        finally:
            self._loading = False

    def run(self) -> int:
        if not os.path.isdir(self.folder):
            log.error("the endpoint folder %s does not exist", self.folder)
            return 2
        try:
            config = EndpointConfig.load(self.config_path)
        except ConfigError as exc:
            return self._fail(str(exc))
        log.info("starting endpoint %s (pid %d) on %s:%d", config.endpoint_name, os.getpid(), config.host, config.port)
        try:
            self.guard = ConnectionGuard(connection_limits(config))
            sock = bind_socket(config.host, config.port, self.guard.limits.max_connections)
        except OSError as exc:
            return self._fail(
                f"The endpoint could not listen on {config.host}:{config.port}: {exc.strerror or exc}.",
                config.host,
                config.port,
            )
        port = sock.getsockname()[1]
        self.state = StateFile(os.path.join(self.folder, STATE_FILE), config.host, port)
        try:
            self.state.update(status="Creating")
            with self._start_up_signals():
                try:
                    app, model = self._load_first(config)
                except _Stop:
                    # A stale "Creating" would outlive the process; say plainly why it never served.
                    self.state.update(
                        status="Failed", failure_reason="The server was stopped before its model finished loading."
                    )
                    log.info("stopped while loading the model")
                    return 0
            if app is None:
                return 1
            return self._serve(config, sock, app, model.sha256)
        finally:
            sock.close()

    def _load_first(self, config: EndpointConfig) -> tuple[InferenceApp | None, LoadedModel | None]:
        # The heavy imports (numpy, pandas, scikit-learn through model_fn) happen here, after the port
        # is known and reported.
        from .app import InferenceApp
        from .artifacts import ModelLoadError, load_model

        try:
            model = load_model(config.model_tar, config.model_sha256, self.models_root, config.extraction_limits())
        except ModelLoadError as exc:
            self._fail(str(exc), config.host, config.port)
            return None, None
        except Exception as exc:  # a failure of the machinery itself still gets a reason on record
            self._fail(f"The model could not be loaded ({type(exc).__name__}: {exc}).")
            return None, None
        app = InferenceApp(config.endpoint_name, model, config.max_concurrency, config.queue_timeout_seconds)
        _remove_other_models(self.models_root, model.sha256)
        gc.collect()
        gc.freeze()
        log.info(
            "loaded model %s from %s with %s (%s)",
            model.sha256,
            config.model_tar,
            model.entry_point,
            model.chain.names(),
        )
        return app, model

    # ------------------------------------------------------------------------------------------- serve

    def _serve(self, config: EndpointConfig, sock: socket.socket, app: InferenceApp, sha256: str) -> int:
        server_config = uvicorn.Config(
            app,
            loop="none",
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            log_level="warning",
            access_log=self.access_log,
            proxy_headers=False,  # no proxy in front; its middleware would cost time on every request
            server_header=False,
            timeout_graceful_shutdown=10,
            # uvicorn's httptools protocol with bounds on head size, time and connections (protocol.py).
            http=self.guard.protocol,
            timeout_keep_alive=self.guard.limits.idle_timeout,  # type: ignore[arg-type]  # a float works
            backlog=self.guard.limits.max_connections,
        )
        server = _QuietServer(server_config)
        reloader = _Reloader(self, app)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self._request_stop, server, "SIGTERM")
            loop.add_signal_handler(signal.SIGINT, self._request_stop, server, "SIGINT")
            loop.add_signal_handler(signal.SIGHUP, reloader.request)
            if self._stopping:
                server.should_exit = True  # a stop that arrived between loading and now
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            housekeeping = asyncio.create_task(_housekeeping(self.guard, server.server_state))
            while not server.started and not serving.done():
                await asyncio.sleep(0.005)
            if server.started and not self._stopping:
                self.state.update(status="InService", model_sha256=sha256)
                limits = self.guard.limits
                log.info(
                    "endpoint %s in service at %s (at most %d connections; %g s to send a request, %g s idle)",
                    config.endpoint_name,
                    self.state.state["url"],
                    limits.max_connections,
                    limits.request_timeout,
                    limits.idle_timeout,
                )
                if self._reload_requested.is_set():
                    reloader.request()
            try:
                await serving
                await reloader.finish()
            finally:
                housekeeping.cancel()

        try:
            uvloop.run(main())
        except Exception as exc:
            log.exception("the HTTP server failed")
            reason = f"The HTTP server failed ({type(exc).__name__}: {exc})."
            return self._fail(reason, config.host, config.port)
        if not server.started:
            return self._fail("The HTTP server did not start; see the log above.", config.host, config.port)
        log.info("endpoint %s stopped", config.endpoint_name)
        return 0

    def _request_stop(self, server: uvicorn.Server, name: str) -> None:
        if self._stopping:
            server.force_exit = True  # a second signal: stop without waiting for open requests
            return
        self._stopping = True
        log.info("%s received: finishing open requests, then stopping", name)
        server.should_exit = True


async def _housekeeping(guard: ConnectionGuard, state: uvicorn.server.ServerState) -> None:
    """A few times a second, off the request path: enforce connection deadlines, report suppressed log lines."""
    while True:
        await asyncio.sleep(guard.sweep_interval)
        guard.sweep(state.connections)
        logs.request_lines.tick()


class _QuietServer(uvicorn.Server):
    """uvicorn.Server without its own signal handling: this process installs its own on the loop.

    uvicorn's handlers would re-raise SIGTERM after shutting down, ending the process by the signal
    instead of with exit status 0, and know nothing of SIGHUP.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Reloader:
    """SIGHUP: load the config's model in a worker thread while the old one serves, then swap.

    Signals that arrive during a reload are folded into one more reload after it, so the last config
    written always wins and no two loads race.
    """

    def __init__(self, endpoint: EndpointServer, app: InferenceApp) -> None:
        self.endpoint = endpoint
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-reload")
        self.task: asyncio.Task | None = None
        self.again = False

    def request(self) -> None:
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def finish(self) -> None:
        if self.task is not None:
            await self.task
        self.executor.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            self.again = False
            await self._reload_once()
            if not self.again or self.endpoint._stopping:
                return

    async def _reload_once(self) -> None:
        from .artifacts import ModelLoadError, load_model

        endpoint = self.endpoint
        state = endpoint.state
        loop = asyncio.get_running_loop()
        log.info("SIGHUP received: reloading %s", endpoint.config_path)
        try:
            config = await loop.run_in_executor(self.executor, EndpointConfig.load, endpoint.config_path)
            current = self.app.model
            if config.model_sha256 == current.sha256:
                model = current  # same model: nothing to load, but other settings may have changed
            else:
                model = await loop.run_in_executor(
                    self.executor,
                    load_model,
                    config.model_tar,
                    config.model_sha256,
                    endpoint.models_root,
                    config.extraction_limits(),
                )
        except (ConfigError, ModelLoadError) as exc:
            reason = str(exc)
        except Exception as exc:
            reason = f"The new model could not be loaded ({type(exc).__name__}: {exc})."
        else:
            self.app.model = model  # the swap: one attribute assignment on the loop thread
            if config.max_concurrency != self.app.max_concurrency:
                self.app.set_max_concurrency(config.max_concurrency)
            self.app.queue_timeout = config.queue_timeout_seconds
            endpoint.guard.limits = connection_limits(config)  # for the next connection and deadline
            state.update(status="InService", model_sha256=model.sha256, last_reload_error=None)
            log.info("reloaded: now serving model %s", model.sha256)
            if model is not current:
                await loop.run_in_executor(self.executor, _remove_other_models, endpoint.models_root, model.sha256)
                _refreeze()
            return
        log.error("reload failed, still serving model %s: %s", state.state["model_sha256"], reason)
        state.update(last_reload_error=reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.local.serving",
        description="Serve one local SageMaker-style endpoint from its config file.",
    )
    parser.add_argument("--config", required=True, help="the endpoint.json the deployer wrote")
    parser.add_argument("--access-log", action="store_true", help="log one line per request (slower)")
    parser.add_argument(
        "--log-file", help="write the log here, rotated by size, and point stdout and stderr at it (else: stderr)"
    )
    parser.add_argument("--log-max-bytes", type=int, default=logs.LOG_MAX_BYTES, help="rotate the log at this size")
    parser.add_argument("--log-backups", type=int, default=logs.LOG_BACKUPS, help="rotated log files to keep")
    args = parser.parse_args(argv)
    logs.configure(args.log_file, args.log_max_bytes, args.log_backups)
    _one_blas_thread()
    return EndpointServer(args.config, access_log=args.access_log).run()
