"""How long the command line takes to answer before it touches a store.

    python bench/cli_startup.py [--runs 15]

Runs each command as a new process, interleaved, and prints the median wall time with the
bare interpreter (`python -c pass`) of the same run as the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "incidex --version": [sys.executable, "-m", "tui.cli", "--version"],
    "incidex --help": [sys.executable, "-m", "tui.cli", "--help"],
    "incidex similar --help": [sys.executable, "-m", "tui.cli", "similar", "--help"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    timings: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
            timings[name].append(time.perf_counter() - start)
    baseline = statistics.median(timings["python -c pass (baseline)"])
    print(f"{'command':<28} {'median ms':>10} {'over baseline':>14}   ({runs} runs each)")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<28} {median * 1000:>10.0f} {(median - baseline) * 1000:>+13.0f}")


if __name__ == "__main__":
    main()
