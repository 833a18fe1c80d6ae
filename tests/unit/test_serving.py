"""The local endpoint server as a real process: protocol, bad input, hot swap, failures, shutdown.

Every server here is started the way the deployer starts it (``python -m core.local.serving --config``,
port 0, output to a log file), waited for through its state.json, and terminated in teardown whatever
the test's outcome.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.local.runner import repack_model
from core.sources import ENTRY_POINT
from tests.conftest import LESSON_ENTRY_POINT
from tests.unit.serving_support import read_state, wait_for

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DATA = ROOT / "core" / "data" / "california_housing.csv.gz"
NAME = "housing-prod"
MAX_BODY = 6 * 1024 * 1024
START_TIMEOUT = 60.0


# ------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Model:
    tar: Path
    sha256: str
    estimator: Any
    test_csv: Path

    def predict(self, rows: list[str]) -> np.ndarray:
        matrix = np.array([[float(v) for v in row.split(",")] for row in rows])
        return self.estimator.predict(matrix)


def _run_all(commands: list[tuple[list[str], dict[str, str]]]) -> None:
    # The two models' steps run side by side: half the wall time on two cores.
    processes = [
        subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for cmd, env in commands
    ]
    try:
        for process, (cmd, _) in zip(processes, commands, strict=True):
            output, _ = process.communicate(timeout=300)
            assert process.returncode == 0, f"{cmd} failed:\n{output.decode(errors='replace')}"
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    """Two fitted models (split seeds 42 and 7) packed as SageMaker's repack leaves them: model.joblib at the
    root, the inference code in code/entry_point.py."""
    base = tmp_path_factory.mktemp("serving-models")
    seeds = {"a": 42, "b": 7}
    _run_all(
        [
            (
                [
                    PYTHON,
                    "container_scripts/preprocessing.py",
                    "--input-path",
                    str(DATA),
                    "--train-dir",
                    str(base / key / "train"),
                    "--test-dir",
                    str(base / key / "test"),
                    "--split-seed",
                    str(seed),
                ],
                {},
            )
            for key, seed in seeds.items()
        ]
    )
    _run_all(
        [
            (
                [PYTHON, "container_scripts/training.py"],
                {"SM_MODEL_DIR": str(base / key / "model"), "SM_CHANNEL_TRAIN": str(base / key / "train")},
            )
            for key in seeds
        ]
    )
    built = {}
    for key in seeds:
        trained = base / f"trained-{key}.tar.gz"
        with tarfile.open(trained, "w:gz") as tar:
            tar.add(base / key / "model" / "model.joblib", arcname="model.joblib")
        tar_path = base / f"model-{key}.tar.gz"
        repack_model(trained, ENTRY_POINT, tar_path)  # as the Register step (and SageMaker's repack) leaves it
        built[key] = Model(
            tar=tar_path,
            sha256=hashlib.sha256(tar_path.read_bytes()).hexdigest(),
            estimator=joblib.load(base / key / "model" / "model.joblib"),
            test_csv=base / key / "test" / "test.csv",
        )
    return built


@pytest.fixture(scope="module")
def rows(models: dict[str, Model]) -> list[str]:
    """1,000 real feature rows (the target column dropped), as the CSV text a client would send."""
    lines = models["a"].test_csv.read_text().splitlines()[:1000]
    return [line.split(",", 1)[1] for line in lines]


# ------------------------------------------------------------------------------------------ servers


def write_config(folder: Path, model: Model, **overrides: Any) -> Path:
    config = {
        "endpoint_name": NAME,
        "model_tar": str(model.tar),
        "model_sha256": model.sha256,
        "max_concurrency": 5,
        "host": "127.0.0.1",
        "port": 0,
        **overrides,
    }
    path = folder / "endpoint.json"
    temporary = folder / "endpoint.json.tmp"
    temporary.write_text(json.dumps(config))
    os.replace(temporary, path)  # the server may re-read it at any time: never let it see half a file
    return path


class Server:
    """One server process started from its config; its output goes to a log file, never to our pipes."""

    def __init__(self, folder: Path, model: Model, **overrides: Any) -> None:
        self.folder = folder
        self.config = write_config(folder, model, **overrides)
        self.log_path = folder / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [PYTHON, "-m", "core.local.serving", "--config", str(self.config)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def state(self) -> dict[str, Any] | None:
        return read_state(self.folder)

    def wait_in_service(self) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            state = self.state
            if state and state["status"] == "Failed":
                raise AssertionError(f"server failed: {state['failure_reason']}\n{self.log()}")
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            return state if state and state["status"] == "InService" else None

        return wait_for(ready, START_TIMEOUT, "state InService")

    @property
    def url(self) -> str:
        return self.state["url"]

    @property
    def port(self) -> int:
        return self.state["port"]

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def running(folder: Path, model: Model, **overrides: Any) -> Iterator[Server]:
    server = Server(folder, model, **overrides)
    try:
        server.wait_in_service()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(models: dict[str, Model], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared endpoint for the protocol tests, serving model a."""
    with running(tmp_path_factory.mktemp("endpoint"), models["a"]) as started:
        yield started


