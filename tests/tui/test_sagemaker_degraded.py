"""A failing call for one run's or one version's details degrades that row on screen, never the list."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from core.settings import Settings
from tests.sagemaker.test_backend import _package
from tests.sagemaker.test_degraded import refuse_describing
from tests.tui.conftest import notices, scenario, wait_for
from tui.app import HousingApp
from tui.screens.registry import RegistryScreen
from tui.screens.runs import RunsScreen


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
