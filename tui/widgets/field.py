"""A labelled one-line input that checks its value as it is typed and says what is wrong in a sentence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from core.errors import UserError
from tui.validation import Checked


class FormField(Vertical):
    """Label and input on one line; below them the help text, or the sentence explaining an invalid value."""

    def __init__(
        self,
        label: str,
        value: str,
        parse: Callable[[str], Any],
        help: str = "",
        placeholder: str = "",
        *,
        id: str,
    ) -> None:
        super().__init__(id=id, classes="form-field")
        self.label = label
        self.initial = value
        self.parse = parse
        self.help = help
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label(self.label, classes="field-label")
            yield Input(
                self.initial,
                placeholder=self.placeholder,
                validators=[Checked(self.parse)],
                compact=True,
                id=f"{self.id}-input",
            )
        yield Static(self.help, classes="field-message")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def error(self) -> str | None:
        """The sentence for the current text, or None when it is valid."""
        try:
            self.parse(self.input.value)
        except UserError as exc:
            return str(exc)
        return None

    @property
    def value(self) -> Any:
        """The parsed value; raises UserError with the sentence when the text is invalid."""
        return self.parse(self.input.value)

    def on_mount(self) -> None:
        self._show(self.error)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._show(self.error)

    def _show(self, error: str | None) -> None:
        message = self.query_one(".field-message", Static)
        message.update(error or self.help)
        message.set_class(error is not None, "-invalid")
        self.set_class(error is not None, "-invalid")
