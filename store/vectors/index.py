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
SNAPSHOT_FORMAT = 3  # 3: the header carries the approximate index's measured recall
SNAPSHOT_MAGIC = b"INCIDEX-VECTORS\n"
_HEADER_LENGTH = struct.Struct("<I")
READ_CHUNK = 1 << 24
RECALL_QUERIES = 200  # the store's own vectors asked of both indexes when one is built
RECALL_K = 10
# Aimed at above the recall asked for: on RECALL_QUERIES queries the measurement's standard
# error is about 0.007, and 1,000 other queries must still find min_recall.
RECALL_MARGIN = 0.015
HNSW_LINKS = 32  # graph neighbours per vector (M): 256 bytes of links per vector at 1M
HNSW_BUILD_BREADTH = 80  # efConstruction: at 40, 200k prose vectors needed efSearch 256 for 0.95
HNSW_SEARCH_BREADTHS = (32, 64, 128, 256, 512)  # efSearch tried, narrowest first
IVF_PROBE_STEPS = 4  # an IVF index doubles its nprobe at most this many times
_LIVE_IDS = (0, 1 << 62)  # analysis ids; a graph node whose vector was removed is labelled -1


@dataclass(frozen=True, slots=True)
class RecallCheck:
    """What an approximate index found on the store's own vectors when it was built.

    recall is its recall@10 against exact search for RECALL_QUERIES of the vectors it holds,
    at the search breadth chosen (efSearch for "hnsw", nprobe for "ivf" kinds); count is how
    many vectors it held then. Kept in the snapshot header, shown by `incidex verify`.
    """

    kind: str
    recall: float
    breadth: int
    count: int
    queries: int = RECALL_QUERIES

    def describe(self) -> str:
        """One line for people: what was measured, on what."""
        breadth = "efSearch" if self.kind == "hnsw" else "nprobe"
        return (f"{self.kind} recall@{RECALL_K} {self.recall:.3f} against exact, measured on "
                f"{self.queries} of its own {self.count:,} vectors ({breadth} {self.breadth})")


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
    recall_check: RecallCheck | None = None


