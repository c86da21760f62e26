"""What the snapshot's checks cost when a store opens: checksum, identity, count, spot check.

    python bench/snapshot_checks.py [--vectors 100000] [--runs 5]

Fills a scratch SQLite store with random unit vectors (no analyses: the checks read only the
embeddings and store_info tables), writes its snapshot, then times, in the same run:
  baseline   faiss.read_index of the bare index file (the snapshot before it had a header)
  open       VectorIndex.open_snapshot: the same plus the sha256 of the index bytes
  checks     identity, revision and mark, catch-up, the two count seeks, 8 spot reads
  rebuild    what a set-aside snapshot costs instead: the index rebuilt from the database
Medians of --runs runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.db.engine import write_transaction  # noqa: E402
from store.db.writes import insert_embedding_rows  # noqa: E402
from store.ingest.records import utc_now  # noqa: E402
from store.locations import index_directory  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402
from store.vectors.index import SNAPSHOT_FILE, VectorIndex  # noqa: E402


def median_ms(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def fill(store: Store, count: int) -> None:
    embedder = store.vectors.embedder
    rng = np.random.default_rng(7)
    for start in range(0, count, 10_000):
        size = min(10_000, count - start)
        matrix = rng.normal(size=(size, embedder.dimension)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        rows = [{"analysis_pk": start + offset + 1, "embedder": embedder.name,
                 "dimension": embedder.dimension, "status": "ready",
                 "vector": matrix[offset].tobytes(), "updated_at": utc_now()}
                for offset in range(size)]
        with write_transaction(store.engine) as connection:
            insert_embedding_rows(connection, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), index_kind="flat")
        with Store.open(settings) as store:
            fill(store, arguments.vectors)
            service = store.vectors
            directory = index_directory(settings)
            service.rebuild_index().save_snapshot(directory)
            path = directory / SNAPSHOT_FILE
            embedder = service.embedder
            print(f"{arguments.vectors:,} vectors of dimension {embedder.dimension}, snapshot "
                  f"{path.stat().st_size / 1e6:,.0f} MB, median of {arguments.runs} runs:")

            plain = directory / "plain.faiss"  # the index alone, as snapshots were before

            def baseline() -> None:
                import faiss

                faiss.read_index(str(plain))

            def opened() -> VectorIndex:
                loaded, reason = VectorIndex.open_snapshot(directory, embedder.name,
                                                           embedder.dimension)
                assert loaded is not None, reason
                return loaded

            loaded = opened()
            import faiss

            faiss.write_index(loaded._index, str(plain))
            print(f"  baseline (faiss.read_index)    {median_ms(baseline, arguments.runs):9.1f} ms")
            print(f"  open (+ sha256 of the index)   {median_ms(opened, arguments.runs):9.1f} ms")
            checks = median_ms(lambda: service.snapshot_problem(loaded), arguments.runs)
            assert service.snapshot_problem(loaded) is None
            print(f"  checks (identity, count, spot) {checks:9.1f} ms")
            rebuild = median_ms(service.rebuild_index, max(1, arguments.runs // 2))
            print(f"  rebuild from the database      {rebuild:9.1f} ms")


if __name__ == "__main__":
    main()
