"""Saves with the local model configured (vectors left pending) against the offline default, and
the background filler's rate, in one run.

    nice -n 10 .venv/bin/python bench/model_fill.py [--records 300] [--repeats 3]
        [--embedder hashed-concepts-v1+all-minilm-l6-v2]

Each repeat opens fresh SQLite stores and saves the same demo records (store/demo: prose-like
incidents and analyses) through Store.save_many (batches of INCIDEX_SAVE_BATCH_SIZE) and, for
the first --single of them, one Store.save_analysis call each (as the TUI saves an analysis):
once with the default embedder (embedding on save) and once with the model embedder (no
embedding: the vector is left pending). Then the filler (Store.fill_pending_vectors) embeds the
model store's pending vectors, a transaction a batch. The model is loaded and warmed before
anything is timed. Prints the median of the repeats and the load average before and after:
the machine is shared, so compare within one run. Needs the models extra (`make models`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.demo.generator import generate_records  # noqa: E402
from store.schemas import AnalysisIn  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402
from store.vectors.embedder import COMBINED_EMBEDDER, DEFAULT_EMBEDDER  # noqa: E402
from store.vectors.service import make_embedder  # noqa: E402


def save_rates(embedder: str, records: list[AnalysisIn], single: int
               ) -> tuple[float, float, float, int, Store, tempfile.TemporaryDirectory[str]]:
    """Bulk saves/s, one-at-a-time saves/s, filler texts/s (0 if nothing pending), pending."""
    directory = tempfile.TemporaryDirectory()
    store = Store.open(Settings(data_dir=Path(directory.name) / "data", embedder=embedder))
    bulk = [(f"r{n}", record) for n, record in enumerate(records[single:])]
    started = time.perf_counter()
    results = store.save_many(bulk)
    bulk_rate = len(bulk) / (time.perf_counter() - started)
    started = time.perf_counter()
    for n, record in enumerate(records[:single]):
        results.append(store.save_analysis(record, f"s{n}"))
    single_rate = single / (time.perf_counter() - started)
    assert all(result.status == "saved" for result in results), results[:3]
    pending = store.pending_vector_count()
    fill_rate = 0.0
    if pending:
        started = time.perf_counter()
        filled = store.fill_pending_vectors()
        fill_rate = filled / (time.perf_counter() - started)
        assert filled == pending and store.pending_vector_count() == 0
        assert store.verify_vectors().in_step
    return bulk_rate, single_rate, fill_rate, pending, store, directory


def main(argv: list[str] | None = None) -> int:
    """Print saves/s for both embedders and the filler's texts/s, medians of the repeats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--single", type=int, default=50,
                        help="of which saved one call each (the rest in one save_many)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--embedder", default=COMBINED_EMBEDDER)
    args = parser.parse_args(argv)
    records = [AnalysisIn.model_validate(raw) for raw in generate_records(args.records, seed=7)]
    make_embedder(Settings(embedder=args.embedder)).embed(["warm the model up"])
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} ({os.cpu_count()} cores, shared)", flush=True)
    figures: dict[str, dict[str, list[float]]] = {DEFAULT_EMBEDDER: {}, args.embedder: {}}
    for repeat in range(args.repeats):
        for embedder in (DEFAULT_EMBEDDER, args.embedder):
            bulk, single, fill, pending, store, directory = save_rates(
                embedder, records, args.single)
            store.close()
            directory.cleanup()
            for name, value in (("bulk", bulk), ("single", single), ("fill", fill)):
                figures[embedder].setdefault(name, []).append(value)
            print(f"  repeat {repeat + 1} {embedder}: save_many {bulk:,.0f}/s, save_analysis "
                  f"{single:,.1f}/s, {pending} left pending"
                  + (f", filled at {fill:,.1f} texts/s" if pending else ""), flush=True)
    load_after = os.getloadavg()
    print(f"\n{args.records} demo records ({args.single} saved one call each), "
          f"medians of {args.repeats}:")
    for embedder, measured in figures.items():
        fill = statistics.median(measured["fill"])
        print(f"  {embedder:40s} save_many {statistics.median(measured['bulk']):8,.0f}/s  "
              f"save_analysis {statistics.median(measured['single']):7,.1f}/s"
              + (f"  filler {fill:6,.1f} texts/s" if fill else "  (embedded on save)"))
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