class VectorIndex:
    """Vectors keyed by analysis primary key; exact inner product, or approximate at scale.

    Thread-safe: the TUI searches from one worker while another adds vectors. An "hnsw"
    graph cannot delete a node: a removed or replaced vector's node is relabelled -1 and
    stays as a waypoint that searches pass through but never return.
    """

    def __init__(self, embedder: str, dimension: int, kind: str = "flat",
                 faiss_index: Any | None = None, high_water_mark: int = 0,
                 store_id: str = "", revision: str = "",
                 skipped: Iterable[int] = (), recall_check: RecallCheck | None = None) -> None:
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
        # The last recall measurement of an approximate build (kept when auto stayed exact).
        self.recall_check = recall_check
        self._lock = threading.RLock()
        self._index = faiss_index if faiss_index is not None else new_faiss_index(kind, dimension)
        self._retired = int((self._labels() < 0).sum()) if kind == "hnsw" else 0
        self.unsaved = 0  # vectors changed since the last snapshot
        self.replaces_snapshot = False  # the snapshot on disk was set aside: rewrite it soon

    def __len__(self) -> int:
        return int(self._index.ntotal) - self._retired

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
            self._remove(ids)
            if self.kind == "hnsw" and len(ids) > 1000:
                with _all_cores():  # a catch-up's thousands of graph inserts
                    self._index.add_with_ids(vectors, ids)
            else:
                self._index.add_with_ids(vectors, ids)
            if high_water_mark is not None:
                self.high_water_mark = max(self.high_water_mark, high_water_mark)
            self.unsaved += len(ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by analysis id; returns how many were there."""
        with self._lock:
            removed = self._remove(np.ascontiguousarray(ids, dtype=np.int64))
            self.unsaved += removed
            return removed

    def _remove(self, ids: np.ndarray) -> int:
        """Take these ids out of search (a graph relabels their nodes); how many were held."""
        if self.kind != "hnsw":
            return int(self._index.remove_ids(ids))
        labels = self._labels()
        held = np.isin(labels, ids)
        count = int(held.sum())
        if count:
            labels[held] = -1
            self._index.construct_rev_map()
            self._retired += count
        return count

    def _labels(self) -> np.ndarray:
        """The analysis id of each stored vector, in storage order (a view: writes go through)."""
        import faiss

        id_map = self._index.id_map
        if id_map.size() == 0:
            return np.zeros(0, np.int64)
        return faiss.rev_swig_ptr(id_map.data(), id_map.size())

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; missing slots have id -1."""
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        with self._lock:
            if len(self) == 0:
                empty = np.full((len(queries), k), -1, dtype=np.int64)
                return np.zeros((len(queries), k), dtype=np.float32), empty
            params, _alive = self._search_parameters(None)
            scores, ids = self._index.search(queries, min(k, len(self)), params=params)
        return scores, ids

    def _search_parameters(self, selector: Any) -> tuple[Any, list[Any]]:
        """FAISS search parameters of this kind, with the selector (and the live-id one a graph
        with retired nodes needs); also the selectors, which the caller keeps referenced
        while it searches, since SWIG does not keep inner selectors alive."""
        import faiss

        alive = [selector]
        if self.kind == "hnsw" and self._retired:
            live = faiss.IDSelectorRange(*_LIVE_IDS)
            alive.append(live)
            selector = live if selector is None else faiss.IDSelectorAnd(live, selector)
            alive.append(selector)
        if selector is None:
            return None, alive  # the index's own breadth, no filter
        params: Any
        if self.kind == "hnsw":
            # faiss's bundled stub omits SearchParametersHNSW, which the module exports.
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = self.breadth
        elif hasattr(self._index, "nprobe"):
            params = faiss.SearchParametersIVF()
            params.nprobe = self._index.nprobe
        else:
            params = faiss.SearchParameters()
        params.sel = selector
        return params, alive

    def ids(self) -> np.ndarray:
        """Every analysis id the index holds."""
        import faiss

        with self._lock:
            if hasattr(self._index, "id_map"):
                labels = self._labels()
                return labels[labels >= 0].astype(np.int64)
            invlists = self._index.invlists
            chunks = [faiss.rev_swig_ptr(invlists.get_ids(number), invlists.list_size(number))
                      .copy() for number in range(self._index.nlist)
                      if invlists.list_size(number)]
            return np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.zeros(
                0, np.int64)

    def vector(self, analysis_pk: int) -> np.ndarray | None:
        """The stored vector of one analysis, or None."""
        if analysis_pk < 0:
            return None
        with self._lock:
            try:
                return np.asarray(self._index.reconstruct(int(analysis_pk)), dtype=np.float32)
            except RuntimeError:
                return None

    def convert(self, kind: str, breadth: int, min_recall: float = 0.0,
                exact_if_short: bool = False) -> RecallCheck | None:
        """Rebuild this index as another kind from the vectors it holds; returns the recall
        an approximate kind measured on them (None for exact).

        An approximate kind widens its search (efSearch, nprobe) until its recall@10 against
        exact search reaches min_recall; if even its widest search falls short and
        exact_if_short is set, the index is rebuilt exact instead, and the measurement is
        kept to say why.
        """
        with self._lock:
            ids, vectors = self._all_vectors()
            self._index = None  # its memory goes before the new index takes as much
            with _all_cores():
                if kind == "flat":
                    self.recall_check = None
                    self._become_exact(ids, vectors)
                    return None
                self._index = build_approximate(kind, ids, vectors, breadth)
                self.kind = kind
                self._retired = 0
                check = tune_breadth(self, ids, vectors, breadth, min_recall)
                self.recall_check = check
                if exact_if_short and check.recall < min_recall:
                    self._index = None
                    self._become_exact(ids, vectors)
            self.unsaved = max(len(ids), 1)
            return check

    def _become_exact(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Hold these vectors in an exact index."""
        self._index = new_faiss_index("flat", self.dimension)
        if len(ids):
            self._index.add_with_ids(vectors, ids)
        self.kind = "flat"
        self._retired = 0
        self.unsaved = max(len(ids), 1)

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything held, read in one pass where the kind allows."""
        import faiss

        if hasattr(self._index, "id_map"):
            labels = self._labels().copy()
            inner = faiss.downcast_index(self._index.index)
            vectors = inner.reconstruct_n(0, inner.ntotal) if len(labels) else np.zeros(
                (0, self.dimension), np.float32)
            live = labels >= 0
            return labels[live], (vectors if live.all() else vectors[live])
        ids = self.ids()
        vectors = np.vstack([self._index.reconstruct(int(pk)) for pk in ids]) if len(
            ids) else np.zeros((0, self.dimension), np.float32)
        return ids, vectors

    @property
    def breadth(self) -> int:
        """How widely an approximate search looks: efSearch of a graph, nprobe of lists."""
        if self.kind == "hnsw":
            return int(self._graph().efSearch)
        return int(getattr(self._index, "nprobe", 0))

    def _graph(self) -> Any:
        """The HNSW structure inside an "hnsw" index (its search and build parameters)."""
        import faiss

        inner: Any = faiss.downcast_index(self._index.index)
        return inner.hnsw

    def breadths_from(self, breadth: int) -> list[int]:
        """The search breadths a recall check tries, narrowest first, from this one."""
        if self.kind == "hnsw":
            return [width for width in HNSW_SEARCH_BREADTHS if width >= breadth] or [breadth]
        nlist = int(getattr(self._index, "nlist", breadth))
        return sorted({min(breadth << step, nlist) for step in range(IVF_PROBE_STEPS + 1)})

    def set_breadth(self, breadth: int) -> None:
        """Set efSearch (graph) or nprobe (lists): wider is slower and finds more."""
        if self.kind == "hnsw":
            self._graph().efSearch = breadth
        elif hasattr(self._index, "nprobe"):
            self._index.nprobe = breadth

    def set_nprobe(self, nprobe: int) -> None:
        """How many inverted lists an approximate search visits (more: slower, better recall);
        never fewer than the recall check chose."""
        if hasattr(self._index, "nprobe"):
            chosen = self.recall_check.breadth if (
                self.recall_check and self.recall_check.kind == self.kind) else 0
            self._index.nprobe = max(nprobe, chosen)

    def meta(self, checksum: str = "") -> IndexMeta:
        """A description of what the index holds now."""
        return IndexMeta(self.embedder, self.dimension, self.kind, len(self),
                         self.high_water_mark, self.store_id, self.revision,
                         tuple(sorted(self.skipped)), checksum,
                         recall_check=self.recall_check)

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
            if len(self) == 0:
                return np.zeros((1, k), np.float32), np.full((1, k), -1, np.int64)
            params, _alive = self._search_parameters(selector)
            scores, ids = self._index.search(query, min(k, len(self)), params=params)
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
        if faiss_index.d != dimension:
            return None, (f"it holds vectors of dimension {faiss_index.d}, its header says "
                          f"{meta.dimension}")
        index = cls(embedder, dimension, meta.kind, faiss_index, meta.high_water_mark,
                    meta.store_id, meta.revision, meta.skipped, meta.recall_check)
        if len(index) != meta.count:
            return None, f"it holds {len(index)} vectors, its header says {meta.count}"
        return index, None


def _read_header(handle: BinaryIO) -> IndexMeta:
    """The header of a snapshot file, leaving the handle at the FAISS bytes."""
    if handle.read(len(SNAPSHOT_MAGIC)) != SNAPSHOT_MAGIC:
        raise ValueError("not an incidex vector snapshot")
    (length,) = _HEADER_LENGTH.unpack(handle.read(_HEADER_LENGTH.size))
    document = json.loads(handle.read(length))
    document["skipped"] = tuple(int(pk) for pk in document.get("skipped", ()))
    if document.get("recall_check") is not None:
        document["recall_check"] = RecallCheck(**document["recall_check"])
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


def build_approximate(kind: str, ids: np.ndarray, vectors: np.ndarray, breadth: int,
                      seed: int = 1234) -> Any:
    """An approximate index holding all the vectors, searching at this breadth.

    "hnsw" is a graph over the full float vectors (HNSW_LINKS neighbours each), whose
    efSearch is the breadth; "ivf" and "ivf-sq8" are inverted files, trained on a sample,
    with full vectors or 8-bit codes (a quarter of the memory), and nprobe as the breadth.
    """
    import faiss

    if kind == "hnsw":
        graph = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_BUILD_BREADTH
        graph.hnsw.efSearch = breadth
        index = faiss.IndexIDMap2(graph)
        index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(ids, np.int64))
        return index
    return _build_inverted_file(kind, ids, vectors, breadth, seed)


def _build_inverted_file(kind: str, ids: np.ndarray, vectors: np.ndarray, nprobe: int,
                         seed: int) -> Any:
    """An inverted-file index trained on (a sample of) the vectors; nlist grows with the
    square root of the count."""
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


def tune_breadth(index: VectorIndex, ids: np.ndarray, vectors: np.ndarray, breadth: int,
                 min_recall: float, seed: int = 1234) -> RecallCheck:
    """Measure the index's recall@10 against exact search on RECALL_QUERIES of its own
    vectors, widening its search until it reaches min_recall (with RECALL_MARGIN to spare)
    or the widest was tried.

    The exact answers come from one brute-force pass over the vectors in hand (the build
    has them anyway); the queries are the store's own analyses, so the figure is the one
    its analysts meet, not the demo data's.
    """
    import faiss

    count = len(ids)
    k = min(RECALL_K, count)
    rows = np.sort(np.random.default_rng(seed).choice(count, min(RECALL_QUERIES, count),
                                                      replace=False))
    queries = np.ascontiguousarray(vectors[rows])
    _, positions = faiss.knn(queries, vectors, k, faiss.METRIC_INNER_PRODUCT)
    truth = ids[positions]
    check = RecallCheck(index.kind, 0.0, breadth, count, len(rows))
    for width in index.breadths_from(breadth):
        index.set_breadth(width)
        _, found = index.search(queries, k)
        recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k
                                for a, b in zip(found, truth, strict=True)]))
        check = RecallCheck(index.kind, round(recall, 4), width, count, len(rows))
        if recall >= min_recall + RECALL_MARGIN:
            break
    index.set_breadth(check.breadth)
    return check


def _write_synced(path: Path, *parts: Any) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with open(descriptor, "wb") as handle:
        for part in parts:
            handle.write(part)
        handle.flush()
        os.fsync(handle.fileno())
