"""The local model registry: groups, numbered versions, approval, in the local store."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time

from core import arns, spec
from core.errors import NotFound
from core.local.store import Store
from core.models import ApprovalStatus, Metrics, ModelVersion


def _version(row: sqlite3.Row) -> ModelVersion:
    evaluation = json.loads(row["evaluation"]) if row["evaluation"] else None
    return ModelVersion(
        arn=row["arn"],
        group=row["group_name"],
        version=row["version"],
        approval_status=ApprovalStatus(row["approval_status"]),
        created=row["created"],
        last_modified=row["last_modified"],
        metrics=Metrics.from_report(evaluation) if evaluation else None,
        approval_description=row["approval_description"],
        model_data_url=row["model_data_url"],
        model_sha256=row["model_sha256"],
        execution_arn=row["execution_arn"],
        parameters=json.loads(row["parameters"]),
    )


class LocalRegistry:
    """One model package group's versions. Version numbers come from the database, never from memory."""

    def __init__(self, store: Store, group: str = spec.DEFAULT_GROUP) -> None:
        self.store = store
        self.group = spec.validate_name("model package group", group)

    def register(
        self,
        model_data_url: str,
        model_sha256: str,
        evaluation: dict,
        execution_arn: str | None,
        parameters: dict[str, str],
        approval_status: ApprovalStatus,
        db: sqlite3.Connection | None = None,
    ) -> ModelVersion:
        """Add the next version. The IMMEDIATE transaction holds the write lock from reading the highest
        version to inserting the next, so two runs registering at once get consecutive numbers. With `db`,
        it joins the caller's open transaction instead."""
        now = time.time()
        with self.store.transaction() if db is None else contextlib.nullcontext(db) as db:
            db.execute(
                "INSERT OR IGNORE INTO model_package_groups (name, arn, created) VALUES (?, ?, ?)",
                (self.group, arns.model_package_group_arn(self.group), now),
            )
            (highest,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM model_packages WHERE group_name = ?", (self.group,)
            ).fetchone()
            version = highest + 1
            arn = arns.model_package_arn(self.group, version)
            db.execute(
                "INSERT INTO model_packages (arn, group_name, version, approval_status, created, last_modified,"
                " evaluation, model_data_url, model_sha256, execution_arn, parameters)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    arn,
                    self.group,
                    version,
                    str(approval_status),
                    now,
                    now,
                    json.dumps(evaluation),
                    model_data_url,
                    model_sha256,
                    execution_arn,
                    json.dumps(parameters),
                ),
            )
            return _version(db.execute("SELECT * FROM model_packages WHERE arn = ?", (arn,)).fetchone())

    def versions(self, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        """Newest first, as ListModelPackages with SortBy=CreationTime, SortOrder=Descending."""
        query = "SELECT * FROM model_packages WHERE group_name = ?"
        args: list[object] = [self.group]
        if status is not None:
            query += " AND approval_status = ?"
            args.append(str(status))
        with self.store.connect() as db:
            rows = db.execute(query + " ORDER BY version DESC", args).fetchall()
        return [_version(r) for r in rows]

    def get(self, arn: str) -> ModelVersion:
        self._check_group(arn)
        with self.store.connect() as db:
            row = db.execute("SELECT * FROM model_packages WHERE arn = ?", (arn.strip(),)).fetchone()
        if row is None:
            raise NotFound(f"no model package {arn} in group {self.group}; `housing-tui versions` lists them")
        return _version(row)

    def champion(self) -> ModelVersion | None:
        """The newest Approved version, which a run must beat when the champion gate is on."""
        approved = self.versions(ApprovalStatus.APPROVED)
        return approved[0] if approved else None

    def set_approval(self, arn: str, status: ApprovalStatus, description: str | None) -> ModelVersion:
        self._check_group(arn)
        spec.validate_approval_description(description)
        with self.store.transaction() as db:
            updated = db.execute(
                "UPDATE model_packages SET approval_status = ?, approval_description = ?, last_modified = ?"
                " WHERE arn = ?",
                (str(status), description, time.time(), arn.strip()),
            ).rowcount
            if not updated:
                raise NotFound(f"no model package {arn} in group {self.group}; `housing-tui versions` lists them")
            return _version(db.execute("SELECT * FROM model_packages WHERE arn = ?", (arn.strip(),)).fetchone())

    def _check_group(self, arn: str) -> None:
        arns.check_model_package(arn, self.group, local=True)
