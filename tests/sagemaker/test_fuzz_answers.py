"""Every answer AWS may give, fed to the SageMaker backend: it returns its records or one UserError sentence.

Each call the backend makes is answered, through botocore's Stubber (which checks the answer against the
operation's output shape), with a response drawn from that shape by tests/sagemaker/shapes.py, or now and
then with an error: a code AWS uses, a message that may be an HTML page or 10 KB long. Whatever comes back,
the backend may not raise KeyError, TypeError, ValueError or anything but UserError, and a UserError is
one short line: no HTML, no Python internals.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore import xform_name
from botocore.stub import Stubber
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core import spec
from core.errors import UserError
from core.models import Endpoint, Execution, Invocation, ModelVersion, StepRun
from core.sagemaker.aws import Clients, make_clients, make_session
from core.sagemaker.backend import SageMakerBackend
from core.sagemaker.config import SageMakerSettings
from tests.aws import BUCKET, REGION, ROLE
from tests.sagemaker.plausible import (
    DEEP_ENDPOINT,
    DEEP_RUN,
    DEEP_VERSION,
    ERROR_CODES,
    ERROR_MESSAGES,
    EXECUTION,
    HINTS,
    PACKAGE,
)
from tests.sagemaker.shapes import Answers

FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# What the backend's answers must never show: Python internals, a traceback, markup.
INTERNALS = re.compile(
    r"Traceback|KeyError|TypeError|ValueError|AttributeError|IndexError|OverflowError|RecursionError|"
    r"UnicodeDecodeError|botocore|<[a-zA-Z!/][^>]*>"
)


@pytest.fixture(scope="module")
def clients() -> Clients:
    """Real boto3 clients; every call they make is answered by a Stubber, nothing leaves the process."""
    return make_clients(make_session(REGION))


@functools.cache
def answers(forced: frozenset[str]) -> Answers:
    """One set of strategies per focus, built once: shapes such as DescribeModelPackage's are large."""
    return Answers(HINTS, forced)


class StubbedAws:
    """Answers each call of each client with a drawn response (or, `error_rate` of the time, an error)."""

    def __init__(
        self, clients: Clients, data: st.DataObject, error_rate: float = 0.1, forced: frozenset[str] = frozenset()
    ) -> None:
        self.clients = clients
        self.data = data
        self.percent = round(error_rate * 100)
        self.answers = answers(forced)
        self.calls: Counter[str] = Counter()
        self._stubbers: list[tuple[Any, Stubber, str, Callable[..., None]]] = []

    @contextlib.contextmanager
    def answering(self) -> Iterator[StubbedAws]:
        unique = {
            id(c): c
            for c in (
                self.clients.sagemaker,
                self.clients.sagemaker_extra,
                self.clients.s3,
                self.clients.logs,
                self.clients.runtime,
                self.clients.sts,
            )
        }
        for client in unique.values():
            stubber = Stubber(client)
            event = f"provide-client-params.{client.meta.service_model.service_id.hyphenize()}"
            handler = self._answer(stubber)
            client.meta.events.register(event, handler)
            stubber.activate()
            self._stubbers.append((client, stubber, event, handler))
        try:
            yield self
        finally:
            for client, stubber, event, handler in self._stubbers:
                stubber.deactivate()
                client.meta.events.unregister(event, handler)
            self._stubbers.clear()

    def _answer(self, stubber: Stubber) -> Callable[..., None]:
        def answer(model: Any, **_: Any) -> None:
            operation = model.name
            self.calls[operation] += 1
            method = xform_name(operation)
            # Failing is the top end of a range, so hypothesis (which starts low, and shrinks towards 0)
            # draws about error_rate failures and shrinks an example towards calls that succeed.
            percent = self.data.draw(st.integers(0, 99), label=f"{operation} fails if >= {100 - self.percent}")
            fails = percent >= 100 - self.percent
            if fails:
                stubber.add_client_error(
                    method,
                    service_error_code=self.data.draw(st.sampled_from(ERROR_CODES), label="code"),
                    service_message=self.data.draw(st.sampled_from(ERROR_MESSAGES), label="message"),
                    http_status_code=self.data.draw(st.sampled_from([400, 403, 404, 429, 500, 503]), label="status"),
                )
                return
            response = self.data.draw(self.answers.output(model), label=operation)
            if self.calls[operation] > 2:  # a third page is the last: pagination ends
                response = {k: v for k, v in response.items() if k.lower() != "nexttoken"}
            stubber.add_response(method, response)

        return answer


