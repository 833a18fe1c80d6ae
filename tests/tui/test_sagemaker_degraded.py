"""A failing call for one run's or one version's details degrades that row on screen, never the list."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Static

from core.settings import Settings
from tests.sagemaker.test_backend import _package
from tests.sagemaker.test_degraded import _execution, refuse_describing
from tests.tui.conftest import notices, scenario, wait_for
from tui.app import HousingApp
from tui.screens.registry import RegistryScreen
from tui.screens.runs import RunsScreen

STEPS_EVENT = "provide-client-params.sagemaker.ListPipelineExecutionSteps"


def test_runs_list_a_run_whose_steps_are_throttled_and_read_them_once_they_answer(sagemaker_backend, simulator) -> None:
    arn = _execution()
    events = sagemaker_backend.clients.sagemaker_extra.meta.events

    def throttle(params: dict[str, Any], **_: Any) -> None:
        simulator.stubber.add_client_error("list_pipeline_execution_steps", "ThrottlingException", "Rate exceeded", 400)

    events.unregister(STEPS_EVENT, simulator._feed_steps)
    events.register(STEPS_EVENT, throttle)

    @scenario
    async def drive() -> None:
        app = HousingApp(sagemaker_backend, Settings(backend="sagemaker"))
        async with app.run_test(size=(110, 32)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs")
            runs = app.screen
            table = runs.query_one("#runs", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1, "the run listed")
            gate = str(table.get_row(arn)[5])
            assert gate == "steps unavailable: ThrottlingException, retrying"
            assert str(runs.query_one("#outcome", Static).content) == gate
            assert arn not in runs.final  # asked again on the next poll
            assert notices(app) == []  # said in its row, not as a notice

            # SageMaker answers again: the next poll reads the steps and the row shows them.
            simulator.running(arn)
            events.unregister(STEPS_EVENT, throttle)
            events.register(STEPS_EVENT, simulator._feed_steps)
            await wait_for(pilot, lambda: str(table.get_row(arn)[5]) == "…", "the steps read again", timeout=30)
            steps = runs.query_one("#steps", DataTable)
            await wait_for(pilot, lambda: str(steps.get_row("Preprocess")[1]) == "Executing", "the running step")

    drive()


@pytest.mark.filterwarnings("ignore:Exception\\(AccessDenied\\)")
def test_registry_lists_a_version_whose_description_is_refused(
    sagemaker_backend, simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _package(sagemaker_backend.clients, "Approved"), _package(sagemaker_backend.clients, "Rejected")
    refuse_describing(monkeypatch, second)

    @scenario
    async def drive() -> None:
        app = HousingApp(sagemaker_backend, Settings(backend="sagemaker"))
        async with app.run_test(size=(110, 32)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs screen")
            await pilot.press("2")
            registry = app.screen
            assert isinstance(registry, RegistryScreen)
            await wait_for(pilot, lambda: registry.loaded, "the registry")
            table = registry.query_one("#versions", DataTable)
            assert [str(table.get_row(arn)[0]) for arn in (second, first)] == ["2", "1"]
            refused = [str(cell) for cell in table.get_row(second)]
            assert refused[1:3] == ["Rejected", "retrying"] and str(table.get_row(first)[2]) == "-"
            # The only notice is the runs screen's (no pipeline yet); none is about the refused version.
            assert not [n for n in notices(app) if "DescribeModelPackage" in n or "AccessDenied" in n]

            monkeypatch.undo()  # described on the next poll
            await wait_for(pilot, lambda: str(table.get_row(second)[2]) == "-", "the version described", timeout=30)

    drive()
