"""Runs, driven from the keyboard against the real local backend: the form, the live steps, the gate, stop."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Log, Static

from core import settings
from core.local.backend import LocalBackend
from core.models import ExecutionStatus
from tests.tui.conftest import scenario, wait_for
from tui.app import HousingApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.new_run import NewRunScreen
from tui.screens.runs import RunsScreen

SIZE = (100, 30)


def open_app(home: Path) -> HousingApp:
    return HousingApp(LocalBackend(home), settings.load())


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


def step_cells(screen: RunsScreen, step: str) -> list[str]:
    return [str(cell) for cell in screen.query_one("#steps", DataTable).get_row(step)]


async def start_run_from_form(pilot, threshold: str | None = None) -> str:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs screen")
    runs = app.screen
    before = {e.arn for e in runs.executions}
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), "the new run form")
    if threshold is not None:
        field = app.screen.query_one("#threshold-input", Input)
        assert field.has_focus
        await pilot.press(*["backspace"] * len(field.value), *threshold)
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: app.screen is runs, "the form to close")
    await wait_for(pilot, lambda: {e.arn for e in runs.executions} - before, "the new run in the list")
    [arn] = {e.arn for e in runs.executions} - before
    return arn


@scenario
async def test_a_run_started_in_the_app_goes_on_after_quitting_and_its_gate_refuses_it(home: Path) -> None:
    async with open_app(home).run_test(size=SIZE) as pilot:
        arn = await start_run_from_form(pilot, threshold="0.65")
        screen = pilot.app.screen
        assert screen.selected_arn == arn
        assert screen.query_one("#runs", DataTable).get_row(arn)[0].plain in ("Executing", "Succeeded")
    # The app is closed; the run is found again by the next one and followed to its end.
    async with open_app(home).run_test(size=SIZE) as pilot:
        app = pilot.app
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs screen")
        screen = app.screen
        assert screen.selected_arn == arn  # the newest run is selected

        def finished() -> bool:
            execution = screen._selected_execution()
            return execution is not None and not execution.status.is_active

        await wait_for(pilot, finished, "the run to end", timeout=120)
        await wait_for(pilot, lambda: "not registered" in text_of(screen, "#outcome"), "the gate outcome")
        row = [str(cell) for cell in screen.query_one("#runs", DataTable).get_row(arn)]
        assert row[0] == "Succeeded" and row[3] == "0.65" and row[4] == "0.6433" and row[5] == "not registered"
        assert text_of(screen, "#outcome") == "CheckR2: r2 0.6433 < threshold 0.6500 -> not registered"
        assert step_cells(screen, "CheckR2")[1] == "Succeeded"
        assert step_cells(screen, "CheckR2")[4] == "r2 0.6433 < threshold 0.6500 -> not registered"
        assert step_cells(screen, "Register")[1:2] == ["skipped"]
        # Following the run, the log shown is the last step's, as written.
        await wait_for(pilot, lambda: "not registered" in "\n".join(screen.query_one("#log", Log).lines), "CheckR2 log")
        # Choosing another step shows its log instead.
        await pilot.click("#steps")
        steps = screen.query_one("#steps", DataTable)
        steps.move_cursor(row=0)
        await wait_for(
            pilot, lambda: "train" in "\n".join(screen.query_one("#log", Log).lines).lower(), "Preprocess log"
        )
        assert screen.selected_step == "Preprocess" and not screen.follow
    assert LocalBackend(home).get_execution(arn).status is ExecutionStatus.SUCCEEDED


@scenario
async def test_threshold_05_from_the_form_registers_version_1(home: Path) -> None:
    backend = LocalBackend(home)
    async with HousingApp(backend, settings.load()).run_test(size=SIZE) as pilot:
        arn = await start_run_from_form(pilot, threshold="0.5")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: "-> registered" in text_of(screen, "#outcome"), "the gate to pass", timeout=120)
        assert text_of(screen, "#outcome").startswith("CheckR2: r2 0.6433 >= threshold 0.5000 -> registered")
        await wait_for(pilot, lambda: step_cells(screen, "Register")[1] == "Succeeded", "Register to succeed")
        row = [str(cell) for cell in screen.query_one("#runs", DataTable).get_row(arn)]
        assert row[3] == "0.5" and row[5] == "registered v1"
        await pilot.press("2")
        registry = pilot.app.screen
        await wait_for(pilot, lambda: getattr(registry, "loaded", False) and registry.versions, "the registry")
        [version] = registry.versions
        assert version.version == 1 and version.execution_arn == arn
        cells = [str(c) for c in registry.query_one("#versions", DataTable).get_row(version.arn)]
        assert cells[:5] == ["1", "Pending", "0.6433 ✓", "0.6837", "0.5029"]  # ✓: passes the 0.6 for next runs
    assert backend.get_execution(arn).parameters["R2Threshold"] == "0.5"


@scenario
async def test_a_running_execution_is_stopped_after_confirmation(home: Path) -> None:
    backend = LocalBackend(home)
    async with HousingApp(backend, settings.load()).run_test(size=SIZE) as pilot:
        app = pilot.app
        arn = await start_run_from_form(pilot)
        runs = app.screen
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("n")  # no: nothing happens
        await wait_for(pilot, lambda: app.screen is runs, "the confirmation to close")
        assert backend.get_execution(arn).status is ExecutionStatus.EXECUTING
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")

        def stopped() -> bool:
            execution = runs._selected_execution()
            return execution is not None and execution.status is ExecutionStatus.STOPPED

        await wait_for(pilot, stopped, "the run to stop", timeout=120)
        assert str(runs.query_one("#runs", DataTable).get_row(arn)[0]) == "Stopped"
        assert not app.screen.check_action("stop_run", ())  # the key is gone from the footer
    assert backend.get_execution(arn).status is ExecutionStatus.STOPPED
    assert backend.list_versions() == []