def backend_for(clients: Clients, cache: Path, bucket: str | None = BUCKET) -> SageMakerBackend:
    """A fresh backend (no caches from an earlier example), making its calls in order: hypothesis draws
    each answer as the call comes, and calls side by side would draw in a different order each time."""
    clients.workers = 1
    return SageMakerBackend(SageMakerSettings(region=REGION, role_arn=ROLE, bucket=bucket), cache, clients=clients)


def check_user_error(error: UserError) -> None:
    message = str(error)
    assert message, "an empty error message"
    assert "\n" not in message and "\r" not in message, message
    assert len(message) <= 300, (len(message), message)
    assert not INTERNALS.search(message), message


def outcome(call: Callable[[], Any]) -> Any:
    """What the call returned, or the UserError it raised (after checking the sentence). Anything else fails."""
    try:
        result = call()
    except UserError as error:
        check_user_error(error)
        event(f"UserError {str(error)[:40]}")
        return error
    event(f"returned {type(result).__name__}")
    return result


def fuzz(
    clients: Clients,
    data: st.DataObject,
    call: Callable[[SageMakerBackend], Any],
    deep: frozenset[str] = frozenset(),
    **options: Any,
) -> Any:
    """Run `call` on a fresh backend whose every AWS call is answered from the model. Half the examples force
    the `deep` members to plausible values, so the code behind them (the gate, the metrics) is reached."""
    if deep and data.draw(st.booleans(), label="deep"):
        options["forced"] = deep
    bucket = (
        data.draw(st.sampled_from([BUCKET, BUCKET, BUCKET, None]), label="bucket")
        if options.pop("vary_bucket", True)
        else BUCKET
    )
    with tempfile.TemporaryDirectory() as cache, StubbedAws(clients, data, **options).answering():
        return outcome(lambda: call(backend_for(clients, Path(cache), bucket)))


def check_execution(execution: Execution) -> None:
    assert isinstance(execution, Execution) and execution.arn
    assert math.isfinite(execution.created) and math.isfinite(execution.last_modified)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in execution.parameters.items())
    json.dumps([execution.to_summary(), execution.to_description()])


def check_step(step: StepRun) -> None:
    assert isinstance(step, StepRun) and step.name in spec.STEP_NAMES
    if step.gate is not None:
        assert step.gate.summary  # the sentence the TUI and CLI show
    json.dumps(step.to_aws())


def check_version(version: ModelVersion) -> None:
    assert isinstance(version, ModelVersion) and version.arn and isinstance(version.version, int)
    json.dumps(version.to_summary())


def check_endpoint(endpoint: Endpoint) -> None:
    assert isinstance(endpoint, Endpoint) and endpoint.name is not None
    json.dumps([endpoint.to_summary(), endpoint.to_description()])


# ---- runs ---------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_list_and_get_executions(clients: Clients, data: st.DataObject) -> None:
    listed = fuzz(clients, data, lambda b: b.list_executions())
    if not isinstance(listed, UserError):
        for execution in listed:
            check_execution(execution)
    got = fuzz(clients, data, lambda b: b.get_execution(EXECUTION))
    if not isinstance(got, UserError):
        check_execution(got)
        assert got.arn == EXECUTION or got.arn.startswith("arn:")


@FUZZ
@given(data=st.data())
def test_steps_with_the_gate_and_its_evaluation_json(clients: Clients, data: st.DataObject) -> None:
    steps = fuzz(clients, data, lambda b: b.list_steps(EXECUTION), DEEP_RUN)
    if not isinstance(steps, UserError):
        for step in steps:
            check_step(step)
            if step.gate is not None:
                event(f"gate: {step.gate.conditions[0].detail or 'with numbers'}")
        assert [s.name for s in steps] == [n for n in spec.STEP_NAMES if n in {s.name for s in steps}]


