"""`housing-tui doctor`: one line per check, with a fix when it fails, for either backend."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import UserError
from core.inputs import BUNDLED_DATA
from core.settings import Settings

BUNDLED_SHA256 = "dd226f82db6264ad85a0a90c04c1bd4afe0374cd273f5599a838f3d79f953ea9"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail" | "skip" (needs an earlier check that failed)
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"Name": self.name, "Status": self.status, "Detail": self.detail, "Fix": self.fix}


def run_doctor(
    settings: Settings, create_group: bool = False, confirm: Callable[[str], bool] | None = None
) -> list[Check]:
    """Checks start from the settings, not from a working backend: a bad config is a failed check too."""
    if settings.backend == "sagemaker":
        from core.backends import sagemaker_settings
        from core.sagemaker.doctor import fallback_settings, run_checks

        ask = (lambda group: True) if create_group else confirm
        try:
            values = sagemaker_settings(settings)
        except UserError as exc:
            return run_checks(fallback_settings(settings.sagemaker), None, ask, config_error=str(exc))
        return run_checks(values, None, ask)
    from core.backends import open_backend
    from core.local.store import StateError

    try:
        backend = open_backend(settings)
    except StateError as exc:
        # A database that cannot be opened is this check's finding, not the end of the doctor.
        return [Check("database", "fail", str(exc), "restore state.db.bak, or move state.db aside"), _bundled_data()]
    return local_checks(backend)


def _bundled_data() -> Check:
    digest = hashlib.sha256(BUNDLED_DATA.read_bytes()).hexdigest()
    if digest == BUNDLED_SHA256:
        return Check("bundled data", "ok", f"{BUNDLED_DATA.name} sha256 {digest[:12]}...")
    return Check("bundled data", "fail", f"{BUNDLED_DATA} has sha256 {digest}", "reinstall housing-tui")


def local_checks(backend: Any) -> list[Check]:
    from core.local.store import StateError

    checks = [Check("home", "ok", str(backend.home))]
    try:
        verdict = backend.store.quick_check()
    except StateError as exc:
        verdict = str(exc)
    if verdict == "ok":
        checks.append(Check("database", "ok", f"{backend.store.path} passes SQLite's quick_check"))
    else:
        checks.append(
            Check(
                "database", "fail", f"{backend.store.path}: {verdict}", "restore state.db.bak, or move state.db aside"
            )
        )
        return [*checks, _bundled_data()]
    checks.append(_bundled_data())
    return checks + _endpoint_checks(backend)


def _endpoint_checks(backend: Any) -> list[Check]:
    checks: list[Check] = []
    endpoints = backend.list_endpoints()
    failed = [e.name for e in endpoints if str(e.status) == "Failed"]
    if failed:
        checks.append(Check("endpoints", "warn", f"Failed: {', '.join(failed)}", "deploy again or delete-endpoint"))
    else:
        checks.append(Check("endpoints", "ok", f"{len(endpoints)} endpoint(s), none Failed"))
    return checks
