"""The in-memory FAISS index of analysis vectors, and its snapshots on disk (no pickle)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from store.errors import EmbedderMismatch
from store.fileio import PRIVATE_FILE_MODE, fsync_path, private_directory

SNAPSHOT_FILE = "vectors.snapshot"
LEGACY_SNAPSHOT_FILES = ("vectors.faiss", "vectors.json")
SNAPSHOT_FORMAT = 2
SNAPSHOT_MAGIC = b"INCIDEX-VECTORS\n"
_HEADER_LENGTH = struct.Struct("<I")
READ_CHUNK = 1 << 24


@dataclass(frozen=True, slots=True)
class IndexMeta:
    """What a snapshot holds and where it came from: the store, its schema, how far it reaches.

    One file carries this header and the FAISS bytes it describes (their sha256), so no
    reader can pair an index with another snapshot's metadata.
    """

    embedder: str
    dimension: int
    kind: str
    count: int
    high_water_mark: int
    store_id: str = ""
    revision: str = ""
    skipped: tuple[int, ...] = ()
    checksum: str = ""
    format: int = SNAPSHOT_FORMAT


class VectorIndex:
    """Vectors keyed by analysis primary key; exact inner product, or approximate at scale.

    Thread-safe: the TUI searches from one worker while another adds vectors.
    """

    def __init__(self, embedder: str, dimension: int, kind: str = "flat",
                 faiss_index: Any | None = None, high_water_mark: int = 0,
                 store_id: str = "", revision: str = "",
                 skipped: Iterable[int] = ()) -> None:
        _single_threaded_search()
        self.embedder = embedder
        self.dimension = dimension
        self.kind = kind
        self.high_water_mark = high_water_mark
        # Which store and schema revision the vectors came from (written into snapshots).
        self.store_id = store_id
        self.revision = revision
        # Ready rows up to the mark whose vectors were unusable (NaN, wrong length): left out.
        self.skipped: set[int] = set(skipped)
        self._lock = threading.RLock()
        self._index = faiss_index if faiss_index is not None else new_faiss_index(kind, dimension)
        self.unsaved = 0  # vectors changed since the last snapshot
        self.replaces_snapshot = False  # the snapshot on disk was set aside: rewrite it soon

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
            self.unsaved += len(ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by analysis id; returns how many were there."""
        with self._lock:
            removed = int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
            self.unsaved += removed
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
            if hasattr(self._index, "id_map"):
                return faiss.vector_to_array(self._index.id_map).astype(np.int64)
            invlists = self._index.invlists
            chunks = [faiss.rev_swig_ptr(invlists.get_ids(number), invlists.list_size(number))
                      .copy() for number in range(self._index.nlist)
                      if invlists.list_size(number)]
            return np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.zeros(
                0, np.int64)

    def vector(self, analysis_pk: int) -> np.ndarray | None:
        """The stored vector of one analysis, or None."""
        with self._lock:
            try:
                return np.asarray(self._index.reconstruct(int(analysis_pk)), dtype=np.float32)
            except RuntimeError:
                return None

    def convert(self, kind: str, nprobe: int) -> None:
        """Rebuild this index as another kind from the vectors it holds (exact -> approximate)."""
        with self._lock:
            ids = self.ids()
            vectors = np.vstack([self._index.reconstruct(int(pk)) for pk in ids]) if len(
                ids) else np.zeros((0, self.dimension), np.float32)
            with _all_cores():
                self._index = (new_faiss_index(kind, self.dimension) if kind == "flat"
                               else build_approximate(kind, ids, vectors, nprobe))
            if kind == "flat" and len(ids):
                self._index.add_with_ids(vectors, ids)
            self.kind = kind
            self.unsaved = max(len(ids), 1)

    def set_nprobe(self, nprobe: int) -> None:
        """How many inverted lists an approximate search visits (more: slower, better recall)."""
        if hasattr(self._index, "nprobe"):
            self._index.nprobe = nprobe

    def meta(self, checksum: str = "") -> IndexMeta:
        """A description of what the index holds now."""
        return IndexMeta(self.embedder, self.dimension, self.kind, len(self),
                         self.high_water_mark, self.store_id, self.revision,
                         tuple(sorted(self.skipped)), checksum)

    def search_excluding(self, vector: np.ndarray, k: int, excluded: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for one query among the vectors whose ids are not excluded."""
        import faiss

        if len(excluded) == 0:
            return self.search(vector, k)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dimension)
        # Both selectors stay referenced here: SWIG does not keep the inner one alive.
        batch = faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64))
        selector = faiss.IDSelectorNot(batch)
        with self._lock:
            if self._index.ntotal == 0:
                return np.zeros((1, k), np.float32), np.full((1, k), -1, np.int64)
            params: Any
            if hasattr(self._index, "nprobe"):
                params = faiss.SearchParametersIVF()
                params.nprobe = self._index.nprobe
            else:
                params = faiss.SearchParameters()
            params.sel = selector
            scores, ids = self._index.search(query, min(k, int(self._index.ntotal)),
                                             params=params)
        return scores, ids

    def save_snapshot(self, directory: Path) -> IndexMeta:
        """Write the snapshot as one file, atomically (temp file, fsync, rename)."""
        import faiss

        private_directory(directory)
        with self._lock:
            serialized = faiss.serialize_index(self._index)
            meta = self.meta(hashlib.sha256(serialized.data).hexdigest())
            self.unsaved = 0
        header = json.dumps(asdict(meta)).encode()
        temp = directory / f".{SNAPSHOT_FILE}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            _write_synced(temp, SNAPSHOT_MAGIC, _HEADER_LENGTH.pack(len(header)), header,
                          serialized.data)
            os.replace(temp, directory / SNAPSHOT_FILE)
        except BaseException:
            temp.unlink(missing_ok=True)  # a full disk leaves no half-written temp behind
            raise
        for legacy in LEGACY_SNAPSHOT_FILES:
            (directory / legacy).unlink(missing_ok=True)
        fsync_path(directory)
        return meta

    @classmethod
    def load_snapshot(cls, directory: Path, embedder: str, dimension: int) -> VectorIndex | None:
        """Load the snapshot if there is a sound one for this embedder; None otherwise."""
        return cls.open_snapshot(directory, embedder, dimension)[0]

    @classmethod
    def open_snapshot(cls, directory: Path, embedder: str, dimension: int
                      ) -> tuple[VectorIndex | None, str | None]:
        """The snapshot's index, or None and why it cannot be used (None: there is none)."""
        import faiss

        path = directory / SNAPSHOT_FILE
        if not path.exists():
            return None, None
        try:
            with open(path, "rb") as handle:
                meta = _read_header(handle)
                if meta.format != SNAPSHOT_FORMAT:
                    return None, f"format {meta.format}, not {SNAPSHOT_FORMAT}"
                if (meta.embedder, meta.dimension) != (embedder, dimension):
                    return None, (f"made by embedder {meta.embedder!r} "
                                  f"(dimension {meta.dimension})")
                digest = hashlib.sha256()

                def read(size: int) -> bytes:
                    chunk = handle.read(size)
                    digest.update(chunk)
                    return chunk

                # One pass over one open file: FAISS reads the bytes the checksum covers.
                # (faiss's bundled stub omits PyCallbackIOReader, which the module exports.)
                reader = faiss.PyCallbackIOReader(read, READ_CHUNK)  # type: ignore[attr-defined]
                faiss_index = faiss.read_index(reader)
        except (OSError, ValueError, TypeError, KeyError, struct.error) as error:
            return None, f"unreadable ({error})"
        except RuntimeError as error:
            return None, f"unreadable index ({str(error).strip().splitlines()[0]})"
        if not hmac.compare_digest(digest.hexdigest(), meta.checksum):
            return None, "its index bytes do not match their checksum"
        if faiss_index.d != dimension or faiss_index.ntotal != meta.count:
            return None, (f"it holds {faiss_index.ntotal} vectors of dimension {faiss_index.d}, "
                          f"its header says {meta.count} of {meta.dimension}")
        return cls(embedder, dimension, meta.kind, faiss_index, meta.high_water_mark,
                   meta.store_id, meta.revision, meta.skipped), None


def _read_header(handle: BinaryIO) -> IndexMeta:
    """The header of a snapshot file, leaving the handle at the FAISS bytes."""
    if handle.read(len(SNAPSHOT_MAGIC)) != SNAPSHOT_MAGIC:
        raise ValueError("not an incidex vector snapshot")
    (length,) = _HEADER_LENGTH.unpack(handle.read(_HEADER_LENGTH.size))
    document = json.loads(handle.read(length))
    document["skipped"] = tuple(int(pk) for pk in document.get("skipped", ()))
    return IndexMeta(**document)


@lru_cache(maxsize=1)
def _single_threaded_search() -> None:
    """One query at a time is fastest on one thread: OpenMP's hand-offs cost more than the
    scan of one query saves, and the TUI runs its queries from several workers."""
    import faiss

    faiss.omp_set_num_threads(1)


@contextmanager
def _all_cores() -> Iterator[None]:
    """Training and bulk adds do use every core."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


def new_faiss_index(kind: str, dimension: int) -> Any:
    """An empty exact index with analysis ids as labels (approximate ones need training)."""
    import faiss

    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    raise ValueError(f"index kind {kind!r} needs training vectors: use build_approximate()")


def build_approximate(kind: str, ids: np.ndarray, vectors: np.ndarray, nprobe: int,
                      seed: int = 1234) -> Any:
    """An inverted-file index trained on (a sample of) the vectors, holding all of them.

    kind "ivf" keeps full float vectors in the lists; "ivf-sq8" keeps 8-bit codes
    (a quarter of the memory). nlist grows with the square root of the count.
    """
    import faiss

    count, dimension = vectors.shape
    nlist = int(min(16384, max(64, 2 ** round(np.log2(4 * np.sqrt(count))))))
    quantizer = faiss.IndexFlatIP(dimension)
    index: faiss.IndexIVF
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    elif kind == "ivf-sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, dimension, nlist,
                                              faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"unknown approximate index kind {kind!r}")
    sample_size = min(count, nlist * 64)
    sample = np.random.default_rng(seed).choice(count, size=sample_size, replace=False)
    index.cp.seed = seed
    index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    # faiss exposes this C char as a one-character string.
    index.quantizer_trains_alone = "\x00"
    # faiss's bundled stub omits DirectMap, which the module does export.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(ids, np.int64))
    index.nprobe = nprobe
    return index


def _write_synced(path: Path, *parts: Any) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with open(descriptor, "wb") as handle:
        for part in parts:
            handle.write(part)
        handle.flush()
        os.fsync(handle.fileno())
