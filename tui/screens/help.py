"""The help screen: every binding of the application, read from the BINDINGS declarations themselves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

# Keys the application inherits from Textual, listed so the help is complete.
INHERITED = [
    ("ctrl+p", "command_palette", "Command palette: the actions that make sense here"),
    ("tab / shift+tab", "focus_next", "Move between the panes and fields of a screen"),
    ("↑ ↓ pgup pgdn home end", "cursor", "Move in a table or log"),
    ("enter", "select", "Runs: open the steps · Steps: the log · Endpoints: test it · Forms: submit"),
    ("ctrl+q / ctrl+c", "quit", "Quit at once (ctrl+c asks first)"),
]


def _bindings(bindings: Iterable[BindingType]) -> list[Binding]:
    found = []
    for item in bindings:
        if isinstance(item, Binding):
            found.append(item)
        else:
            found.extend(Binding.make_bindings([item]))
    return found


class HelpScreen(ModalScreen[None]):
    """Lists the keys of every screen and dialog, grouped by where they work."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", id="help.close_key", show=False),
        Binding("q", "close", "Close", id="help.close_q", show=False),
    ]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help"):
            yield Label("Keys (esc closes)", classes="dialog-title")
            yield Static(self._table(), id="help-table")
        yield Footer()

    def _table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", expand=True, padding=(0, 1))
        table.add_column("Key", no_wrap=True, style="bold cyan", min_width=16)
        table.add_column("Does", ratio=1)
        table.add_column("Action", style="dim", no_wrap=True)
        for title, bindings in self.sections:
            table.add_row(Text(title, style="bold underline"), "", "")
            for binding in _bindings(bindings):
                key = self.app.get_key_display(binding)
                table.add_row(key, binding.description or binding.action, binding.id or binding.action)
            table.add_row("", "", "")
        table.add_row(Text("Inherited from Textual", style="bold underline"), "", "")
        for key, action, description in INHERITED:
            table.add_row(key, description, action)
        return table

    def action_close(self) -> None:
        self.dismiss(None)