@FUZZ
@given(data=st.data(), step=st.sampled_from(spec.STEP_NAMES), cursor=st.sampled_from([0, 3, 10_000]))
def test_step_logs(clients: Clients, data: st.DataObject, step: str, cursor: int) -> None:
    chunk = fuzz(clients, data, lambda b: b.read_step_log(EXECUTION, step, cursor), DEEP_RUN)
    if not isinstance(chunk, UserError):
        assert isinstance(chunk.text, str) and chunk.cursor >= 0


@FUZZ
@given(data=st.data(), limit=st.sampled_from([1, 5]))
def test_test_rows(clients: Clients, data: st.DataObject, limit: int) -> None:
    rows = fuzz(clients, data, lambda b: b.test_rows(EXECUTION, limit), DEEP_RUN)
    if not isinstance(rows, UserError):
        assert len(rows.features) == len(rows.actuals) <= limit
        event(f"{len(rows.actuals)} rows")
        assert all(len(row) == len(spec.FEATURES) for row in rows.features)


# ---- registry -----------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), approved=st.booleans())
def test_versions_and_champion(clients: Clients, data: st.DataObject, approved: bool) -> None:
    versions = fuzz(clients, data, lambda b: b.champion() if approved else b.list_versions(), DEEP_VERSION)
    for version in [] if isinstance(versions, UserError) else ([versions] if approved else versions):
        if version is not None:
            check_version(version)
            event("a version with metrics" if version.metrics else f"a version without metrics ({version.unavailable})")


@FUZZ
@given(data=st.data(), description=st.sampled_from([None, "", "looks good", "x" * 1024]))
def test_get_and_approve_a_version(clients: Clients, data: st.DataObject, description: str | None) -> None:
    got = fuzz(clients, data, lambda b: b.get_version(PACKAGE), DEEP_VERSION)
    if not isinstance(got, UserError):
        check_version(got)
    approved = fuzz(clients, data, lambda b: b.set_approval(PACKAGE, "Approved", description))
    if not isinstance(approved, UserError):
        check_version(approved)


# ---- endpoints ----------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_list_and_get_endpoints(clients: Clients, data: st.DataObject) -> None:
    listed = fuzz(clients, data, lambda b: b.list_endpoints(), DEEP_ENDPOINT)
    if not isinstance(listed, UserError):
        for endpoint in listed:
            check_endpoint(endpoint)
    got = fuzz(clients, data, lambda b: b.get_endpoint("ep"), DEEP_ENDPOINT)
    if not isinstance(got, UserError):
        check_endpoint(got)


@FUZZ
@given(data=st.data())
def test_invoke(clients: Clients, data: st.DataObject) -> None:
    answer = fuzz(clients, data, lambda b: b.invoke_endpoint("ep", b"1,2,3,4,5,6,7,8\n"), DEEP_ENDPOINT)
    if not isinstance(answer, UserError):
        assert isinstance(answer, Invocation)
        predictions = outcome(answer.predictions)
        if not isinstance(predictions, UserError):
            assert predictions and all(isinstance(p, float) for p in predictions)


# ---- errors -------------------------------------------------------------------------------------------

CALLS: dict[str, Callable[[SageMakerBackend], Any]] = {
    "executions": lambda b: b.list_executions(),
    "execution": lambda b: b.get_execution(EXECUTION),
    "steps": lambda b: b.list_steps(EXECUTION),
    "log": lambda b: b.read_step_log(EXECUTION, spec.PREPROCESS),
    "test rows": lambda b: b.test_rows(EXECUTION, 3),
    "versions": lambda b: b.list_versions(),
    "version": lambda b: b.get_version(PACKAGE),
    "approve": lambda b: b.set_approval(PACKAGE, "Approved", None),
    "endpoints": lambda b: b.list_endpoints(),
    "invoke": lambda b: b.invoke_endpoint("ep", b"1,2,3,4,5,6,7,8\n"),
}


@settings(FUZZ, max_examples=100)
@given(data=st.data(), call=st.sampled_from(sorted(CALLS)))
def test_error_answers_become_one_short_sentence(clients: Clients, data: st.DataObject, call: str) -> None:
    """Every call fails: whatever the code and body, the user reads one line of at most 300 characters."""
    result = fuzz(clients, data, CALLS[call], error_rate=1.0)
    assert isinstance(result, UserError)  # the first call of each fails, and nothing answers in its place
