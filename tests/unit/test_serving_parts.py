"""The endpoint server's parts in-process, without a server process: config, state, archives and the ASGI app."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import types
from pathlib import Path

import pytest

from core.local.serving import EndpointConfig, read_state, write_json_atomic
from core.local.serving.app import InferenceApp
from core.local.serving.artifacts import LoadedModel, ModelLoadError, load_model, safe_extract
from core.local.serving.config import ConfigError
from core.local.serving.handler_chain import HandlerChain

ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"


# ------------------------------------------------------------------------------------------- config


def _config(**changes: object) -> dict:
    return {
        "endpoint_name": "housing-prod",
        "model_tar": "/abs/model.tar.gz",
        "model_sha256": "A" * 64,
        "max_concurrency": 5,
        "host": "127.0.0.1",
        "port": 0,
        **changes,
    }


def test_config_round_trip_and_defaults() -> None:
    config = EndpointConfig.from_dict(_config())
    assert config.model_sha256 == "a" * 64
    assert EndpointConfig.from_dict(config.to_dict()) == config
    minimal = {k: v for k, v in _config().items() if k not in ("max_concurrency", "host", "port")}
    assert EndpointConfig.from_dict(minimal).port == 0


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"endpoint_name": "bad name"}, "endpoint name"),
        ({"model_tar": "relative.tar.gz"}, "absolute"),
        ({"model_sha256": "xyz"}, "hexadecimal"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"port": 70000}, "port"),
        ({"model_tar": None}, "model_tar"),
    ],
)
def test_config_errors_name_the_field(changes: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        EndpointConfig.from_dict(_config(**changes))


def test_state_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert read_state(str(path)) is None
    write_json_atomic(str(path), {"status": "Creating"})
    write_json_atomic(str(path), {"status": "InService"})
    assert read_state(str(path)) == {"status": "InService"}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind


# ------------------------------------------------------------------------------------------ archive


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/escape.txt", "a/../../escape.txt"])
def test_archive_members_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", [(tarfile.TarInfo(name), b"x")])
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ModelLoadError, match="outside"):
        safe_extract(str(archive), str(target))
    assert not (tmp_path / "escape.txt").exists()
    assert list(target.iterdir()) == []


def test_archive_links_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("model.joblib")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "link.tar.gz", [(link, None)])
    (tmp_path / "out").mkdir()
    with pytest.raises(ModelLoadError, match="not a regular file"):
        safe_extract(str(archive), str(tmp_path / "out"))


def test_load_model_checks_the_checksum_before_extracting(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "m.tar.gz", [(tarfile.TarInfo("model.joblib"), b"junk")])
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model(str(archive), "0" * 64, str(tmp_path / "models"))
    # The bytes were copied (and hashed) into a private staging folder, which went with the refusal.
    assert list((tmp_path / "models").iterdir()) == []
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "missing.tar.gz"), "0" * 64, str(tmp_path / "models"))


# ------------------------------------------------------------------------------------- application


def _call(app: InferenceApp, body: bytes, path: str = "/invocations", headers: list | None = None) -> tuple:
    """One request through the ASGI app, in-process."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers
        or [(b"content-type", b"text/csv"), (b"accept", b"text/csv"), (b"content-length", str(len(body)).encode())],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def _app(transform_fn) -> InferenceApp:
    entry = types.ModuleType("entry_point")
    entry.model_fn = lambda model_dir: None
    entry.transform_fn = transform_fn
    chain = HandlerChain(entry, default_accept="text/csv")
    chain.load("/nowhere")
    return InferenceApp("housing-prod", LoadedModel("ab" * 32, chain, "/nowhere", "test"), max_concurrency=2)


def _doubling(model, body, content_type, accept):
    """A transform_fn that refuses a negative first value with a 400 and breaks (a 500) on zero."""
    first = float(body.split(",")[0])
    if first == 0:
        raise ArithmeticError("zero\n   income")  # scikit-learn's messages span lines too
    if first < 0:
        return _Response(b"Row 1, column 1: income is negative.", 400, "text/plain")
    return (f"{first * 2!r}\n", "text/csv")


class _Response:
    def __init__(self, data: bytes, status: int, mimetype: str) -> None:
        self.data, self.status_code, self.mimetype = data, status, mimetype

    def get_data(self) -> bytes:
        return self.data


def test_the_container_route_answers_as_the_container_does() -> None:
    app = _app(_doubling)
    status, headers, body = _call(app, ROW.encode())
    assert (status, body) == (200, b"16.6504\n")
    assert headers[b"x-model-sha256"] == b"ab" * 32 and headers[b"content-type"] == b"text/csv; charset=utf-8"
    status, _, body = _call(app, ROW.replace("8.3252", "-1").encode())
    assert (status, body) == (400, b"Row 1, column 1: income is negative.")
    status, _, body = _call(app, ROW.replace("8.3252", "0").encode())
    # The exception's text goes to the log (its first line); the answer names the handler, no Python internals.
    assert status == 500
    assert body == b"transform_fn (entry_point) failed on this request; the endpoint's log has the reason."


