"""Where the code that runs in SageMaker's containers lives: the three step scripts and the entry point.

Both backends ship these files as they are: the local runner runs the scripts and repacks the entry point
into the registered model.tar.gz, the SageMaker definition uploads them.
"""

from __future__ import annotations

from pathlib import Path

from core.spec import ENTRY_POINT_FILE

REPO = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = REPO / "container_scripts"
ENTRY_POINT = REPO / ENTRY_POINT_FILE
