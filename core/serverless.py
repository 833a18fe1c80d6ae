"""SageMaker serverless inference settings and their limits; both backends check them the same way."""

from __future__ import annotations

from core import spec
from core.errors import UserError
from core.models import ApprovalStatus, ModelVersion

MEMORY_CHOICES = (1024, 2048, 3072, 4096, 5120, 6144)
DEFAULT_MEMORY = 2048
MAX_CONCURRENCY_RANGE = (1, 200)
DEFAULT_MAX_CONCURRENCY = 5
DEFAULT_ENDPOINT = "housing-prod"
# SageMaker real-time inference refuses request payloads over 6 MB.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def validate_memory(memory_mb: int) -> int:
    if memory_mb not in MEMORY_CHOICES:
        raise UserError(
            f"memory {memory_mb} MB is not a serverless size; use one of {', '.join(map(str, MEMORY_CHOICES))}"
        )
    return memory_mb


def validate_max_concurrency(value: int) -> int:
    low, high = MAX_CONCURRENCY_RANGE
    if not low <= value <= high:
        raise UserError(f"max concurrency {value} is outside {low}..{high}, SageMaker serverless' range")
    return value


def validate_endpoint_name(name: str) -> str:
    return spec.validate_name("endpoint name", name)


def check_deploy(version: ModelVersion, name: str, memory_mb: int, max_concurrency: int, force: bool) -> None:
    """What both backends refuse before creating anything: bad settings, or a version not Approved."""
    validate_endpoint_name(name)
    validate_memory(memory_mb)
    validate_max_concurrency(max_concurrency)
    if version.approval_status is not ApprovalStatus.APPROVED and not force:
        raise UserError(
            f"version {version.version} is {version.approval_status}, and only Approved versions deploy; "
            f"approve it first (housing-tui approve {version.arn}) or pass --force"
        )
