"""How many AWS calls the SageMaker backend makes: what never changes is asked for once, then kept.

Each test counts the calls (by operation, with a botocore event hook) against moto and the Stubber of the
operations moto lacks. Counts are deterministic; no test looks at a clock.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import pytest

from core.models import ApprovalStatus, EndpointStatus
from core.sagemaker import registry as registry_module
from core.sagemaker.backend import SageMakerBackend
from core.sagemaker.config import SageMakerSettings
from tests.aws import BUCKET, REGION, ROLE, moto_execution, moto_sagemaker
from tests.aws_calls import (
    CallCounter,
    add_execution,
    add_version,
    create_pipeline,
    put_evaluation,
)

LIST = "ListPipelineExecutions"
STEPS = "ListPipelineExecutionSteps"
PARAMETERS = "ListPipelineParametersForExecution"


@pytest.fixture
def counter(sagemaker_clients) -> CallCounter:
    return CallCounter(sagemaker_clients)


@pytest.fixture
def open_backend(sagemaker_clients, tmp_path: Path):
    """A backend as a new process has it: nothing in memory, the cache folder of the earlier ones."""

    def open_(cache: Path = tmp_path / "cache") -> SageMakerBackend:
        settings = SageMakerSettings(region=REGION, role_arn=ROLE, bucket=BUCKET)
        return SageMakerBackend(settings, cache, clients=sagemaker_clients)

    return open_


@pytest.fixture
def runs(sagemaker_clients, simulator) -> list[str]:
    """Three finished runs (newest last), each with a gate whose numbers come from its evaluation.json."""
    create_pipeline(sagemaker_clients)
    put_evaluation(sagemaker_clients)
    return [add_execution(sagemaker_clients, simulator, status) for status in ("Succeeded", "Failed", "Succeeded")]


def poll(backend: SageMakerBackend, limit: int | None = None) -> dict[str, list]:
    """What the runs screen and `executions` read: the list, then each run's steps."""
    return {e.arn: backend.list_steps(e.arn) for e in backend.list_executions(limit)}


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if "execution" in p.parts)


def test_finished_runs_are_read_once_then_a_poll_is_one_call(open_backend, runs, counter) -> None:
    backend = open_backend()
    first = poll(backend)
    # Per run: its parameters, its steps, and the gate's evaluation.json (the job's outputs, then the file);
    # once per process, the pipeline's definition (which step names fold into Register).
    assert counter.take() == Counter(
        {LIST: 1, PARAMETERS: 3, STEPS: 3, "DescribeProcessingJob": 3, "GetObject": 3, "DescribePipeline": 1}
    )
    assert poll(backend) == first
    assert counter.take() == Counter({LIST: 1})
    assert {s.gate.conditions[0].left for steps in first.values() for s in steps if s.gate} == {0.6433}


def test_a_new_process_reads_finished_runs_from_disk(open_backend, runs, counter, tmp_path: Path) -> None:
    first = poll(open_backend())
    counter.take()
    again = poll(open_backend())
    # No steps, parameters or evaluation asked for again; the definition is read once per process.
    assert counter.take() == Counter({LIST: 1, "DescribePipeline": 1})
    assert again == first  # times, gate numbers and the registered package come back from disk as they were
    files = cache_files(tmp_path / "cache")
    assert len(files) == 3
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert all(f.parent.parts[-5:-2] == ("123456789012", REGION, "pipeline") for f in files)


def test_a_running_execution_is_read_on_every_poll_and_kept_once_it_ended(
    open_backend, sagemaker_clients, simulator, counter, tmp_path: Path
) -> None:
    create_pipeline(sagemaker_clients)
    put_evaluation(sagemaker_clients)
    arn = add_execution(sagemaker_clients, simulator, "Executing")
    backend = open_backend()
    poll(backend)
    poll(backend)
    assert counter.take()[STEPS] == 2
    assert cache_files(tmp_path / "cache") == []  # nothing of a running execution goes to disk
    finished = add_execution(sagemaker_clients, simulator)  # its records, moved over to the running one
    simulator.steps[arn] = simulator.steps.pop(finished)
    moto_sagemaker().pipelines["CaliforniaHousingPipeline"].pipeline_executions.pop(finished)
    moto_execution(arn).pipeline_execution_status = "Succeeded"
    assert [s.status for s in poll(backend)[arn]][-1] == "Succeeded"
    poll(backend)
    poll(open_backend())
    assert counter.take()[STEPS] == 1


