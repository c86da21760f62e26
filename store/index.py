"""The in-memory FAISS index of analysis vectors, and its snapshots on disk (no pickle)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from store.errors import EmbedderMismatch

SNAPSHOT_INDEX = "vectors.faiss"
SNAPSHOT_META = "vectors.json"
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class IndexMeta:
    """What a snapshot holds: which embedder, how many vectors, up to which write sequence."""

    embedder: str
    dimension: int
    kind: str
    count: int
    high_water_mark: int
    format: int = SNAPSHOT_FORMAT


class VectorIndex:
    """Vectors keyed by analysis primary key; exact inner product, or approximate at scale.

    Thread-safe: the TUI searches from one worker while another adds vectors.
    """

    def __init__(self, embedder: str, dimension: int, kind: str = "flat",
                 faiss_index: Any | None = None, high_water_mark: int = 0) -> None:
        self.embedder = embedder
        self.dimension = dimension
        self.kind = kind
        self.high_water_mark = high_water_mark
        self._lock = threading.RLock()
        self._index = faiss_index if faiss_index is not None else new_faiss_index(kind, dimension)
        self.dirty = False

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray, high_water_mark: int | None = None) -> None:
        """Add (or replace) vectors; ids are analysis primary keys."""
        if len(ids) == 0:
            if high_water_mark is not None:
                self.high_water_mark = max(self.high_water_mark, high_water_mark)
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dimension:
            raise EmbedderMismatch(
                f"vectors of dimension {vectors.shape[1]} given to an index of {self.dimension}")
        with self._lock:
            self._index.remove_ids(ids)
            self._index.add_with_ids(vectors, ids)
            if high_water_mark is not None:
                self.high_water_mark = max(self.high_water_mark, high_water_mark)
            self.dirty = True

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by analysis id; returns how many were there."""
        with self._lock:
            removed = int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
            self.dirty = self.dirty or removed > 0
            return removed

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; missing slots have id -1."""
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        with self._lock:
            if self._index.ntotal == 0:
                empty = np.full((len(queries), k), -1, dtype=np.int64)
                return np.zeros((len(queries), k), dtype=np.float32), empty
            scores, ids = self._index.search(queries, min(k, int(self._index.ntotal)))
        return scores, ids

    def ids(self) -> np.ndarray:
        """Every analysis id the index holds."""
        import faiss

        with self._lock:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vector(self, analysis_pk: int) -> np.ndarray | None:
        """The stored vector of one analysis, or None."""
        with self._lock:
            try:
                return np.asarray(self._index.reconstruct(int(analysis_pk)), dtype=np.float32)
            except RuntimeError:
                return None

    def meta(self) -> IndexMeta:
        """A description of what the index holds now."""
        return IndexMeta(self.embedder, self.dimension, self.kind, len(self), self.high_water_mark)

    def save_snapshot(self, directory: Path) -> IndexMeta:
        """Write index and metadata atomically (temp files, fsync, rename; metadata last)."""
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            meta = self.meta()
            serialized = faiss.serialize_index(self._index)
            self.dirty = False
        suffix = f".tmp-{os.getpid()}-{threading.get_ident()}"
        index_temp = directory / (SNAPSHOT_INDEX + suffix)
        meta_temp = directory / (SNAPSHOT_META + suffix)
        _write_synced(index_temp, memoryview(serialized))
        _write_synced(meta_temp, json.dumps(asdict(meta), indent=2).encode())
        # The index file goes first: metadata names a high-water mark the index reaches.
        os.replace(index_temp, directory / SNAPSHOT_INDEX)
        os.replace(meta_temp, directory / SNAPSHOT_META)
        _fsync_directory(directory)
        return meta

    @classmethod
    def load_snapshot(cls, directory: Path, embedder: str, dimension: int) -> VectorIndex | None:
        """Load the snapshot if there is one for this embedder; None when absent or unreadable."""
        import faiss

        meta_path, index_path = directory / SNAPSHOT_META, directory / SNAPSHOT_INDEX
        try:
            meta = IndexMeta(**json.loads(meta_path.read_text()))
            if meta.format != SNAPSHOT_FORMAT:
                return None
            if (meta.embedder, meta.dimension) != (embedder, dimension):
                return None
            faiss_index = faiss.read_index(str(index_path))
        except (OSError, ValueError, TypeError, RuntimeError):
            return None
        if faiss_index.d != dimension:
            return None
        # A crash between the two renames leaves a newer index with older metadata:
        # the lower mark only means re-adding a few rows, which replaces them.
        return cls(embedder, dimension, meta.kind, faiss_index, meta.high_water_mark)


def new_faiss_index(kind: str, dimension: int) -> Any:
    """An empty FAISS index of the given kind with analysis ids as labels."""
    import faiss

    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    raise ValueError(f"unknown index kind {kind!r}")


def _write_synced(path: Path, payload: memoryview | bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
