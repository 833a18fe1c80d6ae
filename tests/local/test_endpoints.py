"""Deploy registered versions to real local endpoints and invoke them, through the local backend."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import joblib
import pandas as pd
import pytest

from core.errors import NotFound, UserError
from core.local.backend import LocalBackend
from core.models import ApprovalStatus, EndpointStatus
from tests.conftest import BUNDLED, home_with_runs
from tui.cli import main

ROWS = pd.read_csv(BUNDLED).sample(25, random_state=3)
FEATURES = ROWS.iloc[:, :8].to_numpy()
CSV_BODY = ("\n".join(",".join(repr(float(v)) for v in row) for row in FEATURES) + "\n").encode()


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory):
    """A home with two versions from real runs (split seeds 42 and 123): v1 Approved, v2 pending."""
    home = tmp_path_factory.mktemp("endpoints") / "home"
    with home_with_runs(home) as backend:
        v1 = next(v for v in backend.list_versions() if v.version == 1)  # the two runs race: either seed
        backend.set_approval(v1.arn, ApprovalStatus.APPROVED, "baseline")
        yield home


@pytest.fixture
def backend(registry_home: Path):
    backend = LocalBackend(registry_home)
    yield backend
    for endpoint in backend.list_endpoints():
        backend.delete_endpoint(endpoint.name)


def version(backend: LocalBackend, number: int):
    return next(v for v in backend.list_versions() if v.version == number)


def model_of(backend: LocalBackend, number: int):
    archive = Path(version(backend, number).model_data_url.removeprefix("file://"))
    with tarfile.open(archive) as tar:
        return joblib.load(io.BytesIO(tar.extractfile("model.joblib").read()))


def test_deploy_and_invoke_match_the_model_via_boto3_and_plain_http(backend: LocalBackend) -> None:
    v1 = version(backend, 1)
    endpoint = backend.deploy(v1.arn, "housing-prod", 2048, 5, wait=True)
    assert endpoint.status is EndpointStatus.IN_SERVICE and endpoint.url.startswith("http://127.0.0.1:")
    expected = model_of(backend, 1).predict(FEATURES)

    answer = backend.invoke_endpoint("housing-prod", CSV_BODY)  # boto3 sagemaker-runtime
    assert answer.content_type.startswith("text/csv")
    assert answer.predictions() == pytest.approx(list(expected), abs=1e-9)

    request = urllib.request.Request(
        endpoint.url + "/invocations", data=CSV_BODY, headers={"Content-Type": "text/csv"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        plain = [float(line) for line in response.read().decode().split()]
    assert plain == pytest.approx(list(expected), abs=1e-9)
    with urllib.request.urlopen(endpoint.url + "/ping", timeout=10) as response:
        assert response.status == 200

    [listed] = backend.list_endpoints()
    described = listed.to_description()
    assert described["EndpointStatus"] == "InService" and described["HousingTui"]["ModelPackageArn"] == v1.arn
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 5,
    }


def test_only_approved_versions_deploy_unless_forced(backend: LocalBackend, registry_home: Path) -> None:
    v2 = version(backend, 2)
    with pytest.raises(UserError, match="version 2 is PendingManualApproval, and only Approved versions deploy"):
        backend.deploy(v2.arn, "pending", 1024, 1)
    assert backend.list_endpoints() == [] and not (registry_home / "endpoints" / "pending").exists()
    forced = backend.deploy(v2.arn, "pending", 1024, 1, force=True, wait=True)
    assert forced.status is EndpointStatus.IN_SERVICE and forced.model_package_arn == v2.arn


def test_redeploying_switches_models_with_no_failed_request(backend: LocalBackend) -> None:
    v1, v2 = version(backend, 1), version(backend, 2)
    backend.deploy(v1.arn, "swap", 2048, 5, wait=True)
    first_row = FEATURES[:1]
    old = float(model_of(backend, 1).predict(first_row)[0])
    new = float(model_of(backend, 2).predict(first_row)[0])
    assert abs(old - new) > 1e-6
    body = (",".join(repr(float(v)) for v in first_row[0]) + "\n").encode()
    answers: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                answers.append(backend.invoke_endpoint("swap", body).predictions()[0])
            except Exception as exc:
                failures.append(repr(exc))

    def wait_for_answers(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(answers) < count and not failures:
            assert time.monotonic() < deadline, f"only {len(answers)} answers in 60 s"
            time.sleep(0.01)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        wait_for_answers(20)
        switched = backend.deploy(v2.arn, "swap", 2048, 5, force=True, wait=True)
        wait_for_answers(len(answers) + 20)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert failures == []
    assert switched.status is EndpointStatus.IN_SERVICE and switched.model_package_arn == v2.arn
    assert answers[0] == pytest.approx(old, abs=1e-9) and answers[-1] == pytest.approx(new, abs=1e-9)
    assert set(round(a, 9) for a in answers) == {round(old, 9), round(new, 9)}
    # Once the switch is seen, the old model never answers again.
    first_new = next(i for i, a in enumerate(answers) if a == pytest.approx(new, abs=1e-9))
    assert all(a == pytest.approx(new, abs=1e-9) for a in answers[first_new:])


def test_a_killed_server_reads_as_failed_and_delete_still_cleans_up(backend: LocalBackend, registry_home: Path) -> None:
    backend.deploy(version(backend, 1).arn, "doomed", 2048, 5, wait=True)
    pid = backend.endpoints._row("doomed")["server_pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while backend.get_endpoint("doomed").status is not EndpointStatus.FAILED and time.monotonic() < deadline:
        time.sleep(0.05)
    failed = backend.get_endpoint("doomed")
    assert failed.status is EndpointStatus.FAILED and "process exited" in failed.failure_reason
    with pytest.raises(UserError, match="endpoint doomed is Failed"):
        backend.invoke_endpoint("doomed", CSV_BODY)
    backend.delete_endpoint("doomed")
    assert backend.list_endpoints() == [] and not (registry_home / "endpoints" / "doomed").exists()
    with pytest.raises(NotFound):
        backend.get_endpoint("doomed")


def test_a_model_that_cannot_load_fails_the_endpoint_with_the_reason(backend: LocalBackend, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"this is not a joblib file"
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    import hashlib

    broken = backend.registry.register(
        archive.as_uri(),
        hashlib.sha256(archive.read_bytes()).hexdigest(),
        version(backend, 1).metrics.to_report(),
        None,
        {},
        ApprovalStatus.PENDING,
    )
    try:
        endpoint = backend.deploy(broken.arn, "broken", 2048, 5, force=True, wait=True)
        assert endpoint.status is EndpointStatus.FAILED
        assert endpoint.failure_reason.startswith("entry_point.model_fn could not load the model")
    finally:
        with backend.store.transaction() as db:  # keep the shared registry as the other tests expect it
            db.execute("DELETE FROM model_packages WHERE arn = ?", (broken.arn,))


def test_a_changed_artifact_is_not_served(backend: LocalBackend, registry_home: Path) -> None:
    v1 = version(backend, 1)
    archive = Path(v1.model_data_url.removeprefix("file://"))
    original = archive.read_bytes()
    archive.write_bytes(original + b"tampered")
    try:
        with pytest.raises(UserError, match="no longer matches the sha256"):
            backend.deploy(v1.arn, "tampered", 2048, 5)
    finally:
        archive.write_bytes(original)
    assert backend.list_endpoints() == []


@pytest.fixture
def cli(registry_home: Path, capsys: pytest.CaptureFixture[str], backend: LocalBackend):
    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            import sys

            old, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            code = main(["--home", str(registry_home), *args])
        except SystemExit as exit_:
            code = exit_.code
        finally:
            if stdin is not None:
                sys.stdin = old
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_cli_deploy_invoke_endpoints_delete(cli, tmp_path: Path) -> None:
    code, out, _ = cli("deploy", "1", "--endpoint", "cli-ep", "--memory", "3072", "--max-concurrency", "7", "--wait")
    assert code == 0 and out.startswith("cli-ep: InService at http://127.0.0.1:")
    rows = tmp_path / "rows.csv"
    ROWS.to_csv(rows, index=False)  # with a header and MedHouseVal: the CLI picks the features
    code, out, _ = cli("invoke", "cli-ep", "--file", str(rows), "--json")
    result = json.loads(out)
    ours = result["HousingTui"]
    assert code == 0 and len(ours["Predictions"]) == 25 and ours["Actuals"] == list(ROWS["MedHouseVal"])
    code, out, _ = cli("invoke", "cli-ep", stdin=CSV_BODY.decode())
    assert code == 0 and len(out.split()) == 25
    code, out, _ = cli("endpoints", "--json")
    [endpoint] = json.loads(out)["Endpoints"]
    assert endpoint["EndpointName"] == "cli-ep" and endpoint["EndpointStatus"] == "InService"
    assert endpoint["HousingTui"]["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 7}
    code, out, err = cli("invoke", "cli-ep", stdin="1,2,3\n")
    assert code == 2 and "endpoint cli-ep refused the rows (400): Row 1 has 3 values" in err
    code, out, _ = cli("delete-endpoint", "cli-ep")
    assert code == 0 and out.strip() == "deleted endpoint cli-ep"
    assert json.loads(cli("endpoints", "--json")[1]) == {"Endpoints": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "arn:aws:sagemaker:local:000000000000:model-package/californiahousing/99"], "no model package"),
        (["deploy", "1", "--endpoint", "bad_name"], "endpoint name 'bad_name' breaks SageMaker's name rule"),
        (["deploy", "1", "--memory", "3000"], "memory 3000 MB is not a serverless size"),
        (["deploy", "1", "--max-concurrency", "0"], "max concurrency 0 is outside 1..200"),
        (["deploy", "1", "--max-concurrency", "201"], "max concurrency 201 is outside 1..200"),
        (["deploy", "2"], "only Approved versions deploy"),
        (["invoke", "nowhere", "--file", "/dev/null"], "there are no rows to send"),
        (["invoke", "nowhere"], "no endpoint named nowhere"),
        (["delete-endpoint", "nowhere"], "no endpoint named nowhere"),
    ],
)
def test_bad_cli_input_is_one_sentence_and_creates_nothing(
    cli, registry_home: Path, args: list[str], message: str
) -> None:
    code, out, err = cli(*args, stdin="1,2,3,4,5,6,7,8\n")
    assert code == 2 and out == "" and message in err
    assert json.loads(cli("endpoints", "--json")[1]) == {"Endpoints": []}
    folder = registry_home / "endpoints"
    assert not folder.exists() or list(folder.iterdir()) == []


def served_sha256(url: str) -> str:
    with urllib.request.urlopen(url + "/ping", timeout=10) as response:
        return response.headers["x-model-sha256"]


def test_deploys_of_one_endpoint_are_serialized(backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.local.registry import LocalRegistry

    v1, v2 = version(backend, 1), version(backend, 2)
    backend.deploy(v1.arn, "serial", 1024, 2, wait=True)
    # Deploy A (of v2) is held inside its deploy, after it saw the endpoint InService; deploy B (of v1)
    # comes meanwhile. Without a lock both would go ahead and point the server each at its version.
    inside, release = threading.Event(), threading.Event()
    original_get = LocalRegistry.get

    def held_get(self, arn):
        if threading.current_thread().name == "deploy-a":
            inside.set()
            release.wait(30)
        return original_get(self, arn)

    monkeypatch.setattr(LocalRegistry, "get", held_get)
    outcome: dict[str, object] = {}

    def deploy_a() -> None:
        try:
            outcome["a"] = LocalBackend(backend.home).deploy(v2.arn, "serial", 1024, 2, force=True, wait=True)
        except UserError as exc:
            outcome["a"] = exc

    thread = threading.Thread(target=deploy_a, name="deploy-a")
    thread.start()
    assert inside.wait(30)
    try:
        # Another process, as a second terminal would run it.
        other = subprocess.run(
            [sys.executable, "-m", "tui.cli", "--home", str(backend.home), "deploy", "1", "--endpoint", "serial"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        with pytest.raises(UserError) as caught:  # and another thread of this one, as the app would
            LocalBackend(backend.home).deploy(v1.arn, "serial", 1024, 2, wait=True)
    finally:
        release.set()
        thread.join(120)
    assert other.returncode == 2
    assert other.stderr.strip() == (
        f"housing-tui: error: another deploy of serial is in progress (pid {os.getpid()}); wait for it, then deploy "
        "again"
    )
    assert str(caught.value) == "another deploy of serial is in progress in this process; wait for it"
    served = backend.get_endpoint("serial")
    assert served.model_package_arn == v2.arn and outcome["a"] == served
    assert served_sha256(served.url) == v2.model_sha256  # the record names what the server loaded


def test_a_deploy_lock_left_by_a_dead_process_is_taken_over(backend: LocalBackend) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    with backend.store.transaction() as db:
        db.execute(
            "INSERT INTO endpoint_locks (name, owner_pid, owner_start, owner_boot, acquired) VALUES (?, ?, ?, ?, ?)",
            ("orphan", dead.pid, 1, None, time.time()),
        )
    endpoint = backend.deploy(version(backend, 1).arn, "orphan", 1024, 1, wait=True)
    assert endpoint.status is EndpointStatus.IN_SERVICE
    with backend.store.connect() as db:
        assert db.execute("SELECT COUNT(*) FROM endpoint_locks").fetchone()[0] == 0
