"""Confirmations: a modal yes/no answered with y, n or escape."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks one question; dismisses with True for yes, False for no or escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Yes", id="confirm.yes"),
        Binding("n", "cancel", "No", id="confirm.no"),
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, title: str, question: str, yes: str = "Yes", *, danger: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.question = question
        self.yes = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.question, classes="dialog-question")
            yield from self.compose_extra()
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error" if self.danger else "primary", id="yes", compact=True)
                yield Button("No (n)", id="no", compact=True)
        yield Footer()

    def compose_extra(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        # A destructive question starts on "No", so an absent-minded Enter changes nothing.
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ApprovalScreen(ConfirmScreen):
    """Approve or reject one version, with an ApprovalDescription that starts as the metric summary."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("e", "edit_description", "Edit description", id="approval.edit")]

    def __init__(self, title: str, question: str, yes: str, description: str, *, danger: bool = False) -> None:
        super().__init__(title, question, yes, danger=danger)
        self.initial_description = description

    def compose_extra(self) -> ComposeResult:
        yield Label("ApprovalDescription (e to edit, Enter to confirm):", classes="dialog-note")
        yield Input(self.initial_description, id="description", compact=True, select_on_focus=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#description", Input).cursor_position = 0  # show the start of a long summary

    @property
    def description(self) -> str:
        return self.query_one("#description", Input).value.strip()

    def action_edit_description(self) -> None:
        field = self.query_one("#description", Input)
        field.focus()
        field.action_end()

    @on(Input.Submitted, "#description")
    def _submitted(self) -> None:
        self.dismiss(True)
