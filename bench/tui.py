"""Time the terminal application: process start to the first screen drawn, and a registry of 1,000 versions.

Usage: .venv/bin/python bench/tui.py [--repeat 5] [--versions 1000] [--write]
--write replaces this benchmark's section of bench/RESULTS.md with the figures printed.

1. Startup. `housing-tui` (the console script, with an empty temporary home and config) is started in a real
   pseudo-terminal of 80x24, the way a user over SSH starts it. The clock starts just before the process is
   spawned; "first frame" is when the terminal output contains the whole first screen (the navigation bar and
   the footer's keys), "runs listed" when it also shows what the first poll of the backend found. Then `q`
   ends the application. Median of --repeat starts, after one warm-up start that is not counted.
2. Registry. A home is filled with --versions versions through core.local.registry.LocalRegistry.register.
   In-process (App.run_test, 120x40), the clock starts when the registry screen is switched to; it measures
   the backend call in its thread worker, the table population when the typed message arrives, and the first
   refresh after it (call_after_refresh), i.e. until those rows are on screen. The same home is then opened
   in an 80x24 pty: from the key `2` until the table's title says it holds them all, then page-down and
   threshold keystrokes (each re-marks every row) from the key to the last byte of the repaint it causes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fcntl
import hashlib
import os
import platform
import pty
import select
import statistics
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

sys.path.insert(0, str(REPO))

FIRST_FRAME = (b"1 Runs", b"Registry", b"Endpoints", b"Help")  # the navigation bar and the footer
RUNS_LISTED = b"No runs yet"  # what an empty home's first poll draws


def console_script() -> str:
    path = Path(sys.executable).parent / "housing-tui"
    if not path.exists():
        sys.exit("housing-tui is not installed in this interpreter's environment; run `make test` first")
    return str(path)


class Terminal:
    """`housing-tui` in a pseudo-terminal of the given size, as a person over SSH runs it."""

    def __init__(self, home: Path, config: Path, size: tuple[int, int] = (80, 24)) -> None:
        env = dict(os.environ, HOUSING_TUI_CONFIG=str(config), TERM="xterm-256color")
        env.pop("HOUSING_TUI_HOME", None)
        self.started = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the application, with the pty as its terminal
            os.execve(console_script(), [console_script(), "--home", str(home)], env)
        columns, rows = size
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.output = b""

    def _read(self, wait: float) -> float | None:
        """Read what is there within `wait` seconds; the time it arrived, or None."""
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return None
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            return None
        self.output += chunk
        return time.perf_counter() if chunk else None

    def until(self, *markers: bytes, timeout: float = 20.0) -> float:
        """Seconds since spawning until every marker has appeared in the output."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(marker in self.output for marker in markers):
                return time.perf_counter() - self.started
            self._read(0.005)
        raise RuntimeError(f"{markers} never appeared; output ends with {self.output[-1500:]!r}")

    def quiet(self, gap: float = 0.15) -> None:
        while self._read(gap) is not None:
            pass

    def key(self, data: bytes, gap: float = 0.1, timeout: float = 5.0) -> tuple[float, float]:
        """Send a key; seconds until the first and the last byte of the repaint it caused (the output then
        silent for `gap` seconds)."""
        self.quiet()
        sent = time.perf_counter()
        os.write(self.fd, data)
        first = last = None
        deadline = sent + timeout
        while time.perf_counter() < deadline:
            arrived = self._read(gap)
            if arrived is None:
                if last is not None:
                    break
                continue
            first = first or arrived
            last = arrived
        if first is None or last is None:
            raise RuntimeError(f"no repaint after {data!r}")
        return first - sent, last - sent

    def close(self) -> None:
        try:
            os.write(self.fd, b"q")
            end = time.perf_counter() + 10
            while time.perf_counter() < end and not os.waitpid(self.pid, os.WNOHANG)[0]:
                self._read(0.05)
        except (OSError, ChildProcessError):
            pass
        finally:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            os.close(self.fd)


def start_once(home: Path, config: Path) -> tuple[float, float]:
    """Seconds from spawn to the first full frame, and to the first poll's result, in an 80x24 pty."""
    terminal = Terminal(home, config)
    try:
        return terminal.until(*FIRST_FRAME), terminal.until(*FIRST_FRAME, RUNS_LISTED)
    finally:
        terminal.close()


