"""Small S3 helpers: URIs, uploads of local inputs, JSON documents."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core.errors import UserError


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise UserError(f"{uri!r} is not an s3:// URI")
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
    bucket, key = split_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def read_text(s3: Any, uri: str, limit: int | None = None) -> str:
    bucket, key = split_uri(uri)
    extra = {"Range": f"bytes=0-{limit - 1}"} if limit else {}
    return s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read().decode()
