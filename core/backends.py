"""Choosing a backend from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.backend import Backend
from core.errors import UserError
from core.settings import Settings

if TYPE_CHECKING:
    from core.sagemaker.config import SageMakerSettings


def open_backend(settings: Settings) -> Backend:
    if settings.backend == "local":
        from core.local.backend import LocalBackend

        return LocalBackend(settings.resolved_home(), settings.group)
    if settings.backend == "sagemaker":
        from core.sagemaker.backend import SageMakerBackend

        return SageMakerBackend(sagemaker_settings(settings), settings.resolved_home() / "cache" / "sagemaker")
    raise UserError(f"backend {settings.backend!r} is not one of local, sagemaker")


def sagemaker_settings(settings: Settings) -> SageMakerSettings:
    """[sagemaker] values over the defaults; the group follows the top-level setting unless set there."""
    from core.sagemaker.config import SageMakerSettings

    values: dict[str, object] = {"model_package_group": settings.group, **settings.sagemaker}
    return SageMakerSettings().with_values(values, "sagemaker settings")