def bench_startup(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        start_once(base / "warm", base / "config.toml")  # compiles bytecode, fills the OS cache
        frames, listed = [], []
        for i in range(repeat):
            frame, runs = start_once(base / f"home{i}", base / "config.toml")
            frames.append(frame)
            listed.append(runs)
    return {
        "first_frame_median": statistics.median(frames),
        "first_frame_max": max(frames),
        "runs_listed_median": statistics.median(listed),
        "runs_listed_max": max(listed),
    }


def fill_registry(home: Path, count: int) -> None:
    from core.local.registry import LocalRegistry
    from core.local.store import Store
    from core.models import ApprovalStatus
    from core.spec import RunParameters

    registry = LocalRegistry(Store(home))
    archive = home / "model.tar.gz"
    archive.write_bytes(b"not a model: the registry benchmark never deploys it")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    parameters = RunParameters(r2_threshold=0.5).as_pipeline_parameters()
    statuses = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
    for i in range(count):
        r2 = 0.55 + (i * 37 % 101) / 1000
        report = {
            "regression_metrics": {"r2_score": r2, "mse": 0.55, "rmse": 0.74 - r2 / 10, "mae": 0.53},
            "n_train": 16512,
            "n_test": 4128,
        }
        execution = f"arn:aws:sagemaker:local:000000000000:pipeline/californiahousingpipeline/execution/{i:012x}"
        registry.register(archive.as_uri(), sha, report, execution, parameters, statuses[i % 3])


async def registry_in_process(home: Path, count: int) -> dict[str, float]:
    from core.local.backend import LocalBackend
    from core.settings import Settings
    from tui.app import HousingApp
    from tui.messages import VersionsLoaded
    from tui.screens.registry import RegistryScreen

    marks: dict[str, float] = {}
    original = RegistryScreen.on_versions_loaded

    def timed(self: RegistryScreen, message: VersionsLoaded) -> None:
        if "drawn" in marks:
            return original(self, message)
        marks["message"] = time.perf_counter()
        marks["backend"] = message.elapsed
        original(self, message)
        marks["populated"] = time.perf_counter()
        self.call_after_refresh(lambda: marks.setdefault("drawn", time.perf_counter()))

    RegistryScreen.on_versions_loaded = timed  # type: ignore[method-assign]
    try:
        app = HousingApp(LocalBackend(home), Settings())
        async with app.run_test(size=(80, 24)) as pilot:
            while not getattr(app.screen, "loaded", False):
                await pilot.pause(0.01)
            await pilot.pause(0.3)
            started = time.perf_counter()
            await app.switch_mode("registry")
            while "drawn" not in marks:
                await asyncio.sleep(0.001)
            assert len(app.screen.versions) == count  # type: ignore[attr-defined]
    finally:
        RegistryScreen.on_versions_loaded = original  # type: ignore[method-assign]
    return {
        "switch_to_drawn": marks["drawn"] - started,
        "backend_call": marks["backend"],
        "table_population": marks["populated"] - marks["message"],
        "first_refresh": marks["drawn"] - marks["populated"],
        "load_populate_refresh": marks["backend"] + marks["drawn"] - marks["message"],
    }


def registry_in_terminal(home: Path, config: Path, count: int) -> dict[str, float]:
    terminal = Terminal(home, config)
    try:
        terminal.until(*FIRST_FRAME)
        terminal.quiet()
        terminal.output = b""
        sent = time.perf_counter()
        os.write(terminal.fd, b"2")
        terminal.started = sent
        shown = terminal.until(f"Versions · {count}".encode())
        pages = [terminal.key(b"\x1b[6~") for _ in range(20)]  # page down
        pages += [terminal.key(b"\x1b[5~") for _ in range(5)]  # page up
        terminal.key(b"t")
        typing = [terminal.key(key) for key in (b"\x7f", b"\x7f", b"\x7f", b"0", b".", b"6", b"1", b"5")]
        terminal.key(b"\x1b")
    finally:
        terminal.close()
    return {
        "key_to_rows_drawn": shown,
        "page_first_median": statistics.median(first for first, _ in pages),
        "page_first_max": max(first for first, _ in pages),
        "page_last_median": statistics.median(last for _, last in pages),
        "page_last_max": max(last for _, last in pages),
        "threshold_key_median": statistics.median(last for _, last in typing),
        "threshold_key_max": max(last for _, last in typing),
    }


def bench_registry(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        started = time.perf_counter()
        fill_registry(home, count)
        print(f"  (filled a registry of {count} versions in {time.perf_counter() - started:.1f} s)")
        inside = [asyncio.run(registry_in_process(home, count)) for _ in range(repeat)]
        outside = [registry_in_terminal(home, Path(folder) / "config.toml", count) for _ in range(repeat)]
    figures = {key: statistics.median(run[key] for run in inside) for key in inside[0]}
    figures["load_populate_refresh_max"] = max(run["load_populate_refresh"] for run in inside)
    figures.update({key: statistics.median(run[key] for run in outside) for key in outside[0]})
    figures["key_to_rows_drawn_max"] = max(run["key_to_rows_drawn"] for run in outside)
    return figures


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(startup: dict[str, float], registry: dict[str, float], args: argparse.Namespace) -> str:
    n = args.versions
    lines = [
        f"Measured {dt.date.today().isoformat()} on {platform.machine()} with {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, the textual version pinned for the project.",
        "",
        "Command (writes this section):",
        "",
        "```",
        f".venv/bin/python bench/tui.py --repeat {args.repeat} --versions {n} --write",
        "```",
        "",
        "### Startup (goal: first screen under 1.0 s)",
        "",
        "`housing-tui` (the console script) in a real 80x24 pseudo-terminal with an empty temporary home and",
        "config. The clock starts just before the process is spawned and stops when the terminal output holds the",
        "whole first screen (navigation bar and footer keys), then when it also shows the first backend poll's",
        f"result. Median and worst of {args.repeat} starts after one warm-up start.",
        "",
        "| measure | median | max |",
        "| --- | --- | --- |",
        f"| process start -> first screen drawn | {ms(startup['first_frame_median'])} | "
        f"{ms(startup['first_frame_max'])} |",
        f"| process start -> runs listed (first backend poll drawn) | {ms(startup['runs_listed_median'])} | "
        f"{ms(startup['runs_listed_max'])} |",
        "",
        f"### Registry of {n} versions (goal: under 0.3 s, scrolling without visible lag)",
        "",
        f"A local store filled with {n} versions through `LocalRegistry.register`.",
        "",
        f"In-process (`App.run_test`, 80x24; median of {args.repeat}): the clock starts at the switch to the",
        "registry screen; the backend call runs in its thread worker, the rows are added when its typed message",
        "arrives, and the first refresh after that puts them on screen.",
        "",
        "| measure | time |",
        "| --- | --- |",
        f"| backend load + table population + first refresh (median / worst) | "
        f"{ms(registry['load_populate_refresh'])} / {ms(registry['load_populate_refresh_max'])} |",
        f"| of which: backend `list_versions` ({n} versions, thread worker) | {ms(registry['backend_call'])} |",
        f"| of which: table population (event loop) | {ms(registry['table_population'])} |",
        f"| of which: first refresh after population | {ms(registry['first_refresh'])} |",
        f"| switch -> rows drawn, including building the screen the first time | {ms(registry['switch_to_drawn'])} |",
        "",
        f"In a real 80x24 pseudo-terminal (median of {args.repeat} sessions): from the key `2` until the output",
        f"shows the table's title `Versions · {n}`; and for each key, from sending it to the last byte of the",
        "repaint it causes (the output then silent for 0.1 s; that silence is not counted). Textual scrolls the",
        "table smoothly, so a page key repaints over several frames: the first byte is when the user sees it move.",
        "",
        "| measure | median | max |",
        "| --- | --- | --- |",
        f"| key `2` -> {n} versions on screen | {ms(registry['key_to_rows_drawn'])} | "
        f"{ms(registry['key_to_rows_drawn_max'])} |",
        f"| page down / page up (25 keys): first byte of the repaint | {ms(registry['page_first_median'])} | "
        f"{ms(registry['page_first_max'])} |",
        f"| page down / page up: last byte (the scroll animation done) | {ms(registry['page_last_median'])} | "
        f"{ms(registry['page_last_max'])} |",
        f"| threshold keystroke, re-marking all {n} rows (8 keys) | {ms(registry['threshold_key_median'])} | "
        f"{ms(registry['threshold_key_max'])} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="write the figures to bench/RESULTS.md")
    args = parser.parse_args()
    print("startup (pty, 80x24):")
    startup = bench_startup(args.repeat)
    for key, value in startup.items():
        print(f"  {key:<28} {ms(value):>8}")
    print(f"registry of {args.versions} versions:")
    registry = bench_registry(args.versions, args.repeat)
    for key, value in registry.items():
        print(f"  {key:<28} {value * 1000:8.1f} ms")
    text = report(startup, registry, args)
    if args.write:
        sys.path.insert(0, str(BENCH))
        from results import write_section

        write_section("tui", "Terminal application", text)
        print(f"wrote {BENCH / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
