"""The in-memory FAISS index of analysis vectors, and its snapshots on disk (no pickle)."""

from __future__ import annotations

import hashlib
import hmac
import json
import mmap
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from store.errors import EmbedderMismatch
from store.fileio import PRIVATE_FILE_MODE, fsync_path, private_directory

SNAPSHOT_FILE = "vectors.snapshot"
LEGACY_SNAPSHOT_FILES = ("vectors.faiss", "vectors.json")
# 3: the header carries the approximate index's measured recall; 4: the FAISS bytes' length,
# then (for "hnsw-sq8") the float vectors in graph order after them, mapped, not read, at load
SNAPSHOT_FORMAT = 4
SNAPSHOT_MAGIC = b"INCIDEX-VECTORS\n"
_HEADER_LENGTH = struct.Struct("<I")
READ_CHUNK = 1 << 24
RECALL_QUERIES = 1000  # the store's own vectors asked of both indexes when one is built
RECALL_K = 10
# A breadth is taken when its measured recall is this many standard errors (of the mean over
# the queries) above the recall asked for: about 0.006 over 1,000 prose-like queries, where
# 200 queries needed a margin of 0.015, which at 1,000,000 vectors cost efSearch 512.
RECALL_STANDARD_ERRORS = 2.0
HNSW_LINKS = 32  # graph neighbours per vector (M): 256 bytes of links per vector at 1M
# The graph kinds: "hnsw" keeps the float vectors (2 KB each at 512 dimensions), "hnsw-sq8"
# one byte per dimension (scalar codes, a quarter of the memory and of the snapshot).
GRAPH_KINDS = ("hnsw", "hnsw-sq8")
SQ_TRAINING_SAMPLE = 100_000  # vectors the 8-bit codes' per-dimension ranges are learnt from
# "hnsw-sq8" walks its graph by 8-bit codes, then re-ranks this many times k candidates (at
# least RERANK_MIN) by their exact float scores: the codes alone lose neighbours whose
# scores differ by less than a step (0.94 recall@10 on clustered test vectors, 1.0 re-ranked).
# On 200,000 prose-like vectors twice k found as many as four times k (bench/prose_scale.py).
RERANK_FACTOR = 2
RERANK_MIN = 40
POSITION_SCAN = 4096  # nodes added since the labels were last sorted, scanned for one vector
FLOAT_KINDS = ("hnsw-sq8",)  # kinds whose snapshot carries the float vectors after the index
# What `auto` builds from INDEX_APPROXIMATE_FROM vectors (and serves only if its recall holds):
# on 1,000,000 prose-like vectors (bench/prose_scale.py) the float graph's 2 GB snapshot took
# 13.6 s to load; the 8-bit graph reads a third of that and maps the floats it re-ranks by.
AUTO_APPROXIMATE_KIND = "hnsw-sq8"
# efConstruction. Each node keeps up to 2 * HNSW_LINKS neighbours on the bottom layer, chosen
# from this many candidates: at 80 there is hardly a choice. On 200,000 prose-like vectors
# (bench/prose_scale.py) 160 gave recall@10 0.989 at efSearch 32 where 80 gave 0.956 (and
# needed 128 for 0.965), for a build about a third longer; at 40 it needed efSearch 256.
HNSW_BUILD_BREADTH = 160
# efSearch tried, narrowest first; a search's time grows with it, so the rungs between the
# doubles let a recall check stop at, say, 384 where 512 would cost a third more
HNSW_SEARCH_BREADTHS = (32, 48, 64, 96, 128, 192, 256, 384, 512)
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
        breadth = "efSearch" if self.kind in GRAPH_KINDS else "nprobe"
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
    index_bytes: int = 0  # length of the FAISS bytes; the float rows (if any) follow them
    float_rows: int = 0  # float vectors after the index bytes, one per graph node
    float_checksum: str = ""  # sha256 of those rows (checked by verify, not at every load)


