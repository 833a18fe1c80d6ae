"""Opening the application loads Textual and the core, not scikit-learn, pandas, boto3 or the SageMaker SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PROBE = """
import sys
HEAVY = {"sklearn", "pandas", "sagemaker", "boto3", "botocore"}

def heavy():
    return sorted({name.split(".")[0] for name in sys.modules} & HEAVY)

import tui.app
print("import", heavy())

from core.local.backend import LocalBackend
from core.settings import Settings

app = tui.app.HousingApp(LocalBackend(sys.argv[1]), Settings())

async def first_screen(pilot):
    while not getattr(app.screen, "loaded", False):
        await pilot.pause(0.05)
    await pilot.press("2")
    while not getattr(app.screen, "loaded", False):
        await pilot.pause(0.05)
    app.exit()

app.run(headless=True, size=(80, 24), auto_pilot=first_screen)
print("drawn", heavy())
"""


def test_the_app_opens_without_heavy_modules(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    )
    assert result.stdout.split("\n")[:2] == ["import []", "drawn []"], result.stdout + result.stderr