# ------------------------------------------------------------------------------------------ clients


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def floats(self) -> list[float]:
        return [float(line) for line in self.text.splitlines()]


def request(
    server: Server,
    method: str,
    path: str,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Answer:
    conn = connection or server.connection()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        if connection is None:
            conn.close()


def invoke(server: Server, body: bytes | str, content_type: str = "text/csv", **kwargs: Any) -> Answer:
    if isinstance(body, str):
        body = body.encode()
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    return request(server, "POST", kwargs.pop("path", "/invocations"), body, headers, **kwargs)


def runtime_client(server: Server) -> Any:
    """boto3's sagemaker-runtime client pointed at the server, as the local backend's invoke makes it."""
    import boto3

    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def assert_close(got: list[float], expected: np.ndarray) -> None:
    assert len(got) == len(expected)
    np.testing.assert_allclose(np.array(got), expected, rtol=0, atol=1e-9)


def assert_serves(server: Server, rows: list[str], model: Model) -> None:
    answer = invoke(server, "\n".join(rows[:3]) + "\n")
    assert answer.status == 200, answer.text
    assert_close(answer.floats(), model.predict(rows[:3]))


# ---------------------------------------------------------------------------------- state and ping


def test_state_file_describes_the_running_server(server: Server, models: dict[str, Model]) -> None:
    state = server.state
    assert state["pid"] == server.process.pid
    assert state["status"] == "InService"
    assert state["model_sha256"] == models["a"].sha256
    assert state["failure_reason"] is None and state["last_reload_error"] is None
    assert state["port"] > 0 and state["url"] == f"http://127.0.0.1:{state['port']}"
    # The archive was extracted into the server's own folder, keyed by its checksum.
    assert (server.folder / "models" / models["a"].sha256 / "model.joblib").is_file()


def test_ping_answers_200_with_the_model_checksum(server: Server, models: dict[str, Model]) -> None:
    answer = request(server, "GET", "/ping")
    assert answer.status == 200
    assert answer.headers["x-model-sha256"] == models["a"].sha256


# ------------------------------------------------------------------------------------- predictions


def test_csv_predictions_equal_model_predict(server: Server, models: dict[str, Model], rows: list[str]) -> None:
    for batch in (rows[:1], rows[:7], rows[:1000]):  # 1000 rows take the batch (pandas) parse path
        answer = invoke(server, "\n".join(batch) + "\n")
        assert answer.status == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["x-model-sha256"] == models["a"].sha256
        assert_close(answer.floats(), models["a"].predict(batch))


def test_csv_without_trailing_newline_and_with_crlf(server: Server, models: dict[str, Model], rows: list[str]) -> None:
    for body in ("\n".join(rows[:4]), "\r\n".join(rows[:4]) + "\r\n"):
        answer = invoke(server, body)
        assert answer.status == 200, answer.text
        assert_close(answer.floats(), models["a"].predict(rows[:4]))


def test_json_instances_and_the_endpoints_route(server: Server, models: dict[str, Model], rows: list[str]) -> None:
    instances = [[float(v) for v in row.split(",")] for row in rows[:5]]
    answer = invoke(
        server,
        json.dumps({"instances": instances}),
        "application/json",
        path=f"/endpoints/{NAME}/invocations",
        headers={"Accept": "application/json"},
    )
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert_close(json.loads(answer.body)["predictions"], models["a"].predict(rows[:5]))
    # With no Accept the container answers in SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, text/csv for this model.
    default = invoke(server, json.dumps(instances), "application/json")
    assert default.status == 200 and default.headers["content-type"].startswith("text/csv")
    assert_close(default.floats(), models["a"].predict(rows[:5]))


def test_accept_header_chooses_the_answer_format(server: Server, models: dict[str, Model], rows: list[str]) -> None:
    as_json = invoke(server, rows[0], headers={"Accept": "application/json"})
    assert as_json.status == 200
    assert_close(json.loads(as_json.body)["predictions"], models["a"].predict(rows[:1]))
    as_csv = invoke(
        server,
        json.dumps({"instances": [[float(v) for v in rows[0].split(",")]]}),
        "application/json",
        headers={"Accept": "text/csv, application/json;q=0.5"},
    )
    assert as_csv.status == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert_close(as_csv.floats(), models["a"].predict(rows[:1]))
    refused = invoke(server, rows[0], headers={"Accept": "image/png"})
    assert refused.status == 406 and "image/png" in refused.text


def test_boto3_sagemaker_runtime_client(server: Server, models: dict[str, Model], rows: list[str]) -> None:
    from botocore.exceptions import ClientError

    client = runtime_client(server)
    response = client.invoke_endpoint(EndpointName=NAME, ContentType="text/csv", Body="\n".join(rows[:10]).encode())
    assert response["ContentType"].startswith("text/csv")
    assert response["InvokedProductionVariant"] == "AllTraffic"
    got = [float(line) for line in response["Body"].read().decode().splitlines()]
    assert_close(got, models["a"].predict(rows[:10]))

    # A refusal of the entry point reaches boto3 users as SageMaker Runtime's ModelError, the container's
    # status and sentence inside, exactly as from an AWS endpoint.
    with pytest.raises(ClientError) as refused:
        client.invoke_endpoint(EndpointName=NAME, ContentType="text/csv", Body=b"1,2,3")
    error = refused.value.response
    assert error["Error"]["Code"] == "ModelError" and error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400 and error["OriginalMessage"].startswith("Row 1 has 3 values")
    assert "Received client error (400) from primary" in error["Error"]["Message"]
    with pytest.raises(ClientError) as elsewhere:
        client.invoke_endpoint(EndpointName="housing-dev", ContentType="text/csv", Body=rows[0].encode())
    assert elsewhere.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "housing-dev" in elsewhere.value.response["Error"]["Message"]


# -------------------------------------------------------------------------------------- bad input

ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"

BAD_INPUTS = [
    # (id, body, content type, path, status, words the sentence must contain)
    ("too-few-values", "1,2,3", "text/csv", None, 400, ["Row 1", "3 values", "8"]),
    ("too-many-on-row-2", f"{ROW}\n{ROW},9", "text/csv", None, 400, ["Row 2", "9 values"]),
    ("not-a-number", ROW.replace("41.0", "forty"), "text/csv", None, 400, ["Row 1", "column 2", "'forty'"]),
    ("empty-body", "", "text/csv", None, 400, ["empty"]),
    ("blank-lines-only", "\n \n", "text/csv", None, 400, ["empty"]),
    (
        "header-row",
        "MedInc,HouseAge,AveRooms,AveBedrms,Population,AveOccup,Latitude,Longitude\n" + ROW,
        "text/csv",
        None,
        400,
        ["header", "no header"],
    ),
    ("nan", ROW.replace("41.0", "nan"), "text/csv", None, 400, ["'nan'", "finite"]),
    ("infinity", ROW.replace("-122.23", "-inf"), "text/csv", None, 400, ["'-inf'", "finite"]),
    ("overflow-to-inf", ROW.replace("322.0", "1e999"), "text/csv", None, 400, ["'1e999'", "finite"]),
    ("json-nan", '{"instances": [[NaN, 1, 2, 3, 4, 5, 6, 7]]}', "application/json", None, 400, ["finite"]),
    ("malformed-json", '{"instances": [[1, 2,', "application/json", None, 400, ["JSON", "line 1"]),
    ("json-wrong-shape", '{"rows": []}', "application/json", None, 400, ['"instances"']),
    ("json-5000-digits", "[[" + "9" * 5000 + ",1,2,3,4,5,6,7]]", "application/json", None, 400, ["finite"]),
    ("json-short-row", '{"instances": [[1, 2]]}', "application/json", None, 400, ["instances[0]", "2 values"]),
    ("json-string", '{"instances": [["1",2,3,4,5,6,7,8]]}', "application/json", None, 400, ["not a number"]),
    ("xml", "<rows/>", "application/xml", None, 415, ["application/xml", "text/csv"]),
    # The container assumes application/json when no Content-Type is sent.
    ("no-content-type", ROW, None, None, 400, ["JSON body is not valid", "Content-Type text/csv"]),
    ("underscore-digits", ROW.replace("322.0", "3_22"), "text/csv", None, 400, ["'3_22'", "plain decimal"]),
    ("non-ascii-digits", ROW.replace("41.0", "٤١"), "text/csv", None, 400, ["column 2", "plain decimal"]),
    ("overflowing-value", ROW.replace("37.88", "1e308"), "text/csv", None, 400, ["Latitude 1e+308", "-90 and 90"]),
    ("other-endpoint", ROW, "text/csv", "/endpoints/housing-dev/invocations", 404, ["'housing-dev'", NAME]),
    ("not-utf8", b"\xff\xfe1,2", "text/csv", None, 400, ["UTF-8"]),
]


@pytest.mark.parametrize(
    ("body", "content_type", "path", "status", "words"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_gets_one_sentence_and_the_server_keeps_serving(
    server: Server,
    models: dict[str, Model],
    rows: list[str],
    body: str | bytes,
    content_type: str | None,
    path: str | None,
    status: int,
    words: list[str],
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if isinstance(body, str):
        body = body.encode()
    with contextlib.closing(server.connection()) as conn:
        answer = request(server, "POST", path or "/invocations", body, headers, connection=conn)
        assert answer.status == status, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        assert "\n" not in answer.text.strip() and answer.text.strip().endswith(".")
        for word in words:
            assert word in answer.text
        # The next good request, on the same keep-alive connection, is served.
        good = request(server, "POST", "/invocations", rows[0].encode(), {"Content-Type": "text/csv"}, conn)
        assert good.status == 200
        assert_close(good.floats(), models["a"].predict(rows[:1]))


def test_body_over_6_mb_is_refused_before_it_is_read(server: Server, models: dict[str, Model], rows: list[str]) -> None:
    body = (rows[0] + "\n").encode() * (MAX_BODY // (len(rows[0]) + 1) + 1)
    assert len(body) > MAX_BODY
    declared = invoke(server, body)
    assert declared.status == 413
    assert str(len(body)) in declared.text and "6 MB" in declared.text

    # Chunked transfer announces no length: the server counts the bytes as they arrive.
    chunk = b"x" * (1024 * 1024)
    chunked = request(server, "POST", "/invocations", iter([chunk] * 7), {"Content-Type": "text/csv"})
    assert chunked.status == 413 and "6 MB" in chunked.text

    # Exactly at the limit is still a request (refused here for its content, not its size).
    at_limit = invoke(server, b"1" * MAX_BODY)
    assert at_limit.status == 400
    assert_serves(server, rows, models["a"])


def test_wrong_methods_and_paths(server: Server) -> None:
    assert request(server, "GET", "/invocations").status == 405
    assert request(server, "POST", "/ping").status == 405
    missing = request(server, "GET", "/models")
    assert missing.status == 404 and "/ping" in missing.text


def test_no_log_line_per_request(server: Server, rows: list[str]) -> None:
    before = server.log().count("\n")
    with contextlib.closing(server.connection()) as conn:
        for _ in range(50):
            answer = request(server, "POST", "/invocations", rows[0].encode(), {"Content-Type": "text/csv"}, conn)
            assert answer.status == 200
    assert server.log().count("\n") == before
    assert "in service" in server.log()


# ------------------------------------------------------------------------------ the container's chain


def _archive_with_code(folder: Path, estimator: Any, entry_point: str | None) -> Model:
    """model.joblib, and code/entry_point.py with this text unless None (an archive from before repacking)."""
    model = folder / "model.joblib"
    joblib.dump(estimator, model)
    path = folder / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(model, arcname="model.joblib")
        if entry_point is not None:
            info = tarfile.TarInfo("code/entry_point.py")
            data = entry_point.encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Model(path, hashlib.sha256(path.read_bytes()).hexdigest(), joblib.load(model), path)


def test_one_row_fails_with_only_model_fn_as_it_does_on_sagemaker(
    models: dict[str, Model], rows: list[str], tmp_path: Path
) -> None:
    """aws/sagemaker-scikit-learn-container#15: the default decoder squeezes one CSV row to 1-D."""
    from botocore.exceptions import ClientError

    lesson = _archive_with_code(tmp_path, models["a"].estimator, LESSON_ENTRY_POINT)
    (tmp_path / "endpoint").mkdir()
    with running(tmp_path / "endpoint", lesson) as server:
        for body in (rows[0], rows[0] + "\n"):
            failed = invoke(server, body)
            # The reason ("Expected 2D array") is in the log, as on SageMaker; the answer says which handler failed.
            assert failed.status == 500 and failed.text.startswith("predict_fn (the container's default) failed")
        with pytest.raises(ClientError) as model_error:
            runtime_client(server).invoke_endpoint(EndpointName=NAME, ContentType="text/csv", Body=rows[0].encode())
        response = model_error.value.response
        assert response["Error"]["Code"] == "ModelError" and response["OriginalStatusCode"] == 500
        assert "Received server error (500) from primary" in response["Error"]["Message"]
        assert "predict_fn (the container's default) failed" in response["OriginalMessage"]
        # Two rows stay 2-D, and the container's default encoder answers them (float32 input, as there).
        two = invoke(server, "\n".join(rows[:2]))
        assert two.status == 200 and len(two.floats()) == 2
        np.testing.assert_allclose(two.floats(), models["a"].predict(rows[:2]), rtol=1e-5)
        # A JSON {"instances": ...} body fails in the default decoder too.
        instances = json.dumps({"instances": [[float(v) for v in r.split(",")] for r in rows[:2]]})
        assert invoke(server, instances, "application/json").status == 500
        log = server.log()
        assert "model_fn + the container's defaults" in log and "Expected 2D array" in log
    # The project's entry point, repacked beside the same kind of model, answers that one row.
    with running(tmp_path, models["a"]) as server:
        answer = invoke(server, rows[0])
        assert answer.status == 200
        assert_close(answer.floats(), models["a"].predict(rows[:1]))
        assert "model_fn, transform_fn" in server.log() and "code/entry_point.py from the archive" in server.log()


def test_an_archive_without_code_is_served_with_the_installed_entry_point(
    models: dict[str, Model], rows: list[str], tmp_path: Path
) -> None:
    # Versions registered before the Register step repacked have model.joblib alone.
    old = _archive_with_code(tmp_path, models["a"].estimator, None)
    (tmp_path / "endpoint").mkdir()
    with running(tmp_path / "endpoint", old) as server:
        assert_serves(server, rows, models["a"])
        assert invoke(server, rows[0]).status == 200
        assert "the installed entry_point (the archive has no code/)" in server.log()


# ------------------------------------------------------------------------------------------ fuzzing

_FIELDS = st.one_of(
    st.floats().map(repr),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.text(max_size=6),
    st.sampled_from(["", " ", "nan", "-inf", "Infinity", "MedInc", "1e999", '"1.5"', "0x1F", "1_0", "\t2"]),
)
_ROWS = st.lists(st.lists(_FIELDS, max_size=10).map(",".join), max_size=12)
_CSVISH = st.tuples(_ROWS, st.sampled_from(["\n", "\r\n", "\r"])).map(lambda t: t[1].join(t[0]).encode())


# Large bodies (over 8 KiB) take the pandas path: many good rows with one arbitrary row among them.
def _big_body(parts: tuple[int, int, list[str]]) -> bytes:
    before, after, defect = parts
    return "\n".join([ROW] * before + [",".join(defect)] + [ROW] * after).encode()


_BIG = st.tuples(st.integers(0, 200), st.integers(200, 300), st.lists(_FIELDS, max_size=10)).map(_big_body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=2000), _CSVISH, _BIG))
def test_arbitrary_bodies_never_get_a_5xx(server: Server, body: bytes) -> None:
    answer = invoke(server, body)
    assert answer.status < 500, answer.text
    assert answer.status in (200, 400), (answer.status, answer.text)
    if answer.status == 200:
        values = answer.floats()
        assert values and all(math.isfinite(v) for v in values)
    else:
        assert "\n" not in answer.text.strip()


def test_server_alive_after_fuzzing(server: Server, models: dict[str, Model], rows: list[str]) -> None:
    # Runs after the property test in file order; it would also pass alone.
    assert server.process.poll() is None
    assert_serves(server, rows, models["a"])


# ------------------------------------------------------------------------------- concurrency limit


def test_a_request_takes_its_slot_once_its_body_has_arrived_and_sigterm_is_graceful(
    models: dict[str, Model], rows: list[str], tmp_path: Path
) -> None:
    # (The 429 above max_concurrency is tested in-process, test_serving_parts.py: a slot is held only while
    # a request is answered, which on loopback takes too little time to catch from outside.)
    with running(tmp_path, models["a"], max_concurrency=1, queue_timeout_seconds=0.3) as limited:
        # A request whose body has not all arrived does not hold the only slot.
        holder = socket.create_connection(("127.0.0.1", limited.port), timeout=30)
        payload = (rows[0] + "\n").encode()
        holder.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload[:10]
        )
        time.sleep(0.2)  # the server has taken the head in
        assert_serves(limited, rows, models["a"])
        holder.sendall(payload[10:])
        reply = holder.recv(65536)
        holder.close()
        assert reply.startswith(b"HTTP/1.1 200")
        # SIGTERM: a graceful stop, exit status 0.
        limited.process.send_signal(signal.SIGTERM)
        assert limited.process.wait(timeout=15) == 0
        assert "stopped" in limited.log()


# ---------------------------------------------------------------------------------- reload and swap


def _sighup(server: Server) -> None:
    server.process.send_signal(signal.SIGHUP)


def test_failed_reload_keeps_the_old_model(models: dict[str, Model], rows: list[str], tmp_path: Path) -> None:
    with running(tmp_path, models["a"]) as server:
        # The config names model b's archive with a checksum that does not match it.
        write_config(tmp_path, models["b"], model_sha256="0" * 64)
        _sighup(server)
        state = wait_for(lambda: (s := server.state) and s["last_reload_error"] and s, 30, "reload error")
        assert "sha256" in state["last_reload_error"]
        assert state["status"] == "InService"
        assert state["model_sha256"] == models["a"].sha256
        assert_serves(server, rows, models["a"])
        assert server.process.poll() is None

        # An archive that is no tar.gz at all, with the right checksum.
        broken = tmp_path / "broken.tar.gz"
        broken.write_bytes(b"not a tar file")
        sha = hashlib.sha256(broken.read_bytes()).hexdigest()
        write_config(tmp_path, models["b"], model_tar=str(broken), model_sha256=sha)
        _sighup(server)
        state = wait_for(
            lambda: (s := server.state) and "tar.gz" in (s["last_reload_error"] or "") and s, 30, "second error"
        )
        assert state["model_sha256"] == models["a"].sha256
        assert_serves(server, rows, models["a"])


def test_hot_swap_under_load_fails_no_request(models: dict[str, Model], rows: list[str], tmp_path: Path) -> None:
    batch = rows[:5]
    body = ("\n".join(batch) + "\n").encode()
    expected = {models[k].sha256: models[k].predict(batch) for k in ("a", "b")}
    assert not np.allclose(expected[models["a"].sha256], expected[models["b"].sha256])

    with running(tmp_path, models["a"]) as server:
        # Two clients, each on its own keep-alive connection, each recording the answers it got in order.
        answers: list[list[tuple[str, list[float]]]] = [[], []]
        failures: list[str] = []
        stop = threading.Event()

        def client(mine: list[tuple[str, list[float]]]) -> None:
            conn = server.connection()
            try:
                while not stop.is_set():
                    try:
                        answer = request(server, "POST", "/invocations", body, {"Content-Type": "text/csv"}, conn)
                    except (OSError, http.client.HTTPException) as exc:
                        failures.append(repr(exc))
                        return
                    if answer.status != 200:
                        failures.append(f"{answer.status} {answer.text}")
                    else:
                        mine.append((answer.headers["x-model-sha256"], answer.floats()))
            finally:
                conn.close()

        def answered() -> int:
            return min(len(mine) for mine in answers)

        workers = [threading.Thread(target=client, args=(mine,), name="swap-client") for mine in answers]
        for worker in workers:
            worker.start()
        try:
            wait_for(lambda: answered() >= 20 or failures, 30, "requests before the swap")
            write_config(tmp_path, models["b"])
            _sighup(server)
            wait_for(lambda: (server.state or {}).get("model_sha256") == models["b"].sha256, 60, "swap")
            seen = answered()
            wait_for(lambda: answered() >= seen + 20 or failures, 30, "requests after the swap")
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)

        assert failures == []
        for mine in answers:
            shas = [sha for sha, _ in mine]
            assert shas[0] == models["a"].sha256 and shas[-1] == models["b"].sha256
            switch = shas.index(models["b"].sha256)
            assert set(shas[switch:]) == {models["b"].sha256}  # once swapped, never the old model again
            for sha, values in mine:
                assert_close(values, expected[sha])
        state = server.state
        assert state["last_reload_error"] is None and state["status"] == "InService"
        # The old model's extracted folder is cleaned up; the new one is in place.
        assert not (tmp_path / "models" / models["a"].sha256).exists()
        assert (tmp_path / "models" / models["b"].sha256 / "model.joblib").is_file()


# --------------------------------------------------------------------------------- start failures


def test_checksum_mismatch_fails_the_endpoint(models: dict[str, Model], tmp_path: Path) -> None:
    server = Server(tmp_path, models["a"], model_sha256="f" * 64)
    try:
        returncode = server.process.wait(timeout=START_TIMEOUT)
    finally:
        server.stop()
    assert returncode != 0
    state = server.state
    assert state["status"] == "Failed"
    assert "sha256" in state["failure_reason"] and "f" * 64 in state["failure_reason"]
    assert state["model_sha256"] is None
    assert not (tmp_path / "models" / models["a"].sha256).exists()  # nothing unverified was extracted


def test_port_in_use_fails_the_endpoint(models: dict[str, Model], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = Server(tmp_path, models["a"], port=port)
        try:
            returncode = server.process.wait(timeout=START_TIMEOUT)
        finally:
            server.stop()
    assert returncode != 0
    state = server.state
    assert state["status"] == "Failed"
    assert str(port) in state["failure_reason"] and "listen" in state["failure_reason"]
