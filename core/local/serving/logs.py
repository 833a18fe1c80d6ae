"""The endpoint server's log: one file, rotated by size, and a bounded rate of lines about single requests.

A client decides how often its requests fail; it must not decide how much the server writes. Lines about one
request (a refusal, a model's failure on a body, uvicorn's "Invalid HTTP request received.") go through
loggers that let ``REQUEST_LINES_PER_SECOND`` through each second and count the rest, which are reported as
one "suppressed" line. Lines about the endpoint itself (start, load, reload, stop) are never dropped.

With ``--log-file`` (the deployer passes the file it also gave the process as stdout and stderr) the server
writes through the standard library's ``RotatingFileHandler``, and after each rollover points its own
stdout and stderr at the new file, so what is written there directly (faulthandler, a C library) lands in
the current file instead of keeping a rotated one growing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from typing import IO, Any

# Logger for lines about one request; everything under it is rate-limited.
REQUEST_LOGGER = "housing_tui.serving.requests"
# uvicorn logs each invalid request on uvicorn.error; asyncio logs a transport's write errors per connection.
_PER_REQUEST_LOGGERS = (REQUEST_LOGGER, "uvicorn.error", "asyncio")
# Enough to see what kind of trouble a flood is while it lasts; at ~200 bytes a line, 2 KB a second at most.
REQUEST_LINES_PER_SECOND = 10
# server.log rolls over at this size and keeps this many older files: at most 40 MB per endpoint.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3

log = logging.getLogger("housing_tui.serving")


class RateLimit(logging.Filter):
    """Pass at most ``per_second`` records a second; count the others and report them in one line."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.per_second = per_second
        self.clock = clock
        self.window = 0.0  # start of the current one-second window
        self.passed = 0
        self.suppressed = 0
        self._lock = threading.Lock()  # the reload thread may log too

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        with self._lock:
            if now - self.window >= 1.0:
                self._report(now)
            if self.passed < self.per_second:
                self.passed += 1
                return True
            self.suppressed += 1
            return False

    def tick(self) -> None:
        """Report what was suppressed once its second is over, even when no further record comes."""
        now = self.clock()
        with self._lock:
            if self.suppressed and now - self.window >= 1.0:
                self._report(now)

    def _report(self, now: float) -> None:
        if self.suppressed:
            seconds = now - self.window
            log.warning(
                "suppressed %d more lines about single requests in the last %.0f s (at most %d a second are written)",
                self.suppressed,
                max(seconds, 1.0),
                self.per_second,
            )
        self.window = now
        self.passed = 0
        self.suppressed = 0


request_lines = RateLimit(REQUEST_LINES_PER_SECOND)


class _FollowingRotatingFileHandler(RotatingFileHandler):
    """RotatingFileHandler that points the process's stdout and stderr at each file it opens."""

    def _open(self) -> IO[Any]:
        stream = super()._open()
        for descriptor in (1, 2):
            os.dup2(stream.fileno(), descriptor)
        return stream


def configure(log_file: str | None, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS) -> None:
    """One plain line per event, to the rotating log file if one is given (else to stderr), rate-limited."""
    handler: logging.Handler
    if log_file:
        handler = _FollowingRotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in _PER_REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if request_lines not in logger.filters:
            logger.addFilter(request_lines)
