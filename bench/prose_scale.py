"""Approximate search on prose-like vectors: recall@10 against exact, latency, adds, load.

    python bench/prose_scale.py --size 200000 --kinds hnsw,ivf-sq8
    python bench/prose_scale.py --size 1000000 --kinds hnsw-sq8
    python bench/prose_scale.py --size 1000000 --kinds hnsw-sq8 --build-breadth 16 --quick

(The last builds a cheaper graph of the same bytes, for the snapshot's size and load time
at a size whose efConstruction-80 build does not fit the time; its recall is not the
store's. --quick measures only the breadth the recall check chose.)

The vectors are bench/prose_vectors.py's (2-4 real VCDB and ATT&CK sentences per text,
the default offline embedder), built once and cached outside the repo. For each kind it
builds the index the way the store does (build_approximate, then tune_breadth: recall
measured on 1,000 of the index's own vectors, search widened until 0.95 by two standard
errors), then on 1,000 other queries drawn from the set it prints recall@10 against exact
search and single-query p50/p99 at each breadth, for k=10 and for the k=64 that a similar search
asks first; single adds on the saving path; and the load time and memory of its
snapshot in a fresh process (for "hnsw-sq8": the bytes read at load, the float rows after
them being mapped, and the loaded index's first searches). Exact search over the same
matrix is the baseline of the run (the machine is shared and noisy: compare figures within
one run).

Memory: the matrix (N x 512 float32) plus one index at a time; the last ADDED vectors
are held out of the build and added one by one afterwards.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.prose_vectors import prose_vectors  # noqa: E402
from bench.similar_scale import rss_mb  # noqa: E402
from store.vectors import index as index_module  # noqa: E402
from store.vectors.index import (  # noqa: E402
    FLOAT_KINDS,
    GRAPH_KINDS,
    HNSW_BUILD_BREADTH,
    HNSW_SEARCH_BREADTHS,
    VectorIndex,
    _all_cores,
    _read_header,
    build_approximate,
    tune_breadth,
)

QUERIES = 1000
EXACT_QUERIES = 50
ADDED = 1000
MIN_RECALL = 0.95
QUICK = False  # --quick: only the chosen breadth


def exact_truth(queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int
                ) -> np.ndarray:
    """The exact top-k ids of each query (brute force, every core)."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    _, positions = faiss.knn(queries, vectors, k, faiss.METRIC_INNER_PRODUCT)
    faiss.omp_set_num_threads(1)
    return ids[positions]


def exact_latency(queries: np.ndarray, vectors: np.ndarray) -> list[float]:
    """Single-query brute-force times on one thread: the exact index's cost (baseline)."""
    import faiss

    faiss.omp_set_num_threads(1)
    times = []
    for query in queries[:EXACT_QUERIES]:
        started = time.perf_counter()
        faiss.knn(query[None, :], vectors, 10, faiss.METRIC_INNER_PRODUCT)
        times.append((time.perf_counter() - started) * 1000)
    return times


def timed_search(index: VectorIndex, queries: np.ndarray, k: int
                 ) -> tuple[np.ndarray, list[float], list[float]]:
    """Top-k ids of each query, one query at a time, and each query's milliseconds: wall
    clock, and the CPU time of this thread (which a shared machine's wait for a core leaves
    out: on a loaded machine it is the nearer figure for an idle one)."""
    found, times, cpu = [], [], []
    for query in queries:
        started, thread = time.perf_counter(), time.thread_time()
        _, ids = index.search(query[None, :], k)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - thread) * 1000)
        found.append(ids[0][:10])
    return np.array(found), times, cpu


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10
                          for a, b in zip(found, truth, strict=True)]))


def line(label: str, times: list[float], recall: float | None = None,
         cpu: list[float] | None = None) -> str:
    extra = "" if recall is None else f"  recall@10 {recall:.3f}"
    if cpu is not None:
        extra += (f"  (CPU p50 {np.percentile(cpu, 50):.2f} ms, "
                  f"p99 {np.percentile(cpu, 99):.2f} ms)")
    return (f"  {label:<30} p50 {np.percentile(times, 50):7.2f} ms  "
            f"p99 {np.percentile(times, 99):7.2f} ms{extra}")


