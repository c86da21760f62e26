"""The vector index itself: exact and approximate kinds, snapshots, ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from store.vectors.index import VectorIndex


def unit_vectors(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivf-sq8"])
def test_kinds_find_each_vector_and_survive_a_snapshot(kind: str, tmp_path: Path) -> None:
    vectors = unit_vectors(3000)
    ids = np.arange(10, 3010, dtype=np.int64)
    index = VectorIndex("test", 32)
    index.add(ids, vectors, high_water_mark=3010)
    if kind != "flat":
        index.convert(kind, 64)
    _, found = index.search(vectors[:50], 1)
    assert (found[:, 0] == ids[:50]).mean() >= 0.95
    assert np.array_equal(np.sort(index.ids()), ids)
    index.remove(ids[:5])
    index.add(np.array([99_999]), unit_vectors(1, seed=9))
    index.save_snapshot(tmp_path)
    loaded = VectorIndex.load_snapshot(tmp_path, "test", 32)
    assert loaded is not None and loaded.kind == kind and len(loaded) == 2996
    assert loaded.high_water_mark == 3010
    assert 99_999 in loaded.ids() and ids[0] not in loaded.ids()
    assert loaded.vector(99_999) is not None and loaded.vector(int(ids[0])) is None


def test_snapshot_of_another_embedder_is_not_loaded(tmp_path: Path) -> None:
    index = VectorIndex("one", 8)
    index.add(np.array([1]), unit_vectors(1, 8))
    index.save_snapshot(tmp_path)
    assert VectorIndex.load_snapshot(tmp_path, "two", 8) is None
    assert VectorIndex.load_snapshot(tmp_path, "one", 16) is None
    assert VectorIndex.load_snapshot(tmp_path / "absent", "one", 8) is None


def test_a_torn_snapshot_is_ignored(tmp_path: Path) -> None:
    index = VectorIndex("one", 8)
    index.add(np.array([1]), unit_vectors(1, 8))
    index.save_snapshot(tmp_path)
    (tmp_path / "vectors.snapshot").write_bytes(b"not an index")
    assert VectorIndex.load_snapshot(tmp_path, "one", 8) is None


def test_a_crash_while_writing_a_snapshot_leaves_the_previous_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    index = VectorIndex("one", 8, store_id="s", revision="r")
    index.add(np.array([1]), unit_vectors(1, 8), high_water_mark=1)
    index.save_snapshot(tmp_path)
    index.add(np.array([2]), unit_vectors(1, 8, seed=2), high_water_mark=2)

    def crash(*_args: object) -> None:
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        index.save_snapshot(tmp_path)
    monkeypatch.undo()
    loaded = VectorIndex.load_snapshot(tmp_path, "one", 8)
    assert loaded is not None and loaded.ids().tolist() == [1] and loaded.high_water_mark == 1
    assert (loaded.store_id, loaded.revision) == ("s", "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.snapshot"]


def test_a_snapshot_of_the_two_file_format_is_ignored_and_replaced(tmp_path: Path) -> None:
    (tmp_path / "vectors.json").write_text('{"embedder": "one", "dimension": 8, "kind": "flat", '
                                           '"count": 1, "high_water_mark": 99, "format": 1}')
    (tmp_path / "vectors.faiss").write_bytes(b"old")
    assert VectorIndex.open_snapshot(tmp_path, "one", 8) == (None, None)
    VectorIndex("one", 8).save_snapshot(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.snapshot"]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivf-sq8"])
def test_search_excluding_leaves_out_the_given_ids(kind: str) -> None:
    vectors = unit_vectors(3000)
    ids = np.arange(1, 3001, dtype=np.int64)
    index = VectorIndex("test", 32)
    index.add(ids, vectors)
    if kind != "flat":
        index.convert(kind, 64)
    _, first = index.search(vectors[:1], 10)
    _, rest = index.search_excluding(vectors[0], 10, first[0][:5])
    assert not set(rest[0].tolist()) & set(first[0][:5].tolist())
    assert set(first[0][5:].tolist()) <= set(rest[0].tolist())
