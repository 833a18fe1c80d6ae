"""A one-line picture of r2 across the group's versions."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline

from core.models import ModelVersion


class R2Trend(Horizontal):
    """'r2 trend' with a sparkline, oldest version left, then the first, last and best values in numbers."""

    def compose(self) -> ComposeResult:
        yield Label("r2 trend ", id="trend-label")
        yield Sparkline([], id="trend-spark")
        yield Label("", id="trend-range")

    def show(self, versions: Sequence[ModelVersion]) -> None:
        scored = sorted((v.version, v.metrics.r2) for v in versions if v.metrics is not None)
        self.query_one(Sparkline).data = [r2 for _, r2 in scored]
        if not scored:
            text = " no versions yet"
        else:
            (first, first_r2), (last, last_r2) = scored[0], scored[-1]
            best, best_r2 = max(scored, key=lambda item: item[1])
            text = f" v{first} {first_r2:.4f} → v{last} {last_r2:.4f} · best v{best} {best_r2:.4f}"
        self.query_one("#trend-range", Label).update(text)