def breadths(index: VectorIndex, chosen: int) -> list[int]:
    """The chosen breadth and its neighbours on the ladder, to show the trade."""
    ladder = list(HNSW_SEARCH_BREADTHS) if index.kind in GRAPH_KINDS else [
        chosen // 2, chosen, chosen * 2]
    return sorted({width for width in ladder if width > 0} | {chosen})


def run_kind(kind: str, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray,
             truth: np.ndarray) -> None:
    """Build one kind on all but the last ADDED vectors, measure it, add those, load it."""
    built = len(ids) - ADDED
    started = time.perf_counter()
    start_breadth = HNSW_SEARCH_BREADTHS[0] if kind in GRAPH_KINDS else 32
    with _all_cores():  # as the store's convert() builds: on every core
        built_index = build_approximate(kind, ids[:built], vectors[:built], start_breadth)
    index = VectorIndex("bench", vectors.shape[1], kind, built_index,
                        floats=vectors[:built] if kind in FLOAT_KINDS else None)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    check = tune_breadth(index, ids[:built], vectors[:built], start_breadth, MIN_RECALL)
    index.recall_check = check
    print(f"  {kind}: built in {build_seconds:.0f} s; recall check in "
          f"{time.perf_counter() - started:.1f} s: {check.describe()}", flush=True)
    for width in [check.breadth] if QUICK else breadths(index, check.breadth):
        index.set_breadth(width)
        found, times, cpu = timed_search(index, queries, 10)
        _, wide_times, wide_cpu = timed_search(index, queries[:200], 64)
        mark = " (chosen)" if width == check.breadth else ""
        print(line(f"{kind} breadth {width}{mark}", times, recall_at_10(found, truth), cpu))
        print(line(f"{kind} breadth {width}, k=64", wide_times, cpu=wide_cpu), flush=True)
    index.set_breadth(check.breadth)
    adds = []
    for row in range(built, len(ids)):
        started = time.perf_counter()
        index.add(ids[row : row + 1], vectors[row : row + 1])
        adds.append((time.perf_counter() - started) * 1000)
    print(line(f"{kind} single add (save path)", adds), flush=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as scratch:
        started = time.perf_counter()
        index.save_snapshot(Path(scratch))
        saved = time.perf_counter() - started
        del index  # the fresh process's memory is then its own, not added to ours
        gc.collect()
        size = (Path(scratch) / "vectors.snapshot").stat().st_size / 1e6
        with open(Path(scratch) / "vectors.snapshot", "rb") as handle:
            read = _read_header(handle).index_bytes / 1e6
        seconds, resident = snapshot_load(Path(scratch), vectors.shape[1])
        print(f"  {kind} snapshot: written in {saved:.1f} s, {size:,.0f} MB of which "
              f"{read:,.0f} MB read at load (the rest, float vectors, mapped); loaded in a fresh "
              f"process in {seconds:.2f} s, +{resident:,.0f} MB resident (our RSS "
              f"{rss_mb():,.0f} MB)", flush=True)


def snapshot_load(directory: Path, dimension: int) -> tuple[float, float]:
    """Seconds and resident megabytes to load a snapshot (checksum included), fresh process."""
    probe = (
        "import sys, time; sys.path.insert(0, sys.argv[2])\n"
        "from bench.similar_scale import rss_mb\nfrom store.vectors.index import VectorIndex\n"
        "from pathlib import Path\nbefore = rss_mb(); started = time.perf_counter()\n"
        "cpu = time.process_time()\n"
        "index = VectorIndex.load_snapshot(Path(sys.argv[1]), 'bench', int(sys.argv[3]))\n"
        "assert index is not None\n"
        "loaded = time.perf_counter() - started; loaded_cpu = time.process_time() - cpu\n"
        "import numpy as np; rng = np.random.default_rng(1); times = []; cpu = []\n"
        "for pk in rng.choice(index.ids(), 200, replace=False).tolist():\n"
        "    query = index.vector(pk); t = time.perf_counter(); c = time.thread_time()\n"
        "    index.search(query, 10)\n"
        "    times.append((time.perf_counter() - t) * 1000)\n"
        "    cpu.append((time.thread_time() - c) * 1000)\n"
        "print(f'{loaded:.3f} {rss_mb() - before:.0f} {loaded_cpu:.3f} '\n"
        "      f'{np.percentile(times, 50):.2f} {np.percentile(times, 99):.2f} '\n"
        "      f'{np.percentile(cpu, 50):.2f}')\n"
    )
    output = subprocess.run([sys.executable, "-c", probe, str(directory), str(ROOT),
                             str(dimension)], capture_output=True, text=True,
                            check=True).stdout.split()
    print(f"  (the load's own CPU time: {float(output[2]):.2f} s; the rest of its wall time "
          "is waiting for a core on this shared machine); the loaded index's first 200 "
          f"searches: p50 {float(output[3]):.2f} ms, p99 {float(output[4]):.2f} ms (CPU p50 "
          f"{float(output[5]):.2f} ms)", flush=True)
    return float(output[0]), float(output[1])


def flat_snapshot_load(size: int) -> None:
    """Load time of an exact index's snapshot of `size` vectors: the float vectors an "hnsw"
    snapshot also carries (it adds its links, 256 bytes a vector), without the graph build."""
    ids, vectors = prose_vectors(size)
    index = VectorIndex("bench", vectors.shape[1])
    index.add(ids, vectors)
    del vectors
    gc.collect()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as scratch:
        index.save_snapshot(Path(scratch))
        del index
        gc.collect()
        size_mb = (Path(scratch) / "vectors.snapshot").stat().st_size / 1e6
        seconds, resident = snapshot_load(Path(scratch), 512)
        print(f"  flat snapshot of {size:,}: {size_mb:,.0f} MB, loaded in a fresh process in "
              f"{seconds:.2f} s, +{resident:,.0f} MB resident", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--kinds", default="hnsw")
    parser.add_argument("--build-breadth", type=int, default=0,
                        help="efConstruction other than the store's: a cheaper graph of the "
                        "same bytes, to measure its snapshot's size and load at a size whose "
                        "full build does not fit the time (its recall is then not the store's)")
    parser.add_argument("--quick", action="store_true",
                        help="measure only the breadth the recall check chose")
    parser.add_argument("--flat-snapshot", action="store_true",
                        help="only the load time of an exact snapshot of --size vectors")
    args = parser.parse_args()
    if args.flat_snapshot:
        flat_snapshot_load(args.size)
        return
    if args.build_breadth:
        index_module.HNSW_BUILD_BREADTH = args.build_breadth
        print(f"efConstruction {args.build_breadth} (the store builds with "
              f"{HNSW_BUILD_BREADTH})", flush=True)
    global QUICK
    QUICK = args.quick
    ids, vectors = prose_vectors(args.size)
    built = args.size - ADDED
    rng = np.random.default_rng(0)
    queries = np.ascontiguousarray(vectors[rng.choice(built, QUERIES, replace=False)])
    started = time.perf_counter()
    truth = exact_truth(queries, vectors[:built], ids[:built], 10)
    print(f"{args.size:,} prose-like vectors of dimension {vectors.shape[1]}; exact top-10 "
          f"of {QUERIES} queries in {time.perf_counter() - started:.0f} s (machine shared: "
          "compare within this run)", flush=True)
    print(line("exact (brute force, baseline)", exact_latency(queries, vectors[:built])),
          flush=True)
    for kind in (k for k in args.kinds.split(",") if k):
        run_kind(kind, ids, vectors, queries, truth)
        gc.collect()


if __name__ == "__main__":
    main()
