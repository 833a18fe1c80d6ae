"""InvokeEndpoint through boto3's sagemaker-runtime client, for both backends.

The local backend points the same client at its endpoint's URL, so the request takes the code path (and
the route, /endpoints/NAME/invocations) that it takes on AWS.
"""

from __future__ import annotations

import time
from typing import Any

from core.errors import UserError, one_line
from core.models import Invocation
from core.serverless import MAX_PAYLOAD_BYTES

SAID_LIMIT = 200  # what the container said, quoted within a sentence that stays under 300 characters


class EndpointError(UserError):
    """The endpoint answered with an error, or did not answer; the message is the endpoint's sentence."""


# How long an invocation waits for its answer unless the user says otherwise (`invoke --timeout`); SageMaker
# gives a serverless endpoint's model 60 s too.
DEFAULT_INVOKE_TIMEOUT = 60.0


def local_runtime_client(url: str, timeout: float = DEFAULT_INVOKE_TIMEOUT) -> Any:
    import boto3
    from botocore.config import Config

    # Dummy credentials and a fixed region: nothing here reaches AWS, and none may be looked up. One attempt
    # in all (botocore's max_attempts counts retries): a hung local server costs one timeout, not two.
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=timeout),
    )


def _error_message(endpoint_name: str, error: Any) -> str:
    response = getattr(error, "response", {}) or {}
    details = response.get("Error", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if details.get("Code") == "ModelError":
        # The container answered with an error; SageMaker Runtime passes its status and body along.
        original = response.get("OriginalStatusCode")
        said = one_line(response.get("OriginalMessage") or details.get("Message") or "", SAID_LIMIT)
        if isinstance(original, int) and original >= 500:
            return f"endpoint {endpoint_name}'s model failed on the request ({original}): {said}"
        return f"endpoint {endpoint_name} refused the rows ({original or status}): {said}"
    message = details.get("Message") or ""
    if not message:
        # A plain-text body (the local server's sentence) is not parsed by botocore's JSON error parser.
        body = response.get("Body") or b""
        message = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    shown = one_line(message, SAID_LIMIT) or details.get("Code", "error")
    return f"endpoint {endpoint_name} refused the request: {shown} (HTTP {status or details.get('Code')})"


def invoke(client: Any, endpoint_name: str, body: bytes, content_type: str = "text/csv") -> Invocation:
    from botocore.exceptions import BotoCoreError, ClientError

    if len(body) > MAX_PAYLOAD_BYTES:
        raise EndpointError(
            f"the request is {len(body):,} bytes, over SageMaker's 6 MB limit; send fewer rows per request"
        )
    started = time.perf_counter()
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name, ContentType=content_type, Accept=content_type, Body=body
        )
        answer = response["Body"].read()
    except ClientError as exc:
        error = EndpointError(_error_message(endpoint_name, exc))
        error.code = exc.response.get("Error", {}).get("Code") or None
        raise error from None
    except BotoCoreError as exc:
        raise EndpointError(
            f"endpoint {endpoint_name} did not answer ({one_line(str(exc), SAID_LIMIT)}); "
            "`housing-tui endpoints` shows its status"
        ) from None
    latency = (time.perf_counter() - started) * 1000
    invocation = Invocation(
        body=answer,
        content_type=response.get("ContentType") or content_type,
        latency_ms=latency,
        endpoint=endpoint_name,
    )
    if content_type == "text/csv":
        invocation.predictions()  # an answer that is not one number per line is this call's error, said now
    return invocation
