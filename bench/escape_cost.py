"""What escaping stored text costs per call, against what the same call cost without it.

    python bench/escape_cost.py [--runs 7]

printable(title, one_line=True) per table cell against the str.replace it replaced, and
json_text(analysis, indent=2) for the analysis view against json.dumps. Medians of runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.tui.conftest import fixed_records  # noqa: E402
from widgets.format import json_text, printable  # noqa: E402

TITLES = [record["incident"]["title"] for record in fixed_records()] * 1000
ANALYSES = [record["analysis"] for record in fixed_records()] * 100


def per_call(function: Callable[[Any], Any], items: list[Any], runs: int) -> float:
    """Median seconds per call over runs passes through items."""
    passes = []
    for _ in range(runs):
        start = time.perf_counter()
        for item in items:
            function(item)
        passes.append((time.perf_counter() - start) / len(items))
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    rows = [
        ("title cell: str.replace (baseline)",
         per_call(lambda t: t.replace("\n", " "), TITLES, runs)),
        ("title cell: printable(one_line)",
         per_call(lambda t: printable(t, one_line=True), TITLES, runs)),
        ("analysis: json.dumps (baseline)",
         per_call(lambda a: json.dumps(a, indent=2, ensure_ascii=False), ANALYSES, runs)),
        ("analysis: json_text", per_call(lambda a: json_text(a, indent=2), ANALYSES, runs)),
    ]
    for name, seconds in rows:
        print(f"{name:<38} {seconds * 1e6:8.2f} µs per call (median of {runs})")


if __name__ == "__main__":
    main()
