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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.vectors.index import VectorIndex  # noqa: E402

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
    from store.demo.generator import generate_records
    from store.vectors.offline import HashedConceptEmbedder
    from store.vectors.text import embedding_text

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
        index.convert(kind, nprobes[0])
        print(f"  {kind}: built in {time.perf_counter() - started:.1f} s")
        for nprobe in nprobes:
            index.set_nprobe(nprobe)
            found, times = latencies(index, queries)
            report(f"{kind} nprobe={nprobe}", times, recall_at_10(found, truth))
        snapshot_open(index)
        del index


def snapshot_open(index: VectorIndex) -> None:
    """Load time and resident memory of a snapshot, in a fresh process (no reused pages)."""
    import subprocess

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as scratch:
        index.save_snapshot(Path(scratch))
        probe = (
            "import sys, time; sys.path.insert(0, sys.argv[2])\n"
            "from bench.similar_scale import rss_mb\nfrom store.vectors.index import VectorIndex\n"
            "from pathlib import Path\nbefore = rss_mb(); started = time.perf_counter()\n"
            "index = VectorIndex.load_snapshot(Path(sys.argv[1]), 'bench', int(sys.argv[3]))\n"
            "print(f'{time.perf_counter() - started:.2f} {rss_mb() - before:.0f}')\n"
        )
        output = subprocess.run([sys.executable, "-c", probe, scratch, str(ROOT),
                                 str(index.dimension)], capture_output=True, text=True,
                                check=True).stdout.split()
        size = (Path(scratch) / "vectors.snapshot").stat().st_size / 1e6
        print(f"  snapshot load (fresh process): {output[0]} s, +{output[1]} MB resident, "
              f"file {size:,.0f} MB")


def open_store(data_dir: Path) -> None:
    """Store.open + an index ready to search, each in a fresh process, twice."""
    import subprocess

    probe = (
        "import sys, time; sys.path.insert(0, sys.argv[2])\n"
        "from bench.similar_scale import rss_mb\nbefore = rss_mb()\n"
        "started = time.perf_counter()\n"
        "from pathlib import Path\nfrom store.settings import Settings\n"
        "from store.store import Store\n"
        "store = Store.open(Settings(data_dir=Path(sys.argv[1])))\n"
        "index = store.vectors.index()\nelapsed = time.perf_counter() - started\n"
        "hit = store.similar(text='ransomware encrypted the file server')\n"
        "print(f'{elapsed:.2f} {rss_mb() - before:.0f} {index.kind} {len(index)} '\n"
        "      f'{hit.elapsed_ms:.1f}')\nstore.close()\n"
    )
    for attempt in ("first open", "second open"):
        out = subprocess.run([sys.executable, "-c", probe, str(data_dir), str(ROOT)],
                             capture_output=True, text=True, check=True).stdout.split()
        print(f"store {attempt} (fresh process, imports included): {out[0]} s to a "
              f"searchable {out[2]} index of {int(out[3]):,} vectors, +{out[1]} MB resident; "
              f"then one text query {out[4]} ms")


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
        run_size(ids[:size], vectors[:size], nprobes, kinds)  # a short store gives all it has
    if args.data_dir is not None and args.open_store:
        open_store(args.data_dir)


def only_open() -> None:
    """`--only-open DIR`: just the store-open figures."""
    open_store(Path(sys.argv[sys.argv.index("--only-open") + 1]))


if __name__ == "__main__":
    if "--only-open" in sys.argv:
        only_open()
    else:
        main()
