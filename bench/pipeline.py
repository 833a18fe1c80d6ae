"""Time `housing-tui run --wait` end to end on the bundled data, and each step within it; report its model.

Each run is the lesson's default run (threshold 0.6, test size 0.2, split seed 42), which registers a version;
the metrics of that version's evaluation.json are printed with the timings.

Usage: .venv/bin/python bench/pipeline.py [--runs 3] [--write]
--write replaces the pipeline section of bench/RESULTS.md with the figures printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section

BENCH = Path(__file__).resolve().parent
STEPS = ("Preprocess", "Train", "Evaluate", "CheckR2", "Register")
# What each container script imports before it does any work: the floor a step cannot go below.
IMPORTS = (
    "import pandas, joblib, sklearn.compose, sklearn.linear_model, sklearn.pipeline, sklearn.preprocessing, "
    "sklearn.metrics"
)


def cli() -> str:
    found = shutil.which("housing-tui", path=str(Path(sys.executable).parent))
    if not found:
        sys.exit("housing-tui is not installed in this interpreter's environment; run `make test` first")
    return found


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def one_run(home: Path) -> tuple[dict[str, float], dict]:
    started = time.perf_counter()
    result = subprocess.run(
        [cli(), "--home", str(home), "run", "--wait", "--json"], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - started
    report = json.loads(result.stdout)
    figures = {"wall": wall}
    for step in report["HousingTui"]["PipelineExecutionSteps"]:
        figures[step["StepName"]] = parse_time(step["EndTime"]) - parse_time(step["StartTime"])
    versions = subprocess.run(
        [cli(), "--home", str(home), "versions", "--json"], capture_output=True, text=True, check=True
    )
    listed = json.loads(versions.stdout)["ModelPackageSummaryList"]
    if not listed:
        sys.exit("the default run registered no version: the model no longer passes the 0.6 gate")
    return figures, listed[0]["HousingTui"]["EvaluationReport"]


def import_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    floors = [import_floor() for _ in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        measured = [one_run(Path(tmp) / f"home{i}") for i in range(args.runs)]
    runs = [figures for figures, _ in measured]
    metrics = measured[0][1]["regression_metrics"]
    if any(report["regression_metrics"] != metrics for _, report in measured):
        sys.exit("runs of the same data and split gave different metrics")
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    floor = statistics.median(floors)

    lines = [
        f"Command: `.venv/bin/python bench/pipeline.py --runs {args.runs} --write` "
        f"({dt.date.today()}, {platform.python_version()}, {os.cpu_count()} cores)",
        "",
        "| figure | median (s) | runs (s) |",
        "| --- | --- | --- |",
        f"| `housing-tui run --wait`, wall | {median['wall']:.2f} | "
        + ", ".join(f"{r['wall']:.2f}" for r in runs)
        + " |",
    ]
    for step in STEPS:
        if step in median:
            lines.append(f"| step {step} | {median[step]:.2f} | " + ", ".join(f"{r[step]:.2f}" for r in runs) + " |")
    lines.append(
        f"| Python start + a script's imports (floor per script step) | {floor:.2f} | "
        + ", ".join(f"{f:.2f}" for f in floors)
        + " |"
    )
    script_steps = sum(median[s] for s in ("Preprocess", "Train", "Evaluate"))
    lines += [
        "",
        "The model each run registered (the lesson's default run: threshold 0.6, test size 0.2, split seed 42; "
        "every run gave the same figures):",
        "",
        "| r2 | mse | rmse | mae | n_train | n_test |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {metrics['r2_score']:.6f} | {metrics['mse']:.6f} | {metrics['rmse']:.6f} | {metrics['mae']:.6f} | "
        f"{measured[0][1]['n_train']} | {measured[0][1]['n_test']} |",
    ]
    lines += [
        "",
        f"Goal: under 8 s wall. The three script steps take {script_steps:.2f} s, of which "
        f"{3 * floor:.2f} s ({100 * 3 * floor / script_steps:.0f}%) is Python start-up and imports.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("pipeline", "Pipeline run, local backend", text)


if __name__ == "__main__":
    main()
