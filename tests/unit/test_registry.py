"""The local registry on the real SQLite store: numbering, approval, errors."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from core.errors import NotFound, UserError
from core.local.registry import LocalRegistry
from core.local.store import Store
from core.models import ApprovalStatus


def register(registry: LocalRegistry, r2: float = 0.6, status: ApprovalStatus = ApprovalStatus.PENDING):
    evaluation = {
        "regression_metrics": {"r2_score": r2, "mse": 0.5, "rmse": 0.7, "mae": 0.5},
        "n_train": 80,
        "n_test": 20,
    }
    return registry.register("file:///m.tar.gz", "ab" * 32, evaluation, None, {"R2Threshold": "0.5"}, status)


def _register_many(home: str, count: int) -> None:
    registry = LocalRegistry(Store(Path(home)))
    for _ in range(count):
        register(registry)


def test_versions_are_numbered_per_group_with_sagemaker_arns(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first, second = register(LocalRegistry(store)), register(LocalRegistry(store))
    other = register(LocalRegistry(store, "Other-Group"))
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert second.arn == "arn:aws:sagemaker:local:000000000000:model-package/californiahousing/2"
    assert other.arn.endswith(":model-package/other-group/1")
    assert [v.version for v in LocalRegistry(store).versions()] == [2, 1]


def test_concurrent_registration_from_processes_leaves_no_gaps_or_duplicates(tmp_path: Path) -> None:
    Store(tmp_path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_register_many, args=(str(tmp_path), 10)) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join(timeout=120)
            assert worker.exitcode == 0
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join()
    versions = sorted(v.version for v in LocalRegistry(Store(tmp_path)).versions())
    assert versions == list(range(1, 41))


def test_approval_keeps_the_description_and_moves_the_champion(tmp_path: Path) -> None:
    registry = LocalRegistry(Store(tmp_path))
    v1, v2, _v3 = register(registry, 0.61), register(registry, 0.62), register(registry, 0.63)
    assert registry.champion() is None
    registry.set_approval(v1.arn, ApprovalStatus.APPROVED, "r2 0.61, first")
    registry.set_approval(v2.arn, ApprovalStatus.APPROVED, None)
    rejected = registry.set_approval(_v3.arn, ApprovalStatus.REJECTED, "drifted")
    assert rejected.approval_status is ApprovalStatus.REJECTED and rejected.approval_description == "drifted"
    assert registry.get(v1.arn).approval_description == "r2 0.61, first"
    champion = registry.champion()
    assert champion is not None and champion.version == 2 and champion.metrics.r2 == 0.62
    assert [v.version for v in registry.versions(ApprovalStatus.APPROVED)] == [2, 1]


def test_unknown_and_foreign_arns_are_clear_errors(tmp_path: Path) -> None:
    registry = LocalRegistry(Store(tmp_path))
    register(registry)
    with pytest.raises(NotFound, match=r"no model package .*/7 in group CaliforniaHousing"):
        registry.set_approval(
            "arn:aws:sagemaker:local:000000000000:model-package/californiahousing/7", ApprovalStatus.APPROVED, None
        )
    with pytest.raises(UserError, match="belongs to group 'othergroup'"):
        registry.set_approval(
            "arn:aws:sagemaker:local:000000000000:model-package/othergroup/1", ApprovalStatus.APPROVED, None
        )
    with pytest.raises(UserError, match="is not a model package ARN"):
        registry.get("californiahousing/1")
    with pytest.raises(UserError, match="use --backend sagemaker"):
        registry.get("arn:aws:sagemaker:us-east-1:123456789012:model-package/californiahousing/1")
    assert registry.get(registry.versions()[0].arn).approval_status is ApprovalStatus.PENDING


def test_a_group_name_outside_sagemakers_rule_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="name rule"):
        LocalRegistry(Store(tmp_path), "bad_name")


def test_the_database_uses_write_ahead_logging(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.connect() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("x" * 1025, "the approval description has 1,025 characters; SageMaker keeps at most 1,024"),
        ("x" * 131_072, "has 131,072 characters"),
        ("two\nlines", "has a line break; SageMaker takes one line"),
    ],
)
def test_approval_descriptions_follow_sagemakers_rule(tmp_path: Path, description: str, message: str) -> None:
    registry = LocalRegistry(Store(tmp_path))
    version = register(registry)
    registry.set_approval(version.arn, ApprovalStatus.APPROVED, "a" * 1024)
    with pytest.raises(UserError, match=message):
        registry.set_approval(version.arn, ApprovalStatus.REJECTED, description)
    kept = registry.get(version.arn)  # nothing of the refused change was written
    assert kept.approval_status is ApprovalStatus.APPROVED and kept.approval_description == "a" * 1024
