"""Similar search when one text floods the store: latency with and without the flood.

    python bench/similar_flood.py [--demo 2000] [--copies 5000] [--runs 9]

Fills a scratch store with demo incidents, times `similar -k 5` for a demo incident's text
(the baseline), then saves --copies incidents with one identical text and times the query
for that text, which must still return 5 distinct incidents (rounds leave out the copies
examined before). Medians of --runs uncached runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.demo.fill import fill_store  # noqa: E402
from store.ingest.records import validate_record  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402

COPY_TEXT = ("Ransomware encrypted the file server. Shares encrypted with the lockbit extension "
             "after shadow copies were deleted.")


def median_ms(store: Store, text: str, runs: int) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        result = store.search.similar(text=text, k=5, use_cache=False)
        times.append((time.perf_counter() - started) * 1000)
        found = len({hit.incident_id for hit in result.hits})
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=int, default=2000)
    parser.add_argument("--copies", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=9)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, \
            Store.open(Settings(data_dir=Path(scratch), save_batch_size=1000)) as store:
        fill_store(store, arguments.demo)
        store.vectors.index()
        baseline, found = median_ms(store, COPY_TEXT, arguments.runs)
        print(f"{arguments.demo:,} demo incidents: similar -k 5 {baseline:7.1f} ms "
              f"({found} incidents)")
        copies = [validate_record({
            "incident": {"incident_id": f"COPY-{number}", "title": "Ransomware encrypted "
                         "the file server", "description": COPY_TEXT},
            "analysis": {"summary": COPY_TEXT, "run": number}, "model_name": "m"}, "copy")
            for number in range(arguments.copies)]
        store.save_many([(f"copy {n}", record) for n, record in enumerate(copies)])
        flooded, found = median_ms(store, COPY_TEXT, arguments.runs)
        print(f"+ {arguments.copies:,} copies of one text: similar -k 5 {flooded:7.1f} ms "
              f"({found} incidents)")


if __name__ == "__main__":
    main()
