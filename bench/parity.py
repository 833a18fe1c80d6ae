"""Time the container-parity tier: building .venv-container (fresh and cached) and running tests/parity.

Usage: .venv/bin/python bench/parity.py [--fresh] [--write]
--fresh removes .venv-container first, so the build from PyPI is timed too (about a minute);
--write replaces the parity section of bench/RESULTS.md with the figures printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-container"


def timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="rebuild .venv-container from scratch first")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    build = ["bash", "tools/container_venv.sh"]
    fresh = None
    if args.fresh:
        shutil.rmtree(VENV, ignore_errors=True)
        fresh, _ = timed(build)
    cached, _ = timed(build)
    tests, output = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/parity"])
    summary = output.strip().splitlines()[-1]

    lines = [
        f"Command: `.venv/bin/python bench/parity.py{' --fresh' if args.fresh else ''} --write` "
        f"({dt.date.today()}, {platform.python_version()}, {os.cpu_count()} cores)",
        "",
        "| figure | seconds |",
        "| --- | --- |",
    ]
    if fresh is not None:
        lines.append(f"| build .venv-container from PyPI (Python 3.9, the 1.2-1 image's pins) | {fresh:.1f} |")
    lines += [
        f"| `make container-venv` when it is built (the cache check) | {cached:.2f} |",
        f"| `pytest tests/parity` ({summary}) | {tests:.1f} |",
        "",
        "The tier runs the three container scripts in the image's Python and in ours on the bundled data (figures "
        "equal to 1e-6, splits equal value for value), then serves the model trained there through the real "
        "sagemaker_containers Transformer and Flask Worker (1 row, 1,000 rows, both JSON forms, bad rows) and "
        "compares every answer with the local handler chain's.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("parity", "Container parity tier", text)


if __name__ == "__main__":
    main()
