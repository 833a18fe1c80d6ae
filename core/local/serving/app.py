"""The endpoint's HTTP protocol as a bare ASGI application: /ping, the container's route and SageMaker Runtime's.

No web framework: routing three paths by hand costs a few string comparisons, where a framework's request
objects, routing tables and middleware cost tens of microseconds a request, which matters when a whole
single-row request is well under a millisecond. The model is read once per request from ``self.model``; a
reload replaces that attribute in one assignment, so each request is answered wholly by the old or wholly
by the new model.

Every request body goes through the container's handler chain (handler_chain.py), so the entry point
decides the answer exactly as it does on SageMaker. The two invocation routes answer as their SageMaker
counterparts do:

- ``POST /invocations`` is the container's own route: its status and body as they are (a 400 of the entry
  point, or a 500 when a handler raised);
- ``POST /endpoints/NAME/invocations`` is InvokeEndpoint's: a 2xx passes through; any other answer of the
  container becomes SageMaker Runtime's ``ModelError`` (HTTP 424) carrying ``OriginalStatusCode`` and
  ``OriginalMessage``, so boto3 callers handle a local endpoint's refusal exactly as an AWS one.

What SageMaker Runtime itself refuses before the container sees a request (a body over 6 MB, more
requests than MaxConcurrency) is answered here with its status (413, 429). Bounds on the connection itself
(head size, timeouts, the number of connections) are protocol.py's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.serverless import MAX_PAYLOAD_BYTES

from .artifacts import LoadedModel
from .handler_chain import ContainerAnswer
from .logs import REQUEST_LOGGER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Lines about one request: rate-limited (logs.py), so no client can flood the log.
request_log = logging.getLogger(REQUEST_LOGGER)

_TEXT = b"text/plain; charset=utf-8"
# Request bodies held at once (arriving, waiting for a slot, being answered): 16 of the largest. A body is
# read before its request takes a slot, so the concurrency limit no longer bounds them, and the connection
# cap alone would allow 256 x 6 MB; real clients hold far less (a 1,000-row body is 60 KB).
BODY_BUFFER_LIMIT = 16 * MAX_PAYLOAD_BYTES
# InvokeEndpoint reports the variant that answered; a local endpoint has the one SageMaker names by default.
_VARIANT = (b"x-amzn-invoked-production-variant", b"AllTraffic")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _send(send: Send, status: int, body: bytes, content_type: bytes, headers: list) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestError(Exception):
    """A request the server refuses before the container sees it: a status, one sentence, an error type."""

    def __init__(self, status: int, message: str, error_type: str = "ValidationError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


async def _send_error(send: Send, error: RequestError, headers: list | None = None) -> None:
    request_log.info("refused with %d: %s", error.status, error.message)
    # botocore reads the error code from x-amzn-ErrorType and takes a non-JSON body as the message.
    extra = [(b"x-amzn-errortype", error.error_type.encode()), *(headers or [])]
    await _send(send, error.status, error.message.encode(), _TEXT, extra)


class InferenceApp:
    """ASGI 3 application serving one model under one endpoint name.

    ``max_concurrency`` bounds the requests being answered at once (parse, predict, send the answer); a
    request takes its slot once its whole body has arrived, so clients that send slowly cannot take the
    slots from the others (protocol.py ends them with a 408). Requests beyond it wait for a slot up to
    ``queue_timeout`` seconds, then get 429 ThrottlingException, as SageMaker serverless answers above its
    MaxConcurrency. Waiting absorbs bursts (16 clients on a limit of 5 wait a few milliseconds, where an
    immediate 429 would fail most of their requests), and the time-out keeps an overloaded server from
    building an unbounded queue; boto3 retries ThrottlingException with back-off by itself.
    """

    def __init__(
        self, endpoint_name: str, model: LoadedModel, max_concurrency: int, queue_timeout: float = 2.0
    ) -> None:
        self.endpoint_name = endpoint_name
        self.model = model
        self.queue_timeout = queue_timeout
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._invocations_path = f"/endpoints/{endpoint_name}/invocations"
        self._buffered = 0  # bytes of request bodies held, against BODY_BUFFER_LIMIT

    def set_max_concurrency(self, max_concurrency: int) -> None:
        # Requests holding slots of the old semaphore release into it; new ones use the new bound.
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off and websockets are not served
        path = scope["path"]
        if path == "/invocations" or path == self._invocations_path:
            if scope["method"] != "POST":
                await _send_error(
                    send,
                    RequestError(405, f"{path} takes POST requests with CSV or JSON rows."),
                    [(b"allow", b"POST")],
                )
                return
            await self._invocation(scope, receive, send, runtime_route=path != "/invocations")
        elif path == "/ping":
            await self._ping(scope, send)
        elif path.startswith("/endpoints/") and path.endswith("/invocations"):
            name = path[len("/endpoints/") : -len("/invocations")]
            await _send_error(
                send,
                RequestError(
                    404,
                    f"Endpoint {name!r} is not served here: this server serves {self.endpoint_name!r}.",
                    "ValidationError",
                ),
            )
        else:
            await _send_error(
                send,
                RequestError(
                    404,
                    f"There is no {path} here: this endpoint serves GET /ping, POST /invocations and "
                    f"POST {self._invocations_path}.",
                    "UnknownOperationException",
                ),
            )

    async def _ping(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _send_error(send, RequestError(405, "/ping takes GET requests."), [(b"allow", b"GET")])
            return
        # The app exists only once a model is loaded, so answering at all means ready.
        await _send(send, 200, b"", _TEXT, [(b"x-model-sha256", self.model.sha256.encode())])

    async def _invocation(self, scope: Scope, receive: Receive, send: Send, runtime_route: bool) -> None:
        # The body first, then a slot: a client that sends its body slowly holds no slot (the protocol ends
        # it with a 408 after the request timeout), and the slots bound the requests being answered.
        declared = _header(scope, b"content-length")
        held = int(declared) if declared is not None and declared.isdigit() else 0
        # Refuse a declared oversize body before reading any of it; the server discards what follows.
        if held > MAX_PAYLOAD_BYTES:
            await _send_error(send, _too_large(held))
            return
        if self._buffered + held > BODY_BUFFER_LIMIT:
            await _send_error(send, self._busy())
            return
        self._buffered += held  # counted until the answer is sent: the body lives until then
        try:
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client went away (or the protocol timed it out); nobody to answer
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > held:  # chunked uploads announce no length: count as they come
                        if size > MAX_PAYLOAD_BYTES:
                            await _send_error(send, _too_large(None))
                            return
                        if self._buffered + size - held > BODY_BUFFER_LIMIT:
                            await _send_error(send, self._busy())
                            return
                        self._buffered += size - held
                        held = size
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            await self._answer_in_a_slot(scope, body, send, runtime_route)
        finally:
            self._buffered -= held

    async def _answer_in_a_slot(self, scope: Scope, body: bytes, send: Send, runtime_route: bool) -> None:
        slots = self._slots
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), self.queue_timeout)
            except TimeoutError:
                await _send_error(
                    send,
                    RequestError(
                        429,
                        f"The endpoint is serving its maximum of {self.max_concurrency} concurrent requests "
                        f"and none finished within {self.queue_timeout:g} s: retry after a short wait.",
                        "ThrottlingException",
                    ),
                )
                return
        else:
            await slots.acquire()  # free slot: returns at once, without a trip through the event loop
        try:
            await self._answer(scope, body, send, runtime_route)
        finally:
            slots.release()

    async def _answer(self, scope: Scope, body: bytes, send: Send, runtime_route: bool) -> None:
        model = self.model
        # The container reads SageMaker's ContentType header first, then Content-Type.
        content_type = _header(scope, b"contenttype") or _header(scope, b"content-type")
        answer = model.chain.invoke(body, content_type, _header(scope, b"accept"))
        if answer.failure is not None:
            request_log.warning("model %s: %s", model.sha256[:12], answer.failure)
        if runtime_route and not 200 <= answer.status < 300:
            await _send_model_error(send, answer)
            return
        await _send(
            send,
            answer.status,
            answer.body,
            answer.content_type.encode("latin-1", "replace"),
            [(b"x-model-sha256", model.sha256.encode()), _VARIANT],
        )

    def _busy(self) -> RequestError:
        return RequestError(
            503,
            f"The endpoint holds {BODY_BUFFER_LIMIT // (1024 * 1024)} MB of other requests' bodies, its most: "
            "retry after a short wait.",
            "ServiceUnavailable",
        )


async def _send_model_error(send: Send, answer: ContainerAnswer) -> None:
    """SageMaker Runtime's ModelError for a container answer that is not a 2xx, as InvokeEndpoint sends it."""
    original = answer.body.decode("utf-8", "replace")
    side = "client" if 400 <= answer.status < 500 else "server"
    body = {
        "Message": f'Received {side} error ({answer.status}) from primary with message "{original}". '
        "See the endpoint's server.log for more information.",
        "OriginalMessage": original,
        "OriginalStatusCode": answer.status,
    }
    await _send(send, 424, json.dumps(body).encode(), b"application/json", [(b"x-amzn-errortype", b"ModelError")])


def _too_large(size: int | None) -> RequestError:
    told = f"{size} bytes" if size is not None else f"more than {MAX_PAYLOAD_BYTES} bytes"
    return RequestError(
        413,
        f"The request body has {told}, over the {MAX_PAYLOAD_BYTES}-byte (6 MB) limit of a real-time "
        "endpoint: send fewer rows per request.",
    )
