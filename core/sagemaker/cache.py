"""AWS records that no longer change, kept on disk so a new process does not ask for them again.

One small JSON file per record, named after the resource's ARN: `<root>/<account>/<region>/<resource path>.json`
(e.g. `.../pipeline/<name>/execution/<id>.json`), so records of different accounts, regions and pipelines never
mix, and a process writes only the records it learned (several terminals never overwrite each other's work).
Each file carries FORMAT and the ARN it is about; a file of another format, of another ARN, or damaged in any
way is ignored (the record is fetched again and rewritten). Files are written whole (a temporary file, then
os.replace), readable by their owner only.

Callers decide what may be kept: an execution once it has ended, a model package description together with
what the listing shows of it (so a change is seen), never anything still running.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when what a record holds changes: older files are then ignored
_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<resource>.+)$")
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$")
_TIME_TAG = "__datetime__"


def _encode(value: Any) -> Any:
    # boto3 answers carry datetimes; they come back as the same aware datetimes.
    if isinstance(value, dt.datetime):
        return {_TIME_TAG: value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not kept in the cache")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _TIME_TAG in obj:
        return dt.datetime.fromisoformat(obj[_TIME_TAG])
    return obj


class RecordCache:
    """Records about SageMaker resources, one file per ARN under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, arn: str) -> Path | None:
        """Where the record of `arn` lives; None for an ARN whose parts could not make a safe path."""
        match = _ARN.match(arn)
        if match is None:
            return None
        parts = [match["account"], match["region"], *match["resource"].split("/")]
        if not all(_SAFE_PART.match(p) and p not in (".", "..") for p in parts):
            return None
        return self.root.joinpath(*parts[:-1], parts[-1] + ".json")

    def load(self, arn: str) -> dict[str, Any] | None:
        path = self.path(arn)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(), object_hook=_decode)
        except (OSError, ValueError):  # missing, unreadable, truncated or not JSON: fetch it again
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("arn") != arn:
            return None
        record = data.get("record")
        return record if isinstance(record, dict) else None

    def save(self, arn: str, record: dict[str, Any]) -> None:
        """Best effort: a record that cannot be written is simply fetched again next time."""
        path = self.path(arn)
        if path is None:
            return
        try:
            text = json.dumps({"format": FORMAT, "arn": arn, "record": record}, default=_encode)
        except (TypeError, ValueError):
            return
        partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
            os.replace(partial, path)  # readers see the whole old file or the whole new one
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)

    def forget(self, arn: str) -> None:
        path = self.path(arn)
        if path is not None:
            with contextlib.suppress(OSError):  # best effort, as save()
                path.unlink(missing_ok=True)


class KeptVersions:
    """What a new process needs of a model package group's versions, in one record for the whole group.

    A listing of 1,000 versions would otherwise open 1,000 files; the group's record is read once per process
    and written once per listing that described anything. Entries are whatever the registry keeps per version.
    """

    def __init__(self, records: RecordCache) -> None:
        self.records = records
        self._group_arn: str | None = None
        self._entries: dict[str, Any] | None = None
        self._changed = False
        self._lock = threading.Lock()  # two screens' workers may list versions at once

    def get(self, package_arn: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._load(package_arn).get(package_arn)
        return entry if isinstance(entry, dict) else None

    def put(self, package_arn: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._load(package_arn)[package_arn] = entry
            self._changed = True

    def drop(self, package_arn: str) -> None:
        with self._lock:
            self._changed |= self._load(package_arn).pop(package_arn, None) is not None

    def save(self) -> None:
        with self._lock:
            if not self._changed or self._group_arn is None or self._entries is None:
                return
            entries, self._changed = dict(self._entries), False
        self.records.save(self._group_arn, {"versions": entries})

    def _load(self, package_arn: str) -> dict[str, Any]:
        if self._entries is None:
            # arn:...:model-package/<group>/<version> belongs to arn:...:model-package-group/<group>
            self._group_arn = package_arn.rsplit("/", 1)[0].replace(":model-package/", ":model-package-group/", 1)
            kept = self.records.load(self._group_arn)
            versions = kept.get("versions") if kept else None
            self._entries = versions if isinstance(versions, dict) else {}
        return self._entries
