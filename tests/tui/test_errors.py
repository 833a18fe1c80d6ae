"""A backend that fails becomes a visible notice; the application keeps running and recovers."""

from __future__ import annotations

from pathlib import Path

from core import settings
from core.local.backend import LocalBackend
from core.local.store import Store
from core.models import ApprovalStatus, ModelVersion
from tests.tui.conftest import notices, scenario, wait_for
from tests.tui.fakes import NOW, FakeBackend
from tui.app import HousingApp
from tui.screens.confirm import ApprovalScreen
from tui.screens.help import HelpScreen
from tui.screens.registry import RegistryScreen
from tui.screens.runs import RunsScreen


@scenario
async def test_a_deleted_database_is_a_notice_and_the_app_recovers(home: Path) -> None:
    backend = LocalBackend(home)
    async with HousingApp(backend, settings.load()).run_test(size=(80, 24)) as pilot:
        app = pilot.app
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: runs.loaded, "the runs screen")
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            (home / name).unlink(missing_ok=True)
        await wait_for(pilot, lambda: any("no such table: executions" in n for n in notices(app)), "the notice")
        # One sentence naming the file, no exception class.
        assert f"the local database {home / 'state.db'} cannot be used (no such table: executions); check --home" in (
            " ".join(notices(app))
        )
        assert not any("OperationalError" in n for n in notices(app))
        # Still running and answering keys: another place, the help, back.
        await pilot.press("2")
        registry = app.screen
        assert isinstance(registry, RegistryScreen)
        await wait_for(pilot, lambda: any("no such table: model_packages" in n for n in notices(app)), "a notice")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is registry, "the registry again")
        # The database is back (as a new backend would create it): the next poll works again.
        Store(home)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen is runs, "the runs screen again")
        await wait_for(pilot, lambda: runs.poller.failures == 0, "a successful poll", timeout=30)
        assert app.is_running


class DeniedApproval(FakeBackend):
    """As a registry that refuses the call for lack of permission would."""

    def set_approval(self, arn: str, status: ApprovalStatus, description: str | None = None) -> ModelVersion:
        raise PermissionError("AccessDenied: not authorized to perform sagemaker:UpdateModelPackage")


@scenario
async def test_an_unexpected_error_of_an_action_is_a_notice(home: Path) -> None:
    backend = DeniedApproval()
    async with HousingApp(backend, settings.Settings(), clock=lambda: NOW).run_test(size=(80, 24)) as pilot:
        app = pilot.app
        await pilot.press("2")
        registry = app.screen
        await wait_for(pilot, lambda: registry.loaded, "the registry")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the confirmation")
        await pilot.press("y")
        expected = "PermissionError: AccessDenied: not authorized to perform sagemaker:UpdateModelPackage"
        await wait_for(pilot, lambda: expected in notices(app), "the notice")
        assert app._notifications and next(iter(app._notifications)).title == "Could not set the approval"
        assert registry.selected_version().approval_status is ApprovalStatus.PENDING
        await pilot.press("down")
        await wait_for(pilot, lambda: registry.selected_version().version == 3, "the cursor to move")
