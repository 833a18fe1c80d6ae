"""`housing-tui doctor`: one line per check, with a fix when it fails, for either backend."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from core.backend import Backend
from core.inputs import BUNDLED_DATA
from core.sagemaker.doctor import Check

BUNDLED_SHA256 = "dd226f82db6264ad85a0a90c04c1bd4afe0374cd273f5599a838f3d79f953ea9"


def run_doctor(
    backend: Backend, create_group: bool = False, confirm: Callable[[str], bool] | None = None
) -> list[Check]:
    if backend.name == "sagemaker":
        from core.sagemaker.doctor import run_checks

        sagemaker: Any = backend
        clients = sagemaker.__dict__.get("clients")  # only when a test supplied them
        return run_checks(sagemaker.settings, clients, (lambda group: True) if create_group else confirm)
    return local_checks(backend)


def local_checks(backend: Any) -> list[Check]:
    checks = [Check("home", "ok", str(backend.home))]
    digest = hashlib.sha256(BUNDLED_DATA.read_bytes()).hexdigest()
    if digest == BUNDLED_SHA256:
        checks.append(Check("bundled data", "ok", f"{BUNDLED_DATA.name} sha256 {digest[:12]}..."))
    else:
        checks.append(Check("bundled data", "fail", f"{BUNDLED_DATA} has sha256 {digest}", "reinstall housing-tui"))
    failed = [e for e in backend.list_endpoints() if str(e.status) == "Failed"]
    if failed:
        names = ", ".join(e.name for e in failed)
        checks.append(Check("endpoints", "warn", f"Failed: {names}", "deploy again or delete-endpoint"))
    else:
        checks.append(Check("endpoints", "ok", f"{len(backend.list_endpoints())} endpoint(s), none Failed"))
    return checks
