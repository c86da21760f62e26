"""Prose-like vectors for the approximate-index benchmarks, cached outside the repository.

    python bench/prose_vectors.py --count 1000000      # build (or find) the cache, print where

Each text is 2-4 sentences drawn at random from the real summaries of
../shared/data/vcdb_dev.jsonl and the ATT&CK procedures of attack_dev.jsonl, embedded by
the default offline embedder. Unlike the demo templates these do not cluster neatly, which
is what an approximate index meets on a store of real analyses. The dev files are only
read to make test vectors here; nothing is fitted on them.

Vectors are built in blocks of BLOCK texts, each drawn from its own seeded generator, so
the first N of a larger set are the set of N, and every finished block is cached as one
.npy file under $BENCH_CACHE (default /tmp/incidex-bench/prose): a rerun, or a larger
count, reuses what is there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
SOURCES = ("vcdb_dev.jsonl", "attack_dev.jsonl")
BLOCK = 50_000
SEED = 14
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")


def data_directory() -> Path:
    """The shared data folder: ../shared/data beside the repo, or /work/shared/data."""
    for candidate in (DATA, Path("/work/shared/data")):
        if all((candidate / name).exists() for name in SOURCES):
            return candidate
    raise SystemExit(f"the dev files {SOURCES} are not in {DATA}")


def sentences(directory: Path) -> list[str]:
    """Every sentence of at least 20 characters in the dev files' texts, in file order."""
    found: list[str] = []
    for name in SOURCES:
        with open(directory / name) as handle:
            for line in handle:
                text = json.loads(line)["text"]
                found.extend(s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) >= 20)
    return found


def block_texts(pool: list[str], block: int) -> list[str]:
    """The BLOCK texts of one block: each 2-4 sentences of the pool, from the block's seed."""
    rng = np.random.default_rng([SEED, block])
    lengths = rng.integers(2, 5, size=BLOCK)
    picks = rng.integers(0, len(pool), size=int(lengths.sum()))
    texts, start = [], 0
    for length in lengths.tolist():
        texts.append(" ".join(pool[i] for i in picks[start : start + length]))
        start += length
    return texts


def cache_directory(pool: list[str], embedder_name: str) -> Path:
    """Where the blocks of this pool and embedder live (the key changes with either)."""
    key = hashlib.sha256("\x00".join([embedder_name, str(SEED), str(BLOCK), *pool]).encode())
    base = Path(os.environ.get("BENCH_CACHE", "/tmp/incidex-bench/prose"))
    return base / key.hexdigest()[:16]


def prose_vectors(count: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(ids 1..count, count x 512 float32 unit vectors), built once and cached per block."""
    from store.vectors.offline import HashedConceptEmbedder

    embedder = HashedConceptEmbedder()
    pool = sentences(data_directory())
    directory = cache_directory(pool, embedder.name)
    directory.mkdir(parents=True, exist_ok=True)
    blocks = -(-count // BLOCK)
    matrix = np.empty((blocks * BLOCK, embedder.dimension), np.float32)
    for block in range(blocks):
        path = directory / f"block-{block:04d}.npy"
        if not path.exists():
            started = time.perf_counter()
            vectors = embedder.embed(block_texts(pool, block)).vectors
            temp = path.with_suffix(f".tmp-{os.getpid()}.npy")
            np.save(temp, vectors)
            os.replace(temp, path)
            if progress:
                print(f"  block {block}: {BLOCK / (time.perf_counter() - started):,.0f} texts/s",
                      file=sys.stderr, flush=True)
        matrix[block * BLOCK : (block + 1) * BLOCK] = np.load(path)
    matrix = matrix[:count]
    return np.arange(1, count + 1, dtype=np.int64), matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    pool = sentences(data_directory())
    print(f"{len(pool):,} sentences in the pool")
    _, vectors = prose_vectors(args.count, progress=True)
    print(f"{len(vectors):,} vectors of dimension {vectors.shape[1]} ready")


if __name__ == "__main__":
    main()
