"""Bindings, the help screen and the command palette, on the fixed backend."""

from __future__ import annotations

from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import Static

from core.settings import Settings
from tests.tui.conftest import scenario, wait_for
from tests.tui.fakes import NOW, FakeBackend
from tui.app import HousingApp
from tui.screens.confirm import ApprovalScreen
from tui.screens.help import HelpScreen
from tui.screens.runs import RunsScreen


def all_bindings(app: HousingApp) -> list[tuple[str, Binding]]:
    return [(where, binding) for where, bindings in app.help_sections() for binding in bindings]


def test_every_binding_has_an_id_and_a_description() -> None:
    app = HousingApp(FakeBackend(), Settings())
    found = all_bindings(app)
    assert len(found) > 20
    for where, binding in found:
        assert isinstance(binding, Binding), where
        assert binding.id and "." in binding.id and binding.description, (where, binding)
    ids = [binding.id for _, binding in found]
    assert len(ids) == len(set(ids))


@scenario
async def test_the_help_lists_every_binding() -> None:
    app = HousingApp(FakeBackend(), Settings(), clock=lambda: NOW)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        table = app.screen.query_one("#help-table", Static).content
        listed = {(str(row[0]), str(row[2])) for row in zip(*[c._cells for c in table.columns], strict=True)}
        for _, binding in all_bindings(app):
            assert (app.get_key_display(binding), binding.id) in listed
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs screen")


@scenario
async def test_the_command_palette_offers_what_makes_sense_here() -> None:
    app = HousingApp(FakeBackend(), Settings(), clock=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded, "the runs screen")
        names = [c.name for c in app.palette_commands(app.screen)]
        assert "New run" in names and "Stop run a1b2c3d4e5f6" in names and "Go to Registry" in names
        assert not any(name.startswith("Approve") for name in names)
        await pilot.press("2")
        registry = app.screen
        await wait_for(pilot, lambda: registry.loaded, "the registry")
        names = [c.name for c in app.palette_commands(registry)]
        assert {"Approve version 4", "Reject version 4", "Deploy version 4", "Go to Runs"} <= set(names)
        assert "Stop run a1b2c3d4e5f6" not in names
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"approve version 4")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval, from the palette")
