"""Similar-incident search at scale: latency, recall of the approximate index, open time.

    python bench/similar_scale.py --data-dir /path/to/demo-store [--sizes 100000,1000000]
    python bench/similar_scale.py --synthetic 100000

Vectors come from a store's embeddings table (a store filled by `incidex demo`) or are
made by the default embedder from demo records. For each size it prints single-query
latency p50/p99 of the exact index and of the approximate ones at several nprobe, their
recall@10 against exact, build time, and the time and memory to load a snapshot. With
--data-dir it also times opening the whole store ready to search (Store.open + index).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.index import VectorIndex  # noqa: E402

QUERIES = 1000


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def vectors_from_store(data_dir: Path, limit: int) -> tuple[np.ndarray, np.ndarray]:
    connection = sqlite3.connect(data_dir / "incident_analysis.db")
    rows = connection.execute("SELECT analysis_pk, vector FROM embeddings WHERE status='ready' "
                              "ORDER BY analysis_pk LIMIT ?", (limit,))
    ids, blobs = [], []
    for pk, blob in rows:
        ids.append(pk)
        blobs.append(blob)
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), -1)
    return np.array(ids, dtype=np.int64), matrix


def synthetic_vectors(count: int) -> tuple[np.ndarray, np.ndarray]:
    from store.demo import generate_records
    from store.embed_offline import HashedConceptEmbedder
    from store.matching import embedding_text

    embedder = HashedConceptEmbedder()
    texts = [embedding_text(r["incident"]["title"], r["incident"]["description"],
                            r["incident"]["initial_findings"], r["analysis"])
             for r in generate_records(count, 3)]
    return np.arange(1, count + 1, dtype=np.int64), embedder.embed(texts).vectors


def latencies(index: VectorIndex, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, list]:
    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        _, ids = index.search(query[None, :], k)
        times.append((time.perf_counter() - started) * 1000)
        found.append(ids[0])
    return np.array(found), times


def recall_at_10(approximate: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact,
                                                                     strict=True)]))


def report(label: str, times: list[float], recall: float | None = None) -> None:
    p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
    extra = "" if recall is None else f"  recall@10 {recall:.3f}"
    print(f"  {label:<28} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{extra}")


def run_size(ids: np.ndarray, vectors: np.ndarray, nprobes: list[int], kinds: list[str]) -> None:
    count = len(ids)
    print(f"\n{count:,} vectors of dimension {vectors.shape[1]}")
    queries = vectors[np.random.default_rng(0).choice(count, QUERIES, replace=False)]
    exact = VectorIndex("bench", vectors.shape[1])
    exact.add(ids, vectors)
    truth, times = latencies(exact, queries)
    report("exact (flat inner product)", times)
    for kind in kinds:
        index = VectorIndex("bench", vectors.shape[1])
        index.add(ids, vectors)
        started = time.perf_counter()
        index.convert(kind, nprobe=nprobes[0])
        print(f"  {kind}: built in {time.perf_counter() - started:.1f} s")
        for nprobe in nprobes:
            index.set_nprobe(nprobe)
            found, times = latencies(index, queries)
            report(f"{kind} nprobe={nprobe}", times, recall_at_10(found, truth))
        snapshot_open(index)
        del index


def snapshot_open(index: VectorIndex) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as scratch:
        index.save_snapshot(Path(scratch))
        before = rss_mb()
        started = time.perf_counter()
        loaded = VectorIndex.load_snapshot(Path(scratch), "bench", index.dimension)
        elapsed = time.perf_counter() - started
        assert loaded is not None
        print(f"  snapshot load: {elapsed:.2f} s, +{rss_mb() - before:,.0f} MB resident, "
              f"file {(Path(scratch) / 'vectors.faiss').stat().st_size / 1e6:,.0f} MB")


def open_store(data_dir: Path) -> None:
    """Store.open + an index ready to search, twice: cold-ish (first) and warm."""
    from store.settings import Settings
    from store.store import Store

    for attempt in ("first open", "second open"):
        before = rss_mb()
        started = time.perf_counter()
        store = Store.open(Settings(data_dir=data_dir))
        index = store.vectors.index()
        elapsed = time.perf_counter() - started
        print(f"store {attempt}: {elapsed:.2f} s to a searchable {index.kind} index of "
              f"{len(index):,} vectors, +{rss_mb() - before:,.0f} MB resident")
        store.close()
        del store, index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--synthetic", type=int, default=0)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--nprobe", default="32,64,96,128,256")
    parser.add_argument("--kinds", default="ivf,ivf-sq8")
    parser.add_argument("--open-store", action="store_true")
    args = parser.parse_args()
    nprobes = [int(n) for n in args.nprobe.split(",")]
    kinds = [k for k in args.kinds.split(",") if k]
    if args.data_dir is not None:
        largest = max(int(size) for size in args.sizes.split(","))
        ids, vectors = vectors_from_store(args.data_dir, largest)
    else:
        ids, vectors = synthetic_vectors(args.synthetic)
    for size in (int(s) for s in args.sizes.split(",")):
        if size <= len(ids):
            run_size(ids[:size], vectors[:size], nprobes, kinds)
    if args.data_dir is not None and args.open_store:
        open_store(args.data_dir)


if __name__ == "__main__":
    main()
