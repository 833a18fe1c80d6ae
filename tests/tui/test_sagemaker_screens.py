"""The same screens on the SageMaker backend (moto plus the SageMaker stand-in of tests/aws.py)."""

from __future__ import annotations

from textual.widgets import DataTable, Log, Static

from core.models import ApprovalStatus
from core.settings import Settings
from core.spec import RunParameters
from tests.tui.conftest import scenario, wait_for
from tui.app import HousingApp
from tui.screens.registry import RegistryScreen
from tui.screens.runs import RunsScreen


def test_runs_steps_logs_and_registry_show_sagemaker_state(sagemaker_backend, simulator) -> None:
    execution = sagemaker_backend.start_run(RunParameters(r2_threshold=0.5))
    simulator.complete(execution.arn)
    [version] = sagemaker_backend.list_versions()

    @scenario
    async def drive() -> None:
        app = HousingApp(sagemaker_backend, Settings(backend="sagemaker"))
        async with app.run_test(size=(110, 32)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs")
            runs = app.screen
            await wait_for(pilot, lambda: runs.selected_arn == execution.arn, "the run selected")
            row = [str(cell) for cell in runs.query_one("#runs", DataTable).get_row(execution.arn)]
            assert row[0] == "Succeeded" and row[4] == "0.6433" and row[5].startswith("registered")
            outcome = runs.query_one("#outcome", Static)
            await wait_for(pilot, lambda: "registered" in str(outcome.content), "the gate outcome")
            assert str(outcome.content) == (f"CheckR2: r2 0.6433 >= threshold 0.5000 -> registered  ({version.arn})")
            steps = runs.query_one("#steps", DataTable)
            assert [str(steps.get_row(name)[1]) for name in ("Preprocess", "Register")] == ["Succeeded"] * 2
            steps.focus()
            steps.move_cursor(row=steps.get_row_index("Preprocess"))
            log = runs.query_one("#log", Log)
            await wait_for(pilot, lambda: "wrote 16512 training rows" in "\n".join(log.lines), "CloudWatch lines")

            await pilot.press("2")
            registry = app.screen
            assert isinstance(registry, RegistryScreen)
            await wait_for(pilot, lambda: registry.loaded, "the registry")
            cells = [str(c) for c in registry.query_one("#versions", DataTable).get_row(version.arn)]
            assert cells[:2] == ["1", "Pending"] and cells[2].startswith("0.6433")
            await pilot.press("a")
            await pilot.press("y")
            await wait_for(
                pilot,
                lambda: sagemaker_backend.get_version(version.arn).approval_status is ApprovalStatus.APPROVED,
                "the approval to reach SageMaker",
            )

    drive()
