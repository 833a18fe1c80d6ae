"""Choosing a backend from settings."""

from __future__ import annotations

from core.backend import Backend
from core.errors import UserError
from core.settings import Settings


def open_backend(settings: Settings) -> Backend:
    if settings.backend == "local":
        from core.local.backend import LocalBackend

        return LocalBackend(settings.resolved_home(), settings.group)
    raise UserError(f"backend {settings.backend!r} is not available yet; use --backend local")
