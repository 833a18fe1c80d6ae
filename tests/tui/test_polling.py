"""Live views poll, draw, then schedule the next poll, and stop while their screen is not shown."""

from __future__ import annotations

import dataclasses

from textual.widgets import DataTable

from core.settings import Settings
from tests.tui.conftest import scenario, wait_for
from tests.tui.fakes import NOW, FakeBackend, execution_arn
from tui.app import HousingApp
from tui.screens.registry import RegistryScreen
from tui.screens.runs import RUNS_SHOWN, RunsScreen


class CountingBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def list_executions(self, limit=None):
        self.polls += 1
        return super().list_executions(limit)


@scenario
async def test_a_hidden_screen_does_not_poll_and_a_shown_one_polls_again() -> None:
    backend = CountingBackend()
    app = HousingApp(backend, Settings(), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: backend.polls >= 3, "a few polls (a run is Executing: every 0.5 s)")
        # One fetch at a time, and the next one only scheduled after the last was drawn.
        assert runs.poller.busy or runs.poller._timer is not None
        await pilot.press("2")
        registry = app.screen
        assert isinstance(registry, RegistryScreen)
        await wait_for(pilot, lambda: registry.loaded, "the registry")
        await wait_for(pilot, lambda: not runs.poller.busy, "the runs fetch in flight to end")
        assert not runs.poller.active and runs.poller._timer is None
        hidden = backend.polls
        await wait_for(pilot, lambda: registry.poller._timer is not None, "the registry's next poll scheduled")
        assert backend.polls == hidden  # nothing polled the executions while the runs screen was hidden
        await pilot.press("1")
        await wait_for(pilot, lambda: backend.polls > hidden, "the runs screen to poll again")
        assert runs.poller.active and not registry.poller.active


@scenario
async def test_the_runs_screen_asks_for_the_newest_page_only_and_says_so() -> None:
    backend = FakeBackend()
    [*_, oldest] = backend.executions
    backend.executions += [
        dataclasses.replace(oldest, arn=execution_arn(f"{i:012x}"), created=oldest.created - 60 * (i + 1))
        for i in range(RUNS_SHOWN)
    ]
    app = HousingApp(backend, Settings(), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: runs.loaded, "the runs")
        table = runs.query_one("#runs", DataTable)
        assert table.row_count == RUNS_SHOWN < len(backend.executions)
        assert str(table.border_title).startswith(f"Runs · newest {RUNS_SHOWN} · 1 running")
