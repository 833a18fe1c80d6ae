"""core never imports the UI, and opening the CLI stays cheap."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_textual() -> None:
    code = (
        "import sys, pkgutil, importlib, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich', 'tui')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_cli_starts_without_scikit_learn_or_pandas() -> None:
    code = "import sys, tui.cli; print(sorted({n.split('.')[0] for n in sys.modules} & {'sklearn', 'pandas'}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
