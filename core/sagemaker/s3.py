"""Small S3 helpers: URIs, uploads of local inputs, JSON documents."""

from __future__ import annotations

import hashlib
import json
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


def upload_input(s3: Any, path: Path, bucket: str, prefix: str) -> str:
    """Upload a local input once per content: the key carries its sha256, so a re-run reuses it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    key = join_key(prefix, "input", digest[:16], path.name)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:  # not there yet (404), so upload it
        s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


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
