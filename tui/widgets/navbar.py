"""The top line of every screen: where you are, how to get elsewhere, and the threshold for next runs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

MODES = (("runs", "1", "Runs"), ("registry", "2", "Registry"), ("endpoints", "3", "Endpoints"), ("test", "4", "Test"))


class NavBar(Horizontal):
    """Tabs for the four screens (keys 1-4, or a click), then the backend and the threshold new runs get."""

    def __init__(self, mode: str) -> None:
        super().__init__(id="navbar")
        self.mode = mode

    def compose(self) -> ComposeResult:
        tabs = []
        for mode, key, title in MODES:
            if mode == self.mode:
                tabs.append(f"[b reverse] {key} {title} [/]")
            else:
                tabs.append(f"[@click=app.goto('{mode}')] {key} {title} [/]")
        yield Static("[b]housing-tui[/] " + " ".join(tabs), id="nav-tabs")
        yield Static(id="nav-info")

    def on_mount(self) -> None:
        self.watch(self.app, "threshold", self._show_threshold)

    def _show_threshold(self, threshold: float) -> None:
        backend = getattr(self.app, "backend", None)
        self.query_one("#nav-info", Static).update(f"threshold {threshold:.4g} · {getattr(backend, 'name', '?')}")
