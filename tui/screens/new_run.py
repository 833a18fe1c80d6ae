"""The "new run" form: the pipeline parameters of one execution, checked as they are typed."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from core import spec
from core.errors import UserError
from core.models import ApprovalStatus
from tui import validation
from tui.messages import ChampionLoaded
from tui.widgets.field import FormField
from tui.workers import ReportsWorkerErrors


class NewRunScreen(ReportsWorkerErrors, ModalScreen[spec.RunParameters | None]):
    """Dismisses with validated RunParameters, or None when cancelled. Impossible values are refused with
    the core's sentence, shown under the field while it is typed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start run", id="new_run.start"),
        Binding("escape", "cancel", "Cancel", id="new_run.cancel"),
    ]

    def __init__(self, threshold: float) -> None:
        super().__init__(classes="dialog-screen")
        self.threshold = threshold

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="new-run"):
            yield Label("New run: Preprocess → Train → Evaluate → CheckR2 → Register", classes="dialog-title")
            yield FormField(
                "R2Threshold",
                f"{self.threshold!r}",
                validation.parse_threshold,
                "register the model only if its test r2 reaches this",
                id="threshold",
            )
            yield FormField(
                "TestSize", "0.2", validation.parse_test_size, "fraction of rows held out, in (0, 1)", id="test-size"
            )
            yield FormField("SplitSeed", "42", validation.parse_split_seed, "random_state of the split", id="seed")
            with Horizontal(classes="field-row", id="approval-row"):
                yield Label("New version status", classes="field-label")
                yield Select(
                    [(status.value, status) for status in ApprovalStatus],
                    value=ApprovalStatus.PENDING,
                    allow_blank=False,
                    compact=True,
                    id="approval",
                )
            yield Static("ModelApprovalStatus of a registered version", classes="field-message")
            yield FormField(
                "MinImprovement",
                "",
                validation.parse_min_improvement,
                "empty: no champion gate",
                placeholder="off",
                id="min-improvement",
            )
            yield Static("", id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start run (ctrl+s)", variant="primary", id="start", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#threshold-input", Input).focus()
        self.load_champion()

    @work(thread=True, exclusive=True, group="new-run-champion", name="read the champion", exit_on_error=False)
    def load_champion(self) -> None:
        self.post_message(ChampionLoaded(self.app.backend.champion()))  # type: ignore[attr-defined]

    def on_champion_loaded(self, message: ChampionLoaded) -> None:
        field = self.query_one("#min-improvement", FormField)
        champion = message.champion
        if champion is not None and champion.metrics is not None:
            field.help = f"empty: off; else beat champion v{champion.version} (r2 {champion.metrics.r2:.4f}) by this"
        else:
            field.help = "empty: off; there is no Approved champion yet, so the gate would pass"
        field.query_one(".field-message", Static).update(field.error or field.help)

    def parameters(self) -> spec.RunParameters:
        """The form's values as RunParameters; raises UserError with the first field's sentence."""
        fields = list(self.query(FormField))
        for field in fields:
            if field.error:
                raise UserError(field.error)
        values = {field.id: field.value for field in fields}
        return spec.RunParameters(
            r2_threshold=values["threshold"],
            test_size=values["test-size"],
            split_seed=values["seed"],
            approval_status=self.query_one("#approval", Select).value,  # type: ignore[arg-type]
            min_improvement=values["min-improvement"],
        )

    @on(Input.Changed)
    def _clear_form_error(self) -> None:
        self.query_one("#form-error", Static).update("")

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        try:
            params = self.parameters()
        except UserError as exc:
            self.query_one("#form-error", Static).update(f"Not started: {exc}")
            return
        self.dismiss(params)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
