"""uvicorn's httptools protocol, with the bounds a server open to any client needs.

uvicorn 0.54 bounds none of these, and each was a way for a few sockets to take the endpoint down:

- a request head (request line and headers) may have ``MAX_HEADER_BYTES``; more is a 431 and the end of the
  connection. httptools keeps a header's pieces in memory until the header ends, so three connections
  sending 20 MB of one header each took 85 MB, 200 MB each took 700 MB, and the 6 MB body limit meant
  nothing. The bound is counted on the bytes received, before the parser sees them;
- a request's head and body must have arrived ``request_timeout`` seconds after its first byte, else a
  408 and the end of the connection: a client sending slowly holds no connection, buffer or slot for long;
- a connection with no request in progress is closed after ``idle_timeout``; uvicorn's own keep-alive timer
  starts only after a first answer, so a connection that never sent a byte stayed open for ever;
- an answer the client does not take (the transport's write buffer stays full) for ``request_timeout``:
  the connection is dropped, so a client that stops reading cannot keep its concurrency slot;
- at most ``max_connections`` connections are open; one more is answered 503 and closed at once, so idle
  connections cannot use up the process's file descriptors.

A refusal is written, then the server half-closes and reads (and drops) what the client still sends for a
moment before closing: closing a socket with unread data resets it, and the client would lose the answer.

Deadlines are enforced by one sweep a few times a second (``sweep``), not a timer per request: a request
pays a few attribute reads and stores.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from .config import ConnectionLimits
from .logs import REQUEST_LOGGER

# The request line and all headers of one request. SageMaker's requests carry a few hundred bytes of headers
# (a SigV4 Authorization is ~200); 16 KB is what most servers allow (nginx 8-32 KB, Node 16 KB).
MAX_HEADER_BYTES = 16 * 1024
# After a refusal: how long, and how many bytes, the server keeps reading what a client still sends so its
# answer is not lost to a reset. A client that stops sending closes sooner.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024

request_log = logging.getLogger(REQUEST_LOGGER)

# A connection's state: what its deadline, if any, means.
_IDLE = 0  # no request in progress: close quietly at the deadline
_RECEIVING = 1  # a request's head or body is arriving: 408 at the deadline
_ANSWERING = 2  # the app has the whole request: no deadline but the write stall's
_LINGERING = 3  # refused, reading what the client still sends: close at the deadline
# _head_bytes while no request head is being counted (in a body, or after a refusal).
_IN_BODY = -1
_DISCARDING = -2


class ConnectionGuard:
    """The limits every connection is held to (replaceable on reload) and the sweep that enforces deadlines.

    Time is counted in sweeps: a connection notes the sweep number (``epoch``) when a request or an idle
    spell starts, and the sweep ends it once enough sweeps have passed. Sweeps are at least an interval
    apart, so a timeout never ends early, even after the event loop was busy for a while; it ends at most
    one interval (a quarter of the timeout) late. The request path pays an attribute read and a store.
    """

    def __init__(self, limits: ConnectionLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.epoch = 0

    @property
    def sweep_interval(self) -> float:
        # A quarter of the shortest timeout, between 50 ms and 1 s.
        shortest = min(self.limits.request_timeout, self.limits.idle_timeout)
        return min(1.0, max(0.05, shortest / 4))

    def sweeps(self, seconds: float) -> int:
        """Sweeps that must pass before a spell that began at most one interval before a sweep has lasted this long."""
        return math.ceil(seconds / self.sweep_interval) + 1

    def protocol(self, config: Config, server_state: ServerState, app_state: dict[str, Any], _loop: Any = None) -> Any:
        """What uvicorn calls for each accepted connection (``uvicorn.Config(http=...)``)."""
        return GuardedProtocol(config, server_state, app_state, _loop, guard=self)

    def sweep(self, connections: Iterable[Any]) -> None:
        self.epoch += 1
        request, idle = self.sweeps(self.limits.request_timeout), self.sweeps(self.limits.idle_timeout)
        now = self.clock()
        for connection in list(connections):  # closing one changes the set
            if isinstance(connection, GuardedProtocol):
                connection.check_deadlines(self.epoch, request, idle, now)


# The base class's handlers, called directly: cheaper than super() on the request path.
_data_received = HttpToolsProtocol.data_received
_on_headers_complete = HttpToolsProtocol.on_headers_complete
_on_message_complete = HttpToolsProtocol.on_message_complete


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that counts head bytes, keeps deadlines, and refuses connections over the cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        guard: ConnectionGuard,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self._state = _IDLE
        self._since = 0  # the sweep at which the current state began
        self._write_since = -1  # the sweep at which the answer stopped being taken; -1: it is being taken
        self._linger_until = 0.0
        self._head_bytes = 0  # bytes of the current request head received so far
        self._messages = 0  # requests received whole on this connection
        self._linger_left = 0

    # ------------------------------------------------------------------------------- the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.guard.limits.max_connections
        if len(self.connections) > limit:
            # Closed at once, without lingering: a flood of new connections must not hold descriptors.
            self._refuse(
                503,
                f"The endpoint has its maximum of {limit} open connections: reuse or close idle connections, "
                "or retry after a short wait.",
                "ServiceUnavailable",
                linger=False,
            )
            return
        self._since = self.guard.epoch

    def data_received(self, data: bytes | memoryview) -> None:  # type: ignore[override]
        counted = self._head_bytes
        if counted >= 0:  # in a request head, or between requests: its bytes count against the bound
            if counted == 0:  # the first bytes of a request: its head and body are due within the timeout
                self._state = _RECEIVING
                self._since = self.guard.epoch
            room = MAX_HEADER_BYTES - counted
            if len(data) > room:
                self._feed_over_the_bound(data, room)
                return
            self._head_bytes = counted + len(data)
        elif counted == _DISCARDING:
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self.transport.abort()
            return
        _data_received(self, data)

    def _feed_over_the_bound(self, data: bytes | memoryview, room: int) -> None:
        # Feed only what the bound allows. If the same head is still open after it, the request is refused.
        # Bytes that follow the end of a message in the same chunk start the next head uncounted, so a
        # pipelined head can exceed the bound by at most the rest of one read (uvloop reads 256 KB).
        view = memoryview(data)
        messages = self._messages
        _data_received(self, view[:room])
        if self._head_bytes == _DISCARDING or self.transport.is_closing():
            return
        if self._head_bytes >= 0 and self._messages == messages:
            self._refuse(
                431,
                f"The request's headers are over {MAX_HEADER_BYTES} bytes (request line included), the most "
                "this endpoint reads: send fewer or shorter headers.",
                "ValidationError",
            )
            return
        self.data_received(view[room:])  # a body, or the next request's head (counted from here)

    # ------------------------------------------------------------------------- a request's phases

    # Between the answer and the next request's first byte, uvicorn's keep-alive timer (set to the idle
    # timeout) closes the connection; the first byte of a request starts the request deadline (above).

    def on_headers_complete(self) -> None:
        _on_headers_complete(self)
        self._head_bytes = _IN_BODY

    def on_message_complete(self) -> None:
        _on_message_complete(self)
        self._head_bytes = 0
        self._messages += 1
        cycle = self.cycle
        if cycle is not None and cycle.response_complete:  # answered before its body ended (a 413)
            self._state = _IDLE
            self._since = self.guard.epoch
        else:
            self._state = _ANSWERING

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_since = self.guard.epoch

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_since = -1

    # ---------------------------------------------------------------------------------- deadlines

    def check_deadlines(self, epoch: int, request_sweeps: int, idle_sweeps: int, now: float) -> None:
        transport = self.transport
        if transport is None or (transport.is_closing() and self._state != _LINGERING):
            return
        if self._write_since >= 0 and epoch - self._write_since >= request_sweeps:
            request_log.info(
                "dropped a connection whose client took none of its answer for %g s", self.guard.limits.request_timeout
            )
            transport.abort()
            return
        state = self._state
        if state == _RECEIVING and epoch - self._since >= request_sweeps:
            timeout = self.guard.limits.request_timeout
            self._refuse(
                408,
                f"The request did not arrive whole within {timeout:g} s of its first byte: send its headers "
                "and body without pausing.",
                "RequestTimeout",
            )
        elif state == _IDLE and epoch - self._since >= idle_sweeps:
            transport.close()  # nothing to answer
        elif state == _LINGERING and now >= self._linger_until:
            transport.abort()

    # ----------------------------------------------------------------------------------- refusals

    def _refuse(self, status: int, message: str, error_type: str, linger: bool = True) -> None:
        """Answer with status and one sentence unless this request already has an answer, then linger and close."""
        request_log.info("refused with %d: %s", status, message)
        in_head = self._head_bytes >= 0
        cycle = self.cycle
        if not in_head and cycle is not None and not cycle.response_complete:
            # The app is waiting for the rest of the body: it sees a disconnect and answers nothing.
            answered = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
        else:
            answered = not in_head  # the request's answer (a 413) went out before its body ended
        transport = self.transport
        if not answered:
            body = message.encode()
            head = [STATUS_LINE[status]]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head += [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body),
                b"x-amzn-errortype: " + error_type.encode() + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
            transport.write(b"".join(head))
        self._head_bytes = _DISCARDING
        self._linger_left = LINGER_BYTES
        self._state = _LINGERING
        self._linger_until = self.guard.clock() + LINGER_SECONDS
        self._write_since = -1
        if linger and transport.can_write_eof():
            self.flow.resume_reading()
            transport.write_eof()  # the answer, then the end: a client reads it and closes
        else:
            transport.close()