class FloatRows:
    """The float vectors of an 8-bit graph, one row per graph node in node order: the rows
    of the snapshot file, memory-mapped (read only as searches touch them), then the rows
    added since in memory."""

    def __init__(self, base: np.ndarray) -> None:
        self.base = base
        self._tail = np.zeros((0, base.shape[1]), np.float32)
        self._tail_rows = 0

    def __len__(self) -> int:
        return len(self.base) + self._tail_rows

    def append(self, rows: np.ndarray) -> None:
        """Add rows after the last (room doubles, so adds cost no copy of what is held)."""
        needed = self._tail_rows + len(rows)
        if needed > len(self._tail):
            grown = np.empty((max(needed, 2 * len(self._tail), 64), self._tail.shape[1]),
                             np.float32)
            grown[: self._tail_rows] = self._tail[: self._tail_rows]
            self._tail = grown
        self._tail[self._tail_rows : needed] = rows
        self._tail_rows = needed

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The rows at these node positions."""
        split = len(self.base)
        if self._tail_rows == 0 or (positions < split).all():
            return np.asarray(self.base[positions])
        rows = np.empty((len(positions), self.base.shape[1]), np.float32)
        low = positions < split
        rows[low] = self.base[positions[low]]
        rows[~low] = self._tail[positions[~low] - split]
        return rows

    def view(self) -> FloatRows:
        """The rows held now, unchanged by later appends."""
        frozen = FloatRows(self.base)
        frozen._tail = self._tail[: self._tail_rows]
        frozen._tail_rows = self._tail_rows
        return frozen

    def chunks(self, size: int = 1 << 16) -> Iterator[np.ndarray]:
        """Every row in order, a bounded block at a time (for writing a snapshot)."""
        for start in range(0, len(self.base), size):
            yield np.ascontiguousarray(self.base[start : start + size])
        if self._tail_rows:
            yield self._tail[: self._tail_rows]

    def all(self) -> np.ndarray:
        """Every row, in memory."""
        return np.concatenate(list(self.chunks())) if len(self) else self.base[:0].copy()


class VectorIndex:
    """Vectors keyed by analysis primary key; exact inner product, or approximate at scale.

    Thread-safe: the TUI searches from one worker while another adds vectors. An "hnsw"
    graph cannot delete a node: a removed or replaced vector's node is relabelled -1 and
    stays as a waypoint that searches pass through but never return.
    """

    def __init__(self, embedder: str, dimension: int, kind: str = "flat",
                 faiss_index: Any | None = None, high_water_mark: int = 0,
                 store_id: str = "", revision: str = "",
                 skipped: Iterable[int] = (), recall_check: RecallCheck | None = None,
                 floats: np.ndarray | None = None) -> None:
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
        # The float vectors an 8-bit graph re-ranks its candidates by (None for other kinds),
        # and its labels sorted, with their node positions, for finding one vector's row.
        self._floats: FloatRows | None = None
        self._by_label = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        # The snapshot bytes a loaded 8-bit graph reads in place (None once it owns a copy).
        self._mapped: np.ndarray | None = None
        if kind in FLOAT_KINDS:
            if floats is None or len(floats) != self._index.ntotal:
                raise ValueError(f"an {kind!r} index needs the float vector of each node")
            self._floats = FloatRows(floats)
        self._retired = int((self._labels() < 0).sum()) if kind in GRAPH_KINDS else 0
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
            self._own()
            self._remove(ids)
            if self.kind in GRAPH_KINDS and len(ids) > 1000:
                with _all_cores():  # a catch-up's thousands of graph inserts
                    self._index.add_with_ids(vectors, ids)
            else:
                self._index.add_with_ids(vectors, ids)
            if self._floats is not None:
                self._floats.append(vectors)
            if high_water_mark is not None:
                self.high_water_mark = max(self.high_water_mark, high_water_mark)
            self.unsaved += len(ids)

    def _own(self) -> None:
        """Copy an index read in place from its snapshot into memory before it grows: FAISS
        cannot resize the mapped codes and links (it aborts). Once per process, on the first
        add after a load; the id map, relabels included, goes with it."""
        import faiss

        if self._mapped is not None:
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
            self._mapped = None

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by analysis id; returns how many were there."""
        with self._lock:
            removed = self._remove(np.ascontiguousarray(ids, dtype=np.int64))
            self.unsaved += removed
            return removed

    def _remove(self, ids: np.ndarray) -> int:
        """Take these ids out of search (a graph relabels their nodes); how many were held."""
        if self.kind not in GRAPH_KINDS:
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
            return self._search(queries, min(k, len(self)), None)

    def _search(self, queries: np.ndarray, k: int, selector: Any) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of each query among the ids the selector (None: all) lets through."""
        if self._floats is None:
            params, _alive = self._search_parameters(selector)
            return self._index.search(queries, k, params=params)  # type: ignore[no-any-return]
        return self._reranked(queries, k, selector)

    def _reranked(self, queries: np.ndarray, k: int, selector: Any
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the graph of 8-bit codes, ordered by their exact float scores.

        The graph is searched for node positions (not ids), which index the float rows; the
        id selector is translated to positions the way the id map itself does it.
        """
        import faiss

        wide = min(max(k * RERANK_FACTOR, RERANK_MIN), len(self))
        params, alive = self._search_parameters(selector, force=True)
        params.efSearch = max(params.efSearch, wide)
        if params.sel is not None:
            translated = faiss.IDSelectorTranslated(self._index.id_map, params.sel)
            alive.append(translated)
            params.sel = translated
        inner = faiss.downcast_index(self._index.index)
        _, positions = inner.search(queries, wide, params=params)
        labels = self._labels()
        assert self._floats is not None
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, (query, found) in enumerate(zip(queries, positions, strict=True)):
            found = found[found >= 0]
            exact = self._floats.take(found) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            scores[row, : len(best)] = exact[best]
            ids[row, : len(best)] = labels[found[best]]
        return scores, ids

    def _search_parameters(self, selector: Any, force: bool = False) -> tuple[Any, list[Any]]:
        """FAISS search parameters of this kind, with the selector (and the live-id one a graph
        with retired nodes needs); also the selectors, which the caller keeps referenced
        while it searches, since SWIG does not keep inner selectors alive."""
        import faiss

        alive = [selector]
        if self.kind in GRAPH_KINDS and self._retired:
            live = faiss.IDSelectorRange(*_LIVE_IDS)
            alive.append(live)
            selector = live if selector is None else faiss.IDSelectorAnd(live, selector)
            alive.append(selector)
        if selector is None and not force:
            return None, alive  # the index's own breadth, no filter
        params: Any
        if self.kind in GRAPH_KINDS:
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
                held = np.asarray(self._index.reconstruct(int(analysis_pk)), dtype=np.float32)
            except RuntimeError:
                return None
            if self._floats is None:
                return held
            position = self._position(analysis_pk)
            if position is None:
                return None
            return self._floats.take(np.array([position]))[0]  # exact, not its codes

    def _position(self, analysis_pk: int) -> int | None:
        """The graph node holding this analysis's live vector (a search of the labels sorted
        once, then a scan of the nodes added since; a retired node is labelled -1)."""
        labels = self._labels()
        sorted_labels, order = self._by_label
        if len(labels) - len(order) > POSITION_SCAN:
            order = np.argsort(labels, kind="stable")
            sorted_labels = labels[order]
            self._by_label = (sorted_labels, order)
        newer = np.flatnonzero(labels[len(order):] == analysis_pk)
        if len(newer):
            return len(order) + int(newer[-1])
        at = int(np.searchsorted(sorted_labels, analysis_pk))
        if at < len(order) and sorted_labels[at] == analysis_pk:
            position = int(order[at])
            return position if labels[position] == analysis_pk else None
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
            self._mapped = None
            with _all_cores():
                if kind == "flat":
                    self.recall_check = None
                    self._become_exact(ids, vectors)
                    return None
                self._floats = None
                self._index = build_approximate(kind, ids, vectors, breadth)
                self.kind = kind
                self._retired = 0
                if kind in FLOAT_KINDS:
                    self._floats = FloatRows(vectors)
                    self._by_label = (np.zeros(0, np.int64), np.zeros(0, np.int64))
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
        self._floats = None
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
            if self._floats is not None:
                vectors = self._floats.all()  # the exact vectors, not their 8-bit codes
            elif len(labels):
                vectors = inner.reconstruct_n(0, inner.ntotal)
            else:
                vectors = np.zeros((0, self.dimension), np.float32)
            live = labels >= 0
            return labels[live], (vectors if live.all() else vectors[live])
        ids = self.ids()
        vectors = np.vstack([self._index.reconstruct(int(pk)) for pk in ids]) if len(
            ids) else np.zeros((0, self.dimension), np.float32)
        return ids, vectors

    @property
    def breadth(self) -> int:
        """How widely an approximate search looks: efSearch of a graph, nprobe of lists."""
        if self.kind in GRAPH_KINDS:
            return int(self._graph().efSearch)
        return int(getattr(self._index, "nprobe", 0))

    def _graph(self) -> Any:
        """The HNSW structure inside a graph index (its search and build parameters)."""
        import faiss

        inner: Any = faiss.downcast_index(self._index.index)
        return inner.hnsw

    def breadths_from(self, breadth: int) -> list[int]:
        """The search breadths a recall check tries, narrowest first, from this one."""
        if self.kind in GRAPH_KINDS:
            return [width for width in HNSW_SEARCH_BREADTHS if width >= breadth] or [breadth]
        nlist = int(getattr(self._index, "nlist", breadth))
        return sorted({min(breadth << step, nlist) for step in range(IVF_PROBE_STEPS + 1)})

    def set_breadth(self, breadth: int) -> None:
        """Set efSearch (graph) or nprobe (lists): wider is slower and finds more."""
        if self.kind in GRAPH_KINDS:
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
                         recall_check=self.recall_check,
                         float_rows=len(self._floats) if self._floats is not None else 0)

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
            return self._search(query, min(k, len(self)), selector)

    def save_snapshot(self, directory: Path) -> IndexMeta:
        """Write the snapshot as one file, atomically (temp file, fsync, rename)."""
        import faiss

        private_directory(directory)
        with self._lock:
            serialized = faiss.serialize_index(self._index)
            # Rows up to here never change: the copy is written outside the lock.
            floats = self._floats.view() if self._floats is not None else None
            meta = self.meta()  # what was serialized, whatever is added while it is written
            self.unsaved = 0
        float_digest = hashlib.sha256()
        for chunk in floats.chunks() if floats is not None else ():
            float_digest.update(chunk.data)
        meta = replace(meta, checksum=hashlib.sha256(serialized.data).hexdigest(),
                       index_bytes=len(serialized),
                       float_checksum=float_digest.hexdigest() if floats is not None else "")
        header = json.dumps(asdict(meta)).encode()
        temp = directory / f".{SNAPSHOT_FILE}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            _write_synced(temp, SNAPSHOT_MAGIC, _HEADER_LENGTH.pack(len(header)), header,
                          serialized.data,
                          *(chunk.data for chunk in (floats.chunks() if floats else ())))
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
                index_start = handle.tell()
                if meta.format != SNAPSHOT_FORMAT:
                    return None, f"format {meta.format}, not {SNAPSHOT_FORMAT}"
                if (meta.embedder, meta.dimension) != (embedder, dimension):
                    return None, (f"made by embedder {meta.embedder!r} "
                                  f"(dimension {meta.dimension})")
                mapped = None
                if meta.kind in FLOAT_KINDS:
                    mapped = _mapped_index_bytes(path, index_start, meta)
                    if not hmac.compare_digest(hashlib.sha256(mapped.data).hexdigest(),
                                               meta.checksum):
                        return None, "its index bytes do not match their checksum"
                    faiss_index = _read_in_place(mapped)
                    handle.seek(meta.index_bytes, os.SEEK_CUR)
                else:
                    digest = hashlib.sha256()

                    def read(size: int) -> bytes:
                        chunk = handle.read(size)
                        digest.update(chunk)
                        return chunk

                    # One pass over one open file: FAISS reads the bytes the checksum covers.
                    # (faiss's bundled stub omits PyCallbackIOReader, which the module has.)
                    reader = faiss.PyCallbackIOReader(  # type: ignore[attr-defined]
                        read, READ_CHUNK)
                    faiss_index = faiss.read_index(reader)
                    if not hmac.compare_digest(digest.hexdigest(), meta.checksum):
                        return None, "its index bytes do not match their checksum"
                floats = _mapped_floats(path, handle.tell(), handle.tell() - index_start, meta)
        except (OSError, ValueError, TypeError, KeyError, struct.error) as error:
            return None, f"unreadable ({error})"
        except RuntimeError as error:
            return None, f"unreadable index ({str(error).strip().splitlines()[0]})"
        if faiss_index.d != dimension:
            return None, (f"it holds vectors of dimension {faiss_index.d}, its header says "
                          f"{meta.dimension}")
        if meta.kind in FLOAT_KINDS and (floats is None or len(floats) != faiss_index.ntotal):
            return None, (f"it holds {0 if floats is None else len(floats):,} float vectors "
                          f"for {faiss_index.ntotal:,} graph nodes")
        index = cls(embedder, dimension, meta.kind, faiss_index, meta.high_water_mark,
                    meta.store_id, meta.revision, meta.skipped, meta.recall_check, floats)
        index._mapped = mapped
        if len(index) != meta.count:
            return None, f"it holds {len(index)} vectors, its header says {meta.count}"
        return index, None


