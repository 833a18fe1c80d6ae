"""Registry, threshold, deploy and endpoint test, driven from the keyboard against the real local backend."""

from __future__ import annotations

import io
import tarfile
import tomllib
from pathlib import Path

import joblib
import pytest
from textual.widgets import DataTable, Input, Select, Static, TextArea

from core import settings
from core.local.backend import LocalBackend
from core.models import ApprovalStatus, EndpointStatus
from tests.conftest import home_with_runs
from tests.tui.conftest import notices, scenario, wait_for
from tui.app import HousingApp
from tui.present import metric_summary
from tui.screens.confirm import ApprovalScreen, ConfirmScreen
from tui.screens.deploy import DeployScreen
from tui.screens.endpoint_test import EndpointTestScreen
from tui.screens.endpoints import EndpointsScreen
from tui.screens.new_run import NewRunScreen
from tui.screens.registry import RegistryScreen

SIZE = (110, 32)


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory):
    """Two pending versions from real runs started together, with split seeds 42 (r2 0.6433) and 123 (r2 0.6738);
    which one is v1 depends on which run registered first."""
    home = tmp_path_factory.mktemp("tui-registry") / "home"
    with home_with_runs(home):
        yield home


@pytest.fixture
def backend(registry_home: Path):
    backend = LocalBackend(registry_home)
    yield backend
    for endpoint in backend.list_endpoints():
        backend.delete_endpoint(endpoint.name)


def by_version(backend: LocalBackend, number: int):
    return next(v for v in backend.list_versions() if v.version == number)


def cells(table: DataTable, key: str) -> list[str]:
    return [str(cell) for cell in table.get_row(key)]


async def open_registry(pilot) -> RegistryScreen:
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, RegistryScreen)
    await wait_for(pilot, lambda: screen.loaded, "the registry")
    return screen


async def select_version(pilot, screen: RegistryScreen, number: int) -> None:
    version = next(v for v in screen.versions if v.version == number)
    table = screen.query_one("#versions", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(version.arn))
    await wait_for(pilot, lambda: screen.selected_version() == version, f"version {number} selected")


@scenario
async def test_approve_and_reject_save_the_description(backend: LocalBackend) -> None:
    async with HousingApp(backend, settings.load()).run_test(size=SIZE) as pilot:
        app = pilot.app
        screen = await open_registry(pilot)
        assert [v.version for v in screen.versions] == [2, 1]
        # Reject v2, with the prefilled metric summary plus a reason typed after it.
        await select_version(pilot, screen, 2)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the reject confirmation")
        dialog = app.screen
        v2 = by_version(backend, 2)
        assert dialog.description == metric_summary(v2)
        assert dialog.description.startswith(f"r2 {v2.metrics.r2:.4f}, rmse ")
        await pilot.press("e", *" (test run)", "enter")
        await wait_for(pilot, lambda: by_version(backend, 2).approval_status is ApprovalStatus.REJECTED, "rejected")
        assert by_version(backend, 2).approval_description == metric_summary(v2) + " (test run)"
        # Approve v1 as it is prefilled; escape first, to see that it changes nothing.
        await select_version(pilot, screen, 1)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approve confirmation")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the confirmation to close")
        assert by_version(backend, 1).approval_status is ApprovalStatus.PENDING
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approve confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: by_version(backend, 1).approval_status is ApprovalStatus.APPROVED, "approved")
        v1 = by_version(backend, 1)
        assert v1.approval_description == metric_summary(v1)
        await wait_for(pilot, lambda: cells(screen.query_one("#versions", DataTable), v1.arn)[1] == "Approved", "row")

        def detail() -> str:
            return str(screen.query_one("#detail", Static).content)

        await wait_for(pilot, lambda: "v1 is the champion" in detail(), "v1 shown as the champion")
        assert f'"r2_score": {v1.metrics.r2}' in detail() and "SplitSeed" in detail()
        assert not screen.check_action("approve", ())  # already Approved: the key is not offered
        await select_version(pilot, screen, 2)
        await wait_for(pilot, lambda: "against champion v1" in detail(), "v2 compared with the champion")
        assert f"{v2.metrics.r2 - v1.metrics.r2:+.4f}" in detail()


@scenario
async def test_threshold_editing_previews_the_registry_refuses_nonsense_and_saves(
    backend: LocalBackend, config: Path
) -> None:
    async with HousingApp(backend, settings.load()).run_test(size=SIZE) as pilot:
        app = pilot.app
        screen = await open_registry(pilot)
        await pilot.press("t")
        field = screen.query_one("#threshold-edit", Input)
        await wait_for(pilot, lambda: field.has_focus, "the threshold editor")
        info = screen.query_one("#threshold-info", Static)
        table = screen.query_one("#versions", DataTable)
        low, high = sorted((by_version(backend, 1), by_version(backend, 2)), key=lambda v: v.metrics.r2)

        async def type_threshold(text: str) -> None:
            await pilot.press(*["backspace"] * len(field.value), *text)
            await wait_for(pilot, lambda: field.value == text, f"{text} typed")

        await type_threshold("0.65")
        assert f"1 of 2 (v{high.version})" in str(info.content)
        assert cells(table, high.arn)[2] == "0.6738 ✓" and cells(table, low.arn)[2] == "0.6433 ✗"
        await type_threshold("0.5")
        assert "2 of 2 (v2, v1)" in str(info.content) and cells(table, low.arn)[2] == "0.6433 ✓"
        await type_threshold("1.5")
        assert str(info.content) == "threshold 1.5 can never pass: r2 is at most 1.0"
        await pilot.press("enter")
        assert str(info.content) == "Not saved: threshold 1.5 can never pass: r2 is at most 1.0"
        assert not config.exists() and app.threshold == 0.6
        await type_threshold("abc")
        assert "'abc' is not a number" in str(info.content)
        await type_threshold("0.55")
        await pilot.press("enter")
        await wait_for(pilot, lambda: config.exists() and app.threshold == 0.55, "the threshold saved")
        assert tomllib.loads(config.read_text())["threshold"] == 0.55
        assert settings.load().threshold == 0.55
        assert not field.display and cells(table, low.arn)[2] == "0.6433 ✓"
        # The next run's form starts from the saved threshold, and refuses an impossible one in words.
        await pilot.press("1")
        await pilot.pause()
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), "the new run form")
        form = app.screen
        threshold = form.query_one("#threshold-input", Input)
        assert threshold.value == "0.55"
        await pilot.press(*["backspace"] * 4, *"1.5")
        message = form.query_one("#threshold .field-message", Static)
        assert str(message.content) == "threshold 1.5 can never pass: r2 is at most 1.0"
        await pilot.press("ctrl+s")
        assert app.screen is form
        assert str(form.query_one("#form-error", Static).content) == (
            "Not started: threshold 1.5 can never pass: r2 is at most 1.0"
        )
        await pilot.press("tab", "x")  # focus selects the field's text, so "x" replaces it
        assert str(form.query_one("#test-size .field-message", Static).content) == (
            "test size: 'x' is not a number; use a value such as 0.2"
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewRunScreen), "the form to close")
    assert len(backend.list_executions()) == 2  # nothing was started


