"""Save rate with and without encryption at rest, in one run, on the same records.

    python bench/encryption.py [--records 5000] [--repeat 3] [--embed]

Each run saves the same JSON Lines file through `incidex --save`'s path (batched transactions,
priced run metadata, the backup journal, whose bodies are sealed too) into a fresh SQLite
store, alternating encrypt_at_rest off and on so that the machine's noise (other processes)
falls on both alike; prints the median records/s of each and the slowdown. Also times
`Store.incident` + `Store.analyses` (what the analysis screen reads) on the sealed store.
The goal: sealed within 15% of clear.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._records import write_jsonl  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402
from tui.headless import save_stream  # noqa: E402


def save_rate(root: Path, source: Path, sealed: bool, embed: bool) -> tuple[float, float]:
    """Records per second of one save of `source` into a fresh store under root: per second
    of wall time, and per second of this process's CPU time (less hit by other processes)."""
    settings = Settings(data_dir=root / "data", secrets_dir=root / "secrets",
                        encrypt_at_rest=sealed, embed_on_save=embed)
    with Store.open(settings) as store:
        started, cpu_started = time.perf_counter(), time.process_time()
        with source.open("rb") as stream:
            ok, failed = save_stream(store, stream, io.StringIO(), io.StringIO(),
                                     batch_size=settings.save_batch_size)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert failed == 0 and ok > 0, (ok, failed)
    return ok / elapsed, ok / cpu


def open_time_ms(root: Path, sealed: bool) -> float:
    """Median milliseconds to read one incident and its analyses (the analysis screen)."""
    settings = Settings(data_dir=root / "data", secrets_dir=root / "secrets",
                        encrypt_at_rest=sealed)
    with Store.open(settings) as store:
        ids = [row.incident_id for row in store.incidents_page(limit=50).rows]
        timings = []
        for incident_id in ids:
            started = time.perf_counter()
            store.incident(incident_id)
            store.analyses(incident_id)
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--embed", action="store_true", help="Embed on save (default off: "
                        "the save path alone, as a bulk import with INCIDEX_EMBED_ON_SAVE=0).")
    args = parser.parse_args()
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu_rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as scratch:
        source = write_jsonl(Path(scratch) / "records.jsonl", args.records, start=0, prefix="E")
        last_store = {False: Path(scratch), True: Path(scratch)}
        for run in range(args.repeat):
            for sealed in (False, True):
                root = Path(scratch) / f"run-{run}-{'sealed' if sealed else 'clear'}"
                os.makedirs(root)
                wall, cpu = save_rate(root, source, sealed, args.embed)
                rates[sealed].append(wall)
                cpu_rates[sealed].append(cpu)
                last_store[sealed] = root
        opened_ms = {sealed: open_time_ms(last_store[sealed], sealed) for sealed in (False, True)}
    clear, sealed = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"records per run: {args.records:,}, runs: {args.repeat}, embed on save: {args.embed}")
    for label, median, runs in (("clear text", clear, rates[False]),
                                ("sealed    ", sealed, rates[True])):
        shown = ", ".join(f"{rate:.0f}" for rate in runs)
        print(f"{label} : {median:8.0f} records/s wall  (runs: {shown})")
    print(f"slowdown   : {100 * (1 - sealed / clear):5.1f}% wall  (goal: under 15%)")
    clear_cpu, sealed_cpu = (statistics.median(cpu_rates[False]),
                             statistics.median(cpu_rates[True]))
    print(f"per CPU second: clear {clear_cpu:.0f}, sealed {sealed_cpu:.0f} records; "
          f"slowdown {100 * (1 - sealed_cpu / clear_cpu):.1f}%")
    print(f"opening one incident and its analyses: clear {opened_ms[False]:.2f} ms, sealed "
          f"{opened_ms[True]:.2f} ms (medians of 50)")
    print("note: a shared 2-core machine; compare the two lines of one run, not across runs")


if __name__ == "__main__":
    main()
