"""Registry: the group's versions with their metrics, a trend of r2, a detail pane, approval, deploy, and the
threshold for next runs, edited in place while the table shows which versions would pass it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, Label, Static
from textual.worker import get_current_worker

from core.errors import UserError
from core.models import ApprovalStatus, ModelVersion
from core.settings import save_threshold
from tui.commands import PaletteCommand
from tui.messages import ApprovalSaved, ThresholdSaved, VersionsLoaded
from tui.present import metric_summary, passes, r2_cell, version_detail, version_row
from tui.screens.base import PlaceScreen
from tui.screens.confirm import ApprovalScreen
from tui.screens.deploy import DeployScreen
from tui.validation import Checked, parse_threshold
from tui.widgets.tables import FittedTable, selected_key, sync_rows
from tui.widgets.trend import R2Trend
from tui.workers import Poller

POLL_SECONDS = 3.0


class RegistryScreen(PlaceScreen):
    MODE = "registry"
    POLL_GROUP = "registry-poll"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve", id="registry.approve"),
        Binding("r", "reject", "Reject", id="registry.reject"),
        Binding("d", "deploy", "Deploy", id="registry.deploy"),
        Binding("t", "edit_threshold", "Threshold", id="registry.threshold"),
        Binding("escape", "cancel_threshold", "Keep threshold", id="registry.threshold_cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[ModelVersion] = []
        self.editing = False
        self.preview: float | None = None  # the threshold being typed, while it is valid
        self.last_load_seconds: float | None = None
        self.poller = Poller(self, self.fetch_versions, lambda: self.poll_every(POLL_SECONDS))

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="threshold-bar"):
            yield Label("Threshold for next runs ", id="threshold-label")
            yield Input(id="threshold-edit", compact=True, validators=[Checked(parse_threshold)], select_on_focus=False)
            yield Static("", id="threshold-info")
        yield R2Trend(id="trend")
        with Horizontal(id="registry-body"):
            versions = FittedTable(id="versions", cursor_type="row", zebra_stripes=True)
            versions.border_title = "Versions"
            yield versions
            detail = VerticalScroll(id="version-detail")
            detail.border_title = "Detail"
            with detail:
                yield Static("", id="detail")

    def on_mount(self) -> None:
        table = self.query_one("#versions", DataTable)
        for label, key, width in (
            ("V", "version", 3),
            ("Status", "status", 8),
            ("r2", "r2", 8),
            ("rmse", "rmse", 6),
            ("mae", "mae", 6),
            ("Created", "created", 16),
            ("Run", "run", 12),
        ):
            table.add_column(label, key=key, width=width)
        self.query_one("#threshold-edit", Input).display = False
        self.watch(self.app, "threshold", self._threshold_changed, init=False)
        table.focus()

    # ---- polling -----------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="registry-poll", name="list versions", exit_on_error=False)
    def fetch_versions(self) -> None:
        started = time.perf_counter()
        versions = self.backend.list_versions()
        if not get_current_worker().is_cancelled:
            self.post_message(VersionsLoaded(versions, time.perf_counter() - started))

    def on_versions_loaded(self, message: VersionsLoaded) -> None:
        self.last_load_seconds = message.elapsed
        if message.versions != self.versions or not self.loaded:
            self.versions = message.versions
            self._draw()
        self.loaded = True
        assert self.poller is not None
        self.poller.done()

    # ---- drawing -----------------------------------------------------------------------------------------

    @property
    def shown_threshold(self) -> float | None:
        """What the ✓/✗ marks compare with: the value being typed, else the saved threshold."""
        return self.preview if self.editing else self.housing.threshold

    def _draw(self) -> None:
        table = self.query_one("#versions", DataTable)
        threshold = self.shown_threshold
        sync_rows(table, [(v.arn, version_row(v, threshold)) for v in self.versions])
        table.border_title = f"Versions · {len(self.versions)}"
        self.query_one(R2Trend).show(self.versions)
        self._draw_threshold_info()
        self._draw_detail()
        self.update_bindings()

    def _draw_marks(self) -> None:
        table = self.query_one("#versions", DataTable)
        threshold = self.shown_threshold
        for version in self.versions:
            table.update_cell(version.arn, "r2", r2_cell(version, threshold))
        self._draw_threshold_info()

    def _draw_threshold_info(self, error: str | None = None) -> None:
        info = self.query_one("#threshold-info", Static)
        label = self.query_one("#threshold-label", Label)
        label.update("New threshold " if self.editing else f"Threshold for next runs {self.housing.threshold:.4g}")
        if error:
            info.update(Text(error, style="bold red"))
            return
        threshold = self.shown_threshold
        passing = [v for v in self.versions if passes(v, threshold)]
        text = Text()
        if self.editing:
            text.append(" ✓ would pass: ", style="bold")
        else:
            text.append(" · t to change · ✓ pass: ", style="dim")
        text.append(f"{len(passing)} of {len(self.versions)}")
        if passing and self.editing:
            names = ", ".join(f"v{v.version}" for v in passing[:8]) + (" …" if len(passing) > 8 else "")
            text.append(f" ({names})", style="green")
        if self.editing:
            text.append("  Enter saves, Esc keeps the old one", style="dim")
        info.update(text)

    def _draw_detail(self) -> None:
        version = self.selected_version()
        detail = self.query_one("#detail", Static)
        if version is None:
            detail.update("No versions yet. A run whose r2 reaches its threshold registers one (Runs, n).")
            return
        detail.update(version_detail(version, self.champion()))
        self.query_one("#version-detail").border_title = f"Version {version.version}"

    def selected_version(self) -> ModelVersion | None:
        key = selected_key(self.query_one("#versions", DataTable))
        return next((v for v in self.versions if v.arn == key), None)

    def champion(self) -> ModelVersion | None:
        """The newest Approved version (the list is newest first)."""
        return next((v for v in self.versions if v.approval_status is ApprovalStatus.APPROVED), None)

    @on(DataTable.RowHighlighted, "#versions")
    def _highlighted(self) -> None:
        self._draw_detail()
        self.update_bindings()

    # ---- threshold ---------------------------------------------------------------------------------------

    def action_edit_threshold(self) -> None:
        self.begin_threshold_edit()

    def begin_threshold_edit(self) -> None:
        field = self.query_one("#threshold-edit", Input)
        self.editing = True
        self.preview = self.housing.threshold
        field.value = f"{self.housing.threshold!r}"
        field.display = True
        field.focus()
        field.action_end()
        self._draw_marks()
        self.update_bindings()

    @on(Input.Changed, "#threshold-edit")
    def _threshold_typed(self, event: Input.Changed) -> None:
        if not self.editing:
            return
        try:
            self.preview = parse_threshold(event.value)
        except UserError as exc:
            self.preview = None
            self._draw_marks()
            self._draw_threshold_info(str(exc))
            return
        self._draw_marks()

    @on(Input.Submitted, "#threshold-edit")
    def _threshold_submitted(self, event: Input.Submitted) -> None:
        try:
            value = parse_threshold(event.value)
        except UserError as exc:
            self._draw_threshold_info(f"Not saved: {exc}")
            return
        self.save_threshold(value)

    @work(thread=True, exclusive=True, group="threshold-save", name="save the threshold", exit_on_error=False)
    def save_threshold(self, value: float) -> None:
        path = save_threshold(value)
        self.post_message(ThresholdSaved(value, str(path)))

    def on_threshold_saved(self, message: ThresholdSaved) -> None:
        self._end_threshold_edit()
        self.housing.threshold = message.value
        self.notify(f"Threshold {message.value:.4g} saved in {message.path}; new runs use it.", markup=False)

    def action_cancel_threshold(self) -> None:
        self._end_threshold_edit()

    def _end_threshold_edit(self) -> None:
        self.editing = False
        self.preview = None
        field = self.query_one("#threshold-edit", Input)
        field.display = False
        self.query_one("#versions", DataTable).focus()
        self._draw_marks()
        self.update_bindings()

    def _threshold_changed(self, _value: float) -> None:
        self._draw_marks()

    # ---- approval and deploy -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_threshold":
            return self.editing
        if action == "edit_threshold":
            return not self.editing
        if action in ("approve", "reject", "deploy"):
            if self.editing:
                return False
            version = self.selected_version()
            if version is None:
                return False
            if action == "approve":
                return version.approval_status is not ApprovalStatus.APPROVED
            if action == "reject":
                return version.approval_status is not ApprovalStatus.REJECTED
        return True

    def _ask_approval(self, status: ApprovalStatus) -> None:
        version = self.selected_version()
        if version is None:
            return
        verb = "Approve" if status is ApprovalStatus.APPROVED else "Reject"
        if status is ApprovalStatus.APPROVED:
            consequence = "It can then be deployed, and is the champion new runs are compared with."
        else:
            consequence = "It will not be deployed, and no longer counts as the champion."
        question = f"Set version {version.version} ({version.approval_status}) to {status}? {consequence}"
        dialog = ApprovalScreen(
            f"{verb} version {version.version}",
            question,
            verb,
            metric_summary(version),
            danger=status is ApprovalStatus.REJECTED,
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.set_approval(version.arn, status, dialog.description)

        self.app.push_screen(dialog, answered)

    def action_approve(self) -> None:
        self._ask_approval(ApprovalStatus.APPROVED)

    def action_reject(self) -> None:
        self._ask_approval(ApprovalStatus.REJECTED)

    @work(thread=True, exclusive=True, group="registry-approval", name="set the approval", exit_on_error=False)
    def set_approval(self, arn: str, status: ApprovalStatus, description: str) -> None:
        self.post_message(ApprovalSaved(self.backend.set_approval(arn, status, description or None)))

    def on_approval_saved(self, message: ApprovalSaved) -> None:
        version = message.version
        self.versions = [version if v.arn == version.arn else v for v in self.versions]
        self._draw()
        self.notify(f"Version {version.version} is {version.approval_status}.")
        assert self.poller is not None
        self.poller.now()

    def action_deploy(self) -> None:
        version = self.selected_version()
        if version is None:
            return

        def deploy(request: object) -> None:
            if request is not None:
                self.housing.deploy(request)  # type: ignore[arg-type]

        self.app.push_screen(DeployScreen(self.versions, version), deploy)

    def palette_commands(self) -> Iterable[PaletteCommand]:
        version = self.selected_version()
        if version is not None and not self.editing:
            if version.approval_status is not ApprovalStatus.APPROVED:
                yield PaletteCommand(f"Approve version {version.version}", metric_summary(version), self.action_approve)
            if version.approval_status is not ApprovalStatus.REJECTED:
                yield PaletteCommand(f"Reject version {version.version}", metric_summary(version), self.action_reject)
            yield PaletteCommand(
                f"Deploy version {version.version}", "Serve it on a serverless endpoint (d)", self.action_deploy
            )
        champion = self.champion()
        if champion is not None:
            yield PaletteCommand(
                f"Select champion v{champion.version}", "Highlight the newest Approved version", self._select(champion)
            )

    def _select(self, version: ModelVersion):
        def select() -> None:
            table = self.query_one("#versions", DataTable)
            table.move_cursor(row=table.get_row_index(version.arn))
            table.focus()

        return select