def _mapped_index_bytes(path: Path, start: int, meta: IndexMeta) -> np.ndarray:
    """A snapshot's index bytes, memory-mapped read-only."""
    if start + meta.index_bytes > path.stat().st_size:
        raise ValueError(f"the file is shorter than its header's {meta.index_bytes:,} index "
                         "bytes")
    return np.memmap(path, np.uint8, "r", offset=start, shape=(meta.index_bytes,))


def _read_in_place(mapped: np.ndarray) -> Any:
    """The index whose codes and graph links are these mapped bytes themselves (no copy: the
    load reads only what the checksum reads); its id map is copied. It must never grow in
    place (FAISS aborts the process): VectorIndex._own() copies it first."""
    import faiss

    # faiss's bundled stub omits ZeroCopyIOReader, which the module exports.
    reader = faiss.ZeroCopyIOReader(  # type: ignore[attr-defined]
        faiss.swig_ptr(mapped), mapped.size)
    return faiss.read_index(reader, faiss.IO_FLAG_MMAP_IFC)


def _mapped_floats(path: Path, index_end: int, index_bytes: int, meta: IndexMeta
                   ) -> np.ndarray | None:
    """The float rows after a snapshot's index bytes, memory-mapped read-only (None if the
    snapshot has none); ValueError if the file is not exactly as long as the header says."""
    if index_bytes != meta.index_bytes:
        raise ValueError(f"its index is {index_bytes:,} bytes, its header says "
                         f"{meta.index_bytes:,}")
    start = index_end
    expected = start + meta.float_rows * meta.dimension * 4
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"the file is {size:,} bytes, its header says {expected:,}")
    if not meta.float_rows:
        return None
    rows = np.memmap(path, np.float32, "r", offset=start, shape=(meta.float_rows, meta.dimension))
    # A search touches a few dozen scattered rows: read those pages, not the ones around them.
    rows._mmap.madvise(mmap.MADV_RANDOM)  # type: ignore[attr-defined]
    return rows