def test_a_limited_list_asks_only_about_the_newest_runs(open_backend, runs, counter) -> None:
    listed = open_backend().list_executions(limit=2)
    assert [e.arn for e in listed] == [runs[2], runs[1]]
    # moto answers every run in one page whatever MaxResults says: the older one is still never looked at.
    assert counter.take() == Counter({LIST: 1, PARAMETERS: 2})


DAMAGES = {
    "truncated": lambda text: text[: len(text) // 2],  # a write cut short
    "garbage": lambda text: "\x00garbage",
    "other format": lambda text: text.replace('"format": 1', '"format": 999'),  # another format version
    "wrong shape": lambda text: text.replace('"steps": [', '"steps": [7, '),  # valid JSON, not a record
    "other arn": lambda text: text.replace('"arn": "arn:aws:sagemaker:us-east-1:123456789012', '"arn": "arn:x'),
}


def test_a_damaged_cache_file_is_ignored_and_rewritten(
    open_backend, runs, sagemaker_clients, simulator, counter, tmp_path: Path
) -> None:
    runs += [add_execution(sagemaker_clients, simulator) for _ in range(len(DAMAGES) - len(runs))]
    first = poll(open_backend())
    files = cache_files(tmp_path / "cache")
    for path, damage in zip(files, DAMAGES.values(), strict=True):
        text = path.read_text()
        path.write_text(damage(text))
        assert path.read_text() != text
    counter.take()
    assert poll(open_backend()) == first
    assert counter.take()[STEPS] == len(DAMAGES)  # each damaged run was asked for again
    poll(open_backend())
    assert counter.take()[STEPS] == 0  # and its file was written whole again


def test_a_failed_run_retried_elsewhere_is_read_again(open_backend, runs, counter, simulator) -> None:
    failed = runs[1]
    poll(open_backend())
    backend = open_backend()
    poll(backend)
    counter.take()
    moto_execution(failed).pipeline_execution_status = "Executing"  # RetryPipelineExecution, from the console
    simulator.steps[failed][-1]["StepStatus"] = "Executing"
    assert [s.status for s in poll(backend)[failed]][-1] == "Executing"
    assert counter.take()[STEPS] == 1
    moto_execution(failed).pipeline_execution_status = "Failed"
    poll(open_backend())
    assert counter.take()[STEPS] == 1  # the record kept before the retry was dropped, not read back


def test_cache_files_stay_private(open_backend, runs, tmp_path: Path) -> None:
    os.umask(0o022)
    poll(open_backend())
    folders = {f.parent for f in cache_files(tmp_path / "cache")}
    assert folders and all(stat.S_IMODE(d.stat().st_mode) == 0o700 for d in folders)


def test_a_version_is_described_again_only_when_the_listing_shows_it_changed(
    open_backend, sagemaker_clients, counter
) -> None:
    put_evaluation(sagemaker_clients)
    arns = [add_version(sagemaker_clients) for _ in range(3)]
    backend = open_backend()
    counter.take()
    backend.list_versions()
    assert counter.take() == Counter({"ListModelPackages": 1, "DescribeModelPackage": 3, "GetObject": 3})
    backend.list_versions()
    assert counter.take() == Counter({"ListModelPackages": 1})
    # Approved from another terminal: the listing shows the new status, so that version alone is described.
    sagemaker_clients.sagemaker.update_model_package(ModelPackageArn=arns[0], ModelApprovalStatus="Approved")
    counter.take()  # the test's own call
    versions = {v.arn: v for v in backend.list_versions()}
    assert versions[arns[0]].approval_status is ApprovalStatus.APPROVED
    assert counter.take() == Counter({"ListModelPackages": 1, "DescribeModelPackage": 1})
    # Approved here: described once by the approval itself, not again by every later poll.
    backend.set_approval(arns[1], ApprovalStatus.REJECTED)
    backend.list_versions()
    backend.list_versions()
    assert counter.take() == Counter({"UpdateModelPackage": 1, "DescribeModelPackage": 1, "ListModelPackages": 2})


def test_a_new_process_describes_only_the_versions_that_changed(
    open_backend, sagemaker_clients, simulator, counter
) -> None:
    create_pipeline(sagemaker_clients)
    put_evaluation(sagemaker_clients)
    execution = add_execution(sagemaker_clients, simulator)
    arns = [add_version(sagemaker_clients, generated_by=execution) for _ in range(3)]
    counter.take()
    first = open_backend().list_versions()
    assert counter.take() == Counter({"ListModelPackages": 1, "DescribeModelPackage": 3, "GetObject": 3, PARAMETERS: 1})
    assert open_backend().list_versions() == first
    assert counter.take() == Counter({"ListModelPackages": 1})  # metrics and parameters came from disk too
    sagemaker_clients.sagemaker.update_model_package(ModelPackageArn=arns[2], ModelApprovalStatus="Rejected")
    counter.take()
    versions = {v.arn: v for v in open_backend().list_versions()}
    assert versions[arns[2]].approval_status is ApprovalStatus.REJECTED
    assert versions[arns[2]].parameters["R2Threshold"] == "0.5"
    assert counter.take() == Counter({"ListModelPackages": 1, "DescribeModelPackage": 1})


def test_a_poll_of_a_long_registry_reads_two_pages_and_still_sees_every_change(
    open_backend, sagemaker_clients, counter, monkeypatch
) -> None:
    monkeypatch.setattr(registry_module, "PAGE_SIZE", 2)  # 7 versions on 4 pages, as 400 would be
    put_evaluation(sagemaker_clients)
    arns = [add_version(sagemaker_clients) for _ in range(7)]
    backend = open_backend()
    counter.take()
    assert len(backend.list_versions()) == 7
    assert counter.take()["ListModelPackages"] == 4
    oldest, second = arns[0], arns[1]
    sagemaker_clients.sagemaker.update_model_package(ModelPackageArn=oldest, ModelApprovalStatus="Approved")
    del moto_sagemaker().model_packages[second]  # deleted elsewhere (moto has no DeleteModelPackage)
    counter.take()
    seen, calls = [], []
    for _ in range(3):  # the newest page, and one older page in turn
        versions = {v.arn: v for v in backend.list_versions()}
        seen.append((versions[oldest].approval_status, second in versions))
        calls.append(counter.take())
    # Six versions left: pages 2 and 3 are read by the first two polls. The approval shows when its page is
    # read; the deleted version, which no page held, is confirmed gone with one describe as the sweep ends.
    assert seen == [(ApprovalStatus.PENDING, True), (ApprovalStatus.APPROVED, False), (ApprovalStatus.APPROVED, False)]
    assert calls == [
        Counter({"ListModelPackages": 2}),
        Counter({"ListModelPackages": 2, "DescribeModelPackage": 2}),  # the change, and the check
        Counter({"ListModelPackages": 2}),  # a new sweep
    ]


def test_an_idle_endpoint_poll_is_one_call(sagemaker_backend, sagemaker_clients, simulator, counter) -> None:
    package = add_version(sagemaker_clients, approval="Approved")
    sagemaker_backend.deploy(package, "ep", 2048, 5, wait=True)
    counter.take()
    sagemaker_backend.list_endpoints()
    # Config and model were described by the deployment: this process knows them already.
    assert counter.take() == Counter({"ListEndpoints": 1, "DescribeEndpoint": 1})
    [endpoint] = sagemaker_backend.list_endpoints()
    assert endpoint.model_package_arn == package and endpoint.status is EndpointStatus.IN_SERVICE
    assert counter.take() == Counter({"ListEndpoints": 1})
    moto_sagemaker().endpoints["ep"].endpoint_status = "Failed"
    [endpoint] = sagemaker_backend.list_endpoints()
    assert endpoint.status is EndpointStatus.FAILED
    assert counter.take() == Counter({"ListEndpoints": 1, "DescribeEndpoint": 1})


def test_a_new_process_describes_an_endpoint_its_config_and_model_once(
    open_backend, sagemaker_backend, sagemaker_clients, simulator, counter
) -> None:
    package = add_version(sagemaker_clients, approval="Approved")
    sagemaker_backend.deploy(package, "ep", 2048, 5, wait=True)
    backend = open_backend()
    counter.take()
    backend.list_endpoints()
    backend.list_endpoints()
    assert counter.take() == Counter(
        {"ListEndpoints": 2, "DescribeEndpoint": 1, "DescribeEndpointConfig": 1, "DescribeModel": 1}
    )


def test_a_damaged_group_record_is_ignored(open_backend, sagemaker_clients, counter, tmp_path: Path) -> None:
    put_evaluation(sagemaker_clients)
    for _ in range(2):
        add_version(sagemaker_clients)
    open_backend().list_versions()
    [record] = (tmp_path / "cache").rglob("model-package-group/*.json")
    record.write_text(record.read_text().replace('"package": {', '"package": [{', 1))
    counter.take()
    assert len(open_backend().list_versions()) == 2
    assert counter.take()["DescribeModelPackage"] == 2
    open_backend().list_versions()
    assert counter.take() == Counter({"ListModelPackages": 1})
