"""The deploy form: which version, endpoint name, serverless memory and max concurrency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static

from core import serverless
from core.errors import UserError
from core.models import ApprovalStatus, Endpoint, ModelVersion
from tui import validation
from tui.present import model_label, short_time
from tui.widgets.field import FormField


@dataclass(frozen=True)
class DeployRequest:
    version: ModelVersion
    endpoint_name: str
    memory_mb: int
    max_concurrency: int
    force: bool


def version_choice(version: ModelVersion) -> str:
    r2 = f" r2 {version.metrics.r2:.4f}" if version.metrics else ""
    return f"v{version.version} {version.approval_status}{r2}"


class DeployScreen(ModalScreen[DeployRequest | None]):
    """Dismisses with a DeployRequest whose values the core accepts, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "deploy", "Deploy", id="deploy.start"),
        Binding("escape", "cancel", "Cancel", id="deploy.cancel"),
    ]

    def __init__(
        self, versions: Sequence[ModelVersion], selected: ModelVersion | None, endpoint: Endpoint | None = None
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.versions = list(versions)
        self.selected = selected or next(
            (v for v in self.versions if v.approval_status is ApprovalStatus.APPROVED),
            self.versions[0] if self.versions else None,
        )
        self.endpoint = endpoint

    def compose(self) -> ComposeResult:
        endpoint = self.endpoint
        with Vertical(classes="dialog", id="deploy"):
            yield Label("Deploy a model version to a serverless endpoint", classes="dialog-title")
            with Horizontal(classes="field-row"):
                yield Label("Version", classes="field-label")
                yield Select(
                    [(version_choice(v), v.arn) for v in self.versions],
                    value=self.selected.arn if self.selected else Select.NULL,
                    allow_blank=self.selected is None,
                    compact=True,
                    id="version",
                )
            yield Static("", classes="field-message", id="version-message")
            yield FormField(
                "Endpoint name",
                endpoint.name if endpoint else serverless.DEFAULT_ENDPOINT,
                validation.parse_endpoint_name,
                "an existing one switches over, no request fails",
                id="endpoint-name",
            )
            with Horizontal(classes="field-row"):
                yield Label("Memory (MB)", classes="field-label")
                yield Select(
                    [(f"{mb} MB", mb) for mb in serverless.MEMORY_CHOICES],
                    value=endpoint.memory_mb if endpoint else serverless.DEFAULT_MEMORY,
                    allow_blank=False,
                    compact=True,
                    id="memory",
                )
            yield Static("MemorySizeInMB: 1024 to 6144 in steps of 1024", classes="field-message")
            yield FormField(
                "Max concurrency",
                str(endpoint.max_concurrency if endpoint else serverless.DEFAULT_MAX_CONCURRENCY),
                validation.parse_max_concurrency,
                "MaxConcurrency: 1 to 200 requests at once",
                id="concurrency",
            )
            yield Checkbox("deploy although it is not Approved (--force)", id="force", compact=True)
            yield Static("", id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Deploy (ctrl+s)", variant="primary", id="start", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self._version_changed()
        self.query_one("#endpoint-name-input", Input).focus()

    def chosen_version(self) -> ModelVersion | None:
        arn = self.query_one("#version", Select).value
        return next((v for v in self.versions if v.arn == arn), None)

    @on(Select.Changed, "#version")
    def _version_changed(self) -> None:
        version = self.chosen_version()
        force = self.query_one("#force", Checkbox)
        message = self.query_one("#version-message", Static)
        approved = version is not None and version.approval_status is ApprovalStatus.APPROVED
        force.display = version is not None and not approved
        if version is None:
            message.update("no versions to deploy yet")
        elif approved:
            message.update(f"{model_label(version.arn)}, created {short_time(version.created)}")
        else:
            message.update(f"{version.approval_status}: only Approved versions deploy")
        message.set_class(version is not None and not approved, "-warning")

    def request(self) -> DeployRequest:
        version = self.chosen_version()
        if version is None:
            raise UserError("choose a version to deploy; a run that passes its threshold registers one")
        force = self.query_one("#force", Checkbox).value
        if version.approval_status is not ApprovalStatus.APPROVED and not force:
            raise UserError(
                f"version {version.version} is {version.approval_status}, and only Approved versions deploy; "
                "approve it first (Registry, a) or tick the box to deploy it anyway"
            )
        for field in self.query(FormField):
            if field.error:
                raise UserError(field.error)
        return DeployRequest(
            version=version,
            endpoint_name=self.query_one("#endpoint-name", FormField).value,
            memory_mb=serverless.validate_memory(int(self.query_one("#memory", Select).value)),  # type: ignore[arg-type]
            max_concurrency=self.query_one("#concurrency", FormField).value,
            force=force,
        )

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _clear_form_error(self) -> None:
        self.query_one("#form-error", Static).update("")

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def action_deploy(self) -> None:
        try:
            request = self.request()
        except UserError as exc:
            self.query_one("#form-error", Static).update(f"Not deployed: {exc}")
            return
        self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
