"""Background work: how worker errors reach the user, and how live views poll without storms.

Every backend call runs in a named thread worker declared with
`@work(thread=True, exclusive=True, group=..., name=..., exit_on_error=False)` on the screen that needs it.
`Worker.StateChanged` does not bubble, so each node that owns workers mixes in `ReportsWorkerErrors`,
which re-posts a failure as a bubbling `BackendError`; `HousingApp.on_backend_error` is the one place
that turns it into a notice.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from tui.messages import BackendError


class ReportsWorkerErrors:
    """Mixin for a screen (or the app): a failed worker becomes a `BackendError` message."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.post_message(BackendError(event.worker.name, event.worker.error))  # type: ignore[attr-defined]
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker) -> None:
        """Hook: a screen may resume polling or show the failure in place as well."""


class Poller:
    """Poll, refresh, then schedule the next poll: at most one fetch in flight, none while the screen is hidden.

    The owner calls `resume()`/`suspend()` from ScreenResume/ScreenSuspend, `now()` when the user changed what
    is shown, and `done()` after it has drawn a fetch's result (or the fetch failed). Only `done()` schedules
    the next fetch, so a slow backend slows the polling down instead of piling requests up.
    """

    def __init__(self, owner: DOMNode, fetch: Callable[[], object], interval: Callable[[], float]) -> None:
        self._owner = owner
        self._fetch = fetch
        self._interval = interval
        self._timer: Timer | None = None
        self.active = False
        self.busy = False  # a fetch is in flight
        self.failures = 0

    def resume(self) -> None:
        self.active = True
        self.now()

    def suspend(self) -> None:
        self.active = False
        self._cancel()

    def now(self) -> None:
        self._cancel()
        if self.active:
            self.busy = True
            self._fetch()

    def done(self, failed: bool = False) -> None:
        self._cancel()
        self.busy = False
        self.failures = self.failures + 1 if failed else 0
        if self.active:
            # After failures wait longer (up to 10 s), so a broken backend is not hammered.
            delay = self._interval() if not failed else min(10.0, self._interval() * 2**self.failures)
            self._timer = self._owner.set_timer(delay, self.now, name="poll")

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
