"""How each screen looks at 80x24 and 120x40, on a fixed backend with fixed times and a fixed clock (UTC).

Regenerate after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from core.settings import Settings
from tests.tui.conftest import wait_for
from tests.tui.fakes import NOW, FakeBackend
from tui.app import HousingApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]

# Each case: the keys pressed after the first screen has loaded; "loaded" waits for the shown place's data.
CASES = {
    "runs": [],
    "runs_gate_not_passed": ["down", "down", "loaded"],
    "registry": ["2", "loaded"],
    "registry_threshold_preview": ["2", "loaded", "t", "backspace", "backspace", "backspace", *"0.605"],
    "approve_dialog": ["2", "loaded", "a"],
    "new_run_refusing_a_threshold": ["n", "backspace", "backspace", "backspace", *"1.5"],
    "deploy_form": ["2", "loaded", "down", "down", "down", "d"],
    "endpoints_failed": ["3", "loaded", "down"],
    "endpoint_test_results": ["4", "loaded", "ctrl+l", "sampled", "ctrl+s", "answered"],
    "help": ["question_mark"],
}


def make_app() -> HousingApp:
    return HousingApp(FakeBackend(), Settings(), clock=lambda: NOW)


def drive(keys: list[str]):
    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: getattr(app.screen, "settled", False), "the first screen", timeout=10)
        for key in keys:
            if key == "loaded":
                await pilot.pause()
                await wait_for(pilot, lambda: getattr(app.screen, "settled", False), "the screen's data", timeout=10)
            elif key == "sampled":
                await wait_for(pilot, lambda: app.screen.query_one(TextArea).text, "sample rows", timeout=10)
            elif key == "answered":
                await wait_for(pilot, lambda: app.screen.results, "the answer", timeout=10)
            else:
                await pilot.press(key)
        await pilot.pause()
        # A blinking cursor would make the picture depend on the moment it is taken.
        for widget in app.screen.query("Input, TextArea"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", list(CASES))
def test_screen(snap_compare, case: str, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=drive(CASES[case]))
