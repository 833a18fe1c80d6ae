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

from core.sagemaker.backend import SageMakerBackend
from core.sagemaker.config import SageMakerSettings
from tests.aws import BUCKET, REGION, ROLE, moto_execution, moto_sagemaker
from tests.aws_calls import (
    CallCounter,
    add_execution,
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