def test_the_runtime_route_turns_a_container_error_into_modelerror_as_sagemaker_runtime_does() -> None:
    app = _app(_doubling)
    runtime = "/endpoints/housing-prod/invocations"
    status, headers, body = _call(app, ROW.encode(), runtime)
    assert status == 200 and headers[b"x-amzn-invoked-production-variant"] == b"AllTraffic"
    for first, original in (("-1", 400), ("0", 500)):
        status, headers, body = _call(app, ROW.replace("8.3252", first).encode(), runtime)
        error = json.loads(body)
        assert status == 424 and headers[b"x-amzn-errortype"] == b"ModelError"
        assert error["OriginalStatusCode"] == original
        side = "client" if original == 400 else "server"
        assert error["Message"].startswith(f"Received {side} error ({original}) from primary with message")
        assert error["OriginalMessage"] in error["Message"]


def test_the_contenttype_header_comes_before_content_type() -> None:
    seen: list[str] = []

    def transform_fn(model, body, content_type, accept):
        seen.append(content_type)
        return ("1.0\n", "text/csv")

    headers = [(b"content-type", b"text/plain"), (b"contenttype", b"text/csv")]
    _call(_app(transform_fn), ROW.encode(), headers=headers)
    assert seen == ["text/csv"]


# ------------------------------------------------------------------------------- slots and bodies


def _scope(length: int) -> dict:
    headers = [(b"content-type", b"text/csv"), (b"content-length", str(length).encode())]
    return {"type": "http", "method": "POST", "path": "/invocations", "headers": headers}


class _Client:
    """One request in-process: its body arrives when ``arrive`` is set, its answer is taken when ``take`` is."""

    def __init__(self, body: bytes, declared: int | None = None) -> None:
        self.body = body
        self.scope = _scope(len(body) if declared is None else declared)
        self.arrive = asyncio.Event()
        self.take = asyncio.Event()
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        await self.arrive.wait()
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        await self.take.wait()  # a client that does not read: the write buffer stays full

    @property
    def status(self) -> int | None:
        return self.sent[0]["status"] if self.sent else None


def _two_slot_app(max_concurrency: int = 1) -> InferenceApp:
    app = _app(_doubling)
    app.set_max_concurrency(max_concurrency)
    app.queue_timeout = 0.2
    return app


def test_a_slow_body_holds_no_slot() -> None:
    async def scenario() -> tuple[int | None, int | None]:
        app = _two_slot_app()
        slow, quick = _Client(ROW.encode()), _Client(ROW.encode())
        quick.arrive.set()
        quick.take.set()
        waiting = asyncio.create_task(app(slow.scope, slow.receive, slow.send))
        await asyncio.sleep(0)
        await app(quick.scope, quick.receive, quick.send)  # served although the slow one came first
        slow.arrive.set()
        slow.take.set()
        await waiting
        return quick.status, slow.status

    assert asyncio.run(scenario()) == (200, 200)


def test_requests_beyond_max_concurrency_wait_for_a_slot_then_get_429() -> None:
    async def scenario() -> tuple[int | None, bytes, int | None]:
        app = _two_slot_app()
        stuck, late = _Client(ROW.encode()), _Client(ROW.encode())
        stuck.arrive.set()  # its answer is being written to a client that does not read it: the slot is held
        late.arrive.set()
        late.take.set()
        holding = asyncio.create_task(app(stuck.scope, stuck.receive, stuck.send))
        await asyncio.sleep(0.01)
        await app(late.scope, late.receive, late.send)
        stuck.take.set()
        await holding
        return late.status, late.sent[1]["body"], stuck.status

    status, body, held = asyncio.run(scenario())
    assert status == 429 and b"maximum of 1 concurrent" in body and b"0.2 s" in body
    assert held == 200


def test_bodies_held_at_once_are_bounded() -> None:
    from core.local.serving.app import BODY_BUFFER_LIMIT
    from core.serverless import MAX_PAYLOAD_BYTES

    async def scenario() -> tuple[list[int | None], int | None, bytes, int | None]:
        app = _two_slot_app(max_concurrency=5)
        # Clients that announced the largest body and send it slowly: each holds its share of the buffer.
        holders = [_Client(b"", MAX_PAYLOAD_BYTES) for _ in range(BODY_BUFFER_LIMIT // MAX_PAYLOAD_BYTES)]
        tasks = [asyncio.create_task(app(c.scope, c.receive, c.send)) for c in holders]
        await asyncio.sleep(0)
        one_more = _Client(ROW.encode())
        one_more.arrive.set()
        one_more.take.set()
        await app(one_more.scope, one_more.receive, one_more.send)
        for task in tasks:
            task.cancel()  # the clients went away: their shares are given back
        await asyncio.gather(*tasks, return_exceptions=True)
        again = _Client(ROW.encode())
        again.arrive.set()
        again.take.set()
        await app(again.scope, again.receive, again.send)
        return [c.status for c in holders], one_more.status, one_more.sent[1]["body"], again.status

    holders, status, body, again = asyncio.run(scenario())
    assert holders == [None] * len(holders)  # still receiving
    assert status == 503 and b"MB of other requests' bodies" in body
    assert again == 200