def model_of(version):
    archive = Path(version.model_data_url.removeprefix("file://"))
    with tarfile.open(archive) as tar:
        return joblib.load(io.BytesIO(tar.extractfile("model.joblib").read()))


@scenario
async def test_deploy_then_test_the_endpoint_with_sample_rows_matching_the_model(backend: LocalBackend) -> None:
    v1 = by_version(backend, 1)
    if v1.approval_status is not ApprovalStatus.APPROVED:
        v1 = backend.set_approval(v1.arn, ApprovalStatus.APPROVED, "for the deploy test")
    async with HousingApp(backend, settings.load()).run_test(size=SIZE) as pilot:
        app = pilot.app
        screen = await open_registry(pilot)
        await select_version(pilot, screen, 1)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DeployScreen), "the deploy form")
        form = app.screen
        name = form.query_one("#endpoint-name-input", Input)
        await pilot.press(*["backspace"] * len(name.value), *"bad_name")
        assert "endpoint name 'bad_name' breaks SageMaker's name rule" in str(
            form.query_one("#endpoint-name .field-message", Static).content
        )
        await pilot.press("ctrl+s")
        assert app.screen is form
        await pilot.press(*["backspace"] * 8, *"tui-ep")
        form.query_one("#memory", Select).value = 3072
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, EndpointsScreen), "the endpoints screen")
        endpoints = app.screen

        def in_service() -> bool:
            return any(e.name == "tui-ep" and e.status is EndpointStatus.IN_SERVICE for e in endpoints.endpoints)

        await wait_for(pilot, in_service, "tui-ep InService", timeout=120)
        assert cells(endpoints.query_one("#endpoints", DataTable), "tui-ep")[:4] == [
            "tui-ep",
            "InService",
            "v1",
            "3072 MB",
        ]
        await wait_for(pilot, lambda: any("tui-ep is InService, serving v1" in n for n in notices(app)), "the news")
        described = backend.get_endpoint("tui-ep")
        assert (described.memory_mb, described.max_concurrency, described.model_package_arn) == (3072, 5, v1.arn)

        # The endpoint test: 25 rows of the test split of the run that made v1.
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EndpointTestScreen), "the test screen")
        tester = app.screen
        await wait_for(pilot, lambda: tester.loaded and tester.chosen_endpoint() == "tui-ep", "tui-ep chosen")
        tester.query_one("#sample-count", Input).focus()
        await pilot.press("backspace", *"25", "ctrl+l")
        editor = tester.query_one("#csv", TextArea)
        await wait_for(pilot, lambda: editor.text.count("\n") == 26, "25 sample rows and a header")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(tester.results) == 1, "the answer")
        [result] = tester.results
        assert result.error is None and result.rows == 25
        rows = backend.test_rows(v1.execution_arn, 25)
        expected = model_of(v1).predict(rows.features)
        assert result.predictions == pytest.approx(list(expected), abs=1e-9)
        assert result.actuals == rows.actuals
        table = tester.query_one("#results", DataTable)
        first = cells(table, "1-0")
        assert first[:5] == [
            "1",
            "1",
            f"{expected[0]:.4f}",
            f"{rows.actuals[0]:.4f}",
            f"{rows.actuals[0] - expected[0]:+.4f}",
        ]
        assert first[5].endswith(" ms")

        # An endpoint error is shown as it comes, and the screen goes on working.
        editor.text = "1,2,3\n"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(tester.results) == 2, "the refusal")
        assert "refused the rows (400): Row 1 has 3 values" in tester.results[1].error
        await wait_for(pilot, lambda: any("Row 1 has 3 values" in n for n in notices(app)), "the notice")
        assert "request 2 failed" in str(tester.query_one("#test-status", Static).content)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: editor.text.count("\n") == 26, "the sample rows again")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(tester.results) == 3, "another answer")
        assert tester.results[2].predictions == pytest.approx(list(expected), abs=1e-9)

        # Delete, with confirmation. (Digits typed in a field stay there: leave it first.)
        tester.query_one("#results", DataTable).focus()
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, EndpointsScreen), "the endpoints screen")
        endpoints.query_one("#endpoints", DataTable).focus()
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the delete confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: endpoints.loaded and not endpoints.endpoints, "the endpoint gone", timeout=60)
    assert backend.list_endpoints() == []
