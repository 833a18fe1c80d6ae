"""Small S3 helpers: URIs, uploads of local inputs, JSON documents."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import UserError, one_line

MAX_JSON_BYTES = 1 << 20  # evaluation.json is under 1 KB: a document this big is not ours


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise UserError(f"{one_line(uri, 100)!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def input_uri(path: Path, bucket: str, prefix: str) -> str:
    """Where a local input goes: the key carries its sha256, so the same content always has the same URI."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"s3://{bucket}/{join_key(prefix, 'input', digest[:16], path.name)}"


def upload_input(s3: Any, path: Path, bucket: str, prefix: str) -> tuple[str, bool]:
    """Upload a local input once per content; the URI, and whether this call created the object."""
    uri = input_uri(path, bucket, prefix)
    _, key = split_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return uri, False
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise  # access denied and the like: the caller's aws_errors says which
    s3.upload_file(str(path), bucket, key)
    return uri, True


def delete_objects(s3: Any, uris: list[str]) -> None:
    """Best effort: remove objects this process created for a request that then failed."""
    from botocore.exceptions import BotoCoreError, ClientError

    for uri in uris:
        bucket, key = split_uri(uri)
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError):
            continue  # the request already failed with its own sentence; this is only cleanup


def bucket_region(s3: Any, bucket: str) -> str | None:
    """The region a bucket lives in, from HeadBucket (S3 answers it even for a bucket of another region)."""
    from botocore.exceptions import ClientError

    try:
        response = s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if exc.response.get("Error", {}).get("Code") in ("301", "PermanentRedirect") and headers:
            return headers.get("x-amz-bucket-region")
        raise
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return response.get("BucketRegion") or headers.get("x-amz-bucket-region")


def read_json(s3: Any, uri: str) -> dict[str, Any]:
    """A JSON object we wrote (evaluation.json); anything else in its place is a UserError."""
    bucket, key = split_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key).get("Body")
    data = body.read(MAX_JSON_BYTES + 1) if body is not None else b""
    if len(data) > MAX_JSON_BYTES:
        raise UserError(f"{one_line(uri, 100)} is over {MAX_JSON_BYTES:,} bytes, so it is not our report; run again")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than Python parses
        document = None
    if not isinstance(document, dict):
        raise UserError(f"{one_line(uri, 100)} is not a JSON object, so it is not our report; run again")
    return document


def read_text(s3: Any, uri: str, limit: int | None = None) -> str:
    bucket, key = split_uri(uri)
    extra = {"Range": f"bytes=0-{limit - 1}"} if limit else {}
    body = s3.get_object(Bucket=bucket, Key=key, **extra).get("Body")
    # Bytes that are not UTF-8 become U+FFFD: the caller says which line it cannot read.
    return body.read().decode(errors="replace") if body is not None else ""


class NewObjects:
    """Records the S3 objects that clients of a boto3 session create while `watching`, but only those
    that did not exist before (content-addressed code the SDK uploads again belongs to earlier pipelines)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.created: list[str] = []

    def _before_put(self, params: dict[str, Any], **_: Any) -> None:
        bucket, key = params.get("Bucket"), params.get("Key")
        if not bucket or not key:
            return
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
        except self.s3.exceptions.ClientError:
            self.created.append(f"s3://{bucket}/{key}")

    @contextmanager
    def watching(self, session: Any) -> Iterator[NewObjects]:
        # Registered on the session, so the clients the SDK makes from it while watching report too.
        events = session.events
        names = ("before-parameter-build.s3.PutObject", "before-parameter-build.s3.CreateMultipartUpload")
        for name in names:
            events.register(name, self._before_put)
        try:
            yield self
        finally:
            for name in names:
                events.unregister(name, self._before_put)