def floats_problem(directory: Path) -> str | None:
    """Why the float rows of an "hnsw-sq8" snapshot differ from their checksum, or None:
    a read of every row, which a load skips (`incidex verify` makes it)."""
    path = directory / SNAPSHOT_FILE
    try:
        with open(path, "rb") as handle:
            meta = _read_header(handle)
            if meta.format != SNAPSHOT_FORMAT or not meta.float_rows:
                return None
            handle.seek(meta.index_bytes, os.SEEK_CUR)
            digest = hashlib.sha256()
            while chunk := handle.read(READ_CHUNK):
                digest.update(chunk)
    except (OSError, ValueError, KeyError, struct.error) as error:
        return f"unreadable ({error})"
    if not hmac.compare_digest(digest.hexdigest(), meta.float_checksum):
        return "its float vectors do not match their checksum"
    return None


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

    if kind in GRAPH_KINDS:
        graph = _new_graph(kind, vectors, seed)
        graph.hnsw.efConstruction = HNSW_BUILD_BREADTH
        graph.hnsw.efSearch = breadth
        index = faiss.IndexIDMap2(graph)
        index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(ids, np.int64))
        return index
    return _build_inverted_file(kind, ids, vectors, breadth, seed)


def _new_graph(kind: str, vectors: np.ndarray, seed: int) -> Any:
    """An empty HNSW graph of this kind, its 8-bit codes (if any) trained on the vectors."""
    import faiss

    dimension = vectors.shape[1]
    if kind == "hnsw":
        return faiss.IndexHNSWFlat(dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    # faiss's bundled stub types the quantizer kind as a ScalarQuantizer; it is the enum int.
    graph = faiss.IndexHNSWSQ(dimension, faiss.ScalarQuantizer.QT_8bit,  # type: ignore[arg-type]
                              HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    count = len(vectors)
    if count == 0:  # no vectors to learn from: the range a unit vector's components span
        sample = np.vstack([np.full(dimension, -1.0), np.full(dimension, 1.0)]).astype(np.float32)
    else:
        rows = np.random.default_rng(seed).choice(count, min(count, SQ_TRAINING_SAMPLE),
                                                  replace=False)
        sample = np.ascontiguousarray(vectors[np.sort(rows)])
    graph.train(sample)
    return graph


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
    vectors, widening its search until it reaches min_recall (RECALL_STANDARD_ERRORS of the
    measurement to spare) or the widest was tried.

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
        each = np.array([len(set(a.tolist()) & set(b.tolist())) / k
                         for a, b in zip(found, truth, strict=True)])
        recall = float(each.mean())
        error = float(each.std(ddof=1) / np.sqrt(len(each))) if len(each) > 1 else 0.0
        check = RecallCheck(index.kind, round(recall, 4), width, count, len(rows))
        if recall - RECALL_STANDARD_ERRORS * error >= min_recall:
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
