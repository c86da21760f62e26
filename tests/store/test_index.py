"""The vector index itself: exact and approximate kinds, snapshots, ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from store.ingest.records import validate_record
from store.locations import index_directory
from store.settings import Settings
from store.store import Store
from store.vectors.index import RecallCheck, VectorIndex
from tests.store.test_similar import FAMILIES, family_record, fill
from tests.store.test_vector_integrity import filled_snapshot, rewrite_header


def unit_vectors(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8"])
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


@pytest.mark.parametrize("kind", ["flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8"])
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


@pytest.mark.parametrize("kind", ["hnsw", "hnsw-sq8"])
def test_a_graph_replaces_and_removes_vectors_it_cannot_delete(kind: str, tmp_path: Path
                                                               ) -> None:
    vectors = unit_vectors(2000)
    ids = np.arange(1, 2001, dtype=np.int64)
    index = VectorIndex("test", 32)
    index.add(ids, vectors, high_water_mark=2000)
    index.convert(kind, 64)
    replacement = unit_vectors(1, seed=5)
    index.add(ids[:1], replacement)
    assert index.remove(ids[1:3]) == 2 and index.remove(ids[1:3]) == 0
    assert len(index) == 1998 and np.array_equal(np.sort(index.ids()), ids[np.r_[0, 3:2000]])
    held = index.vector(int(ids[0]))
    assert held is not None and np.allclose(held, replacement[0])
    assert index.vector(int(ids[1])) is None
    _, found = index.search(np.vstack([replacement, vectors[:3]]), 5)
    assert found[0, 0] == ids[0] and found[1, 0] != ids[0]
    assert not {int(ids[1]), int(ids[2]), -1} & set(found.ravel().tolist())
    _, rest = index.search_excluding(vectors[3], 5, ids[3:4])
    assert not {int(ids[3]), int(ids[1]), int(ids[2]), -1} & set(rest[0].tolist())
    index.save_snapshot(tmp_path)
    loaded = VectorIndex.load_snapshot(tmp_path, "test", 32)
    assert loaded is not None and len(loaded) == 1998 and loaded.vector(int(ids[2])) is None
    _, again = loaded.search(vectors[1:3], 5)
    assert not {int(ids[1]), int(ids[2]), -1} & set(again.ravel().tolist())


def clustered_vectors(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors near a few centres: the neighbourhoods an approximate index does find."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dimension))
    matrix = centres[rng.integers(0, 20, count)] + 0.3 * rng.normal(size=(count, dimension))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind", ["hnsw", "hnsw-sq8", "ivf-sq8"])
def test_an_approximate_build_measures_its_recall_and_keeps_it_in_the_snapshot(
        kind: str, tmp_path: Path) -> None:
    index = VectorIndex("test", 32)
    index.add(np.arange(1, 3001), clustered_vectors(3000), high_water_mark=3000)
    check = index.convert(kind, 32, min_recall=0.95)
    assert check is not None and check.kind == kind == index.kind
    assert check.recall >= 0.95 and check.count == 3000 and index.breadth == check.breadth
    index.save_snapshot(tmp_path)
    loaded = VectorIndex.load_snapshot(tmp_path, "test", 32)
    assert loaded is not None and loaded.recall_check == check
    assert loaded.breadth == check.breadth
    assert f"recall@10 {check.recall:.3f}" in check.describe()


def test_an_approximate_build_below_the_recall_asked_stays_exact(tmp_path: Path) -> None:
    vectors = unit_vectors(3000, dimension=64)  # no neighbourhoods: hard for any partition
    index = VectorIndex("test", 64)
    index.add(np.arange(1, 3001), vectors, high_water_mark=3000)
    check = index.convert("ivf", 1, min_recall=0.999, exact_if_short=True)
    assert check is not None and check.kind == "ivf" and check.recall < 0.999
    assert check.breadth == 16  # widened four times before giving up
    assert index.kind == "flat" and index.recall_check == check and len(index) == 3000
    _, found = index.search(vectors[:20], 1)
    assert (found[:, 0] == np.arange(1, 21)).all()
    index.save_snapshot(tmp_path)
    loaded = VectorIndex.load_snapshot(tmp_path, "test", 64)
    assert loaded is not None and loaded.kind == "flat" and loaded.recall_check == check


def test_an_approximate_kind_asked_for_widens_its_search_but_stays(tmp_path: Path) -> None:
    vectors = unit_vectors(3000, dimension=64)
    index = VectorIndex("test", 64)
    index.add(np.arange(1, 3001), vectors, high_water_mark=3000)
    check = index.convert("ivf", 1, min_recall=0.95)
    assert check is not None and index.kind == "ivf" and index.breadth == check.breadth > 1


def test_a_snapshot_of_an_older_format_is_set_aside(tmp_path: Path) -> None:
    import json
    import struct

    index = VectorIndex("one", 8)
    index.add(np.array([1]), unit_vectors(1, 8))
    index.save_snapshot(tmp_path)
    path = tmp_path / "vectors.snapshot"
    data = path.read_bytes()
    start = len(b"INCIDEX-VECTORS\n")
    (length,) = struct.unpack("<I", data[start : start + 4])
    header = json.loads(data[start + 4 : start + 4 + length])
    header["format"] = 2
    header.pop("recall_check")
    old = json.dumps(header).encode()
    path.write_bytes(data[:start] + struct.pack("<I", len(old)) + old
                     + data[start + 4 + length :])
    assert VectorIndex.open_snapshot(tmp_path, "one", 8) == (None, "format 2, not 4")


def test_auto_serves_a_graph_whose_recall_it_measured_on_the_store(
        settings: Settings) -> None:
    settings = settings.model_copy(update={"index_approximate_from": 10})
    with Store.open(settings) as store:
        fill(store, per_family=8)
        index = store.vectors.index()
        assert index.kind == "hnsw-sq8" and index.recall_check is not None
        assert index.recall_check.recall >= 0.95 and index.recall_check.count == len(index)
        store.vectors.snapshot(force=True)
    with Store.open(settings) as store:
        report = store.verify_vectors()
        assert report.in_step and report.index_kind == "hnsw-sq8"
        assert report.recall_check is not None and "recall@10" in report.recall_check
        assert any(line.startswith("index hnsw-sq8: hnsw-sq8 recall@10")
                   for line in report.lines())
        assert store.similar(incident_id="PHISH-1", k=3).hits


def test_auto_stays_exact_where_the_graph_measured_too_inexact(settings: Settings) -> None:
    path = filled_snapshot(settings, per_family=8)
    count = 24
    refused = {"kind": "hnsw-sq8", "recall": 0.9, "breadth": 512, "count": count,
               "queries": 24}
    rewrite_header(path, recall_check=refused)
    settings = settings.model_copy(update={"index_approximate_from": 10})
    with Store.open(settings) as store:
        index = store.vectors.index()
        assert index.kind == "flat" and index.recall_check == RecallCheck(**refused)
        lines = store.verify_vectors().lines()
        assert any("too inexact: the exact index is kept" in line for line in lines)
    rewrite_header(path, recall_check=refused | {"count": count // 2})
    with Store.open(settings) as store:  # the store has doubled since: measured again
        assert store.vectors.index().kind == "hnsw-sq8"


def test_verify_compares_8_bit_codes_as_codes(settings: Settings) -> None:
    settings = settings.model_copy(update={"index_kind": "ivf-sq8"})
    with Store.open(settings) as store:
        records = [family_record(family, number, day=10 + number % 15)
                   for family in FAMILIES for number in range(30)]  # more than 64 lists
        store.save_many([(f"r{n}", validate_record(r, "r")) for n, r in enumerate(records)])
        assert store.vectors.index().kind == "ivf-sq8"
        store.vectors.snapshot(force=True)
        report = store.verify_vectors()
        assert report.in_step and not report.changed_vectors, report.lines()


def test_an_8_bit_graph_reads_a_fraction_of_the_bytes_at_load(tmp_path: Path) -> None:
    vectors = clustered_vectors(3000, dimension=64)
    ids = np.arange(1, 3001, dtype=np.int64)
    read = {}
    for kind in ("hnsw", "hnsw-sq8"):
        index = VectorIndex("test", 64)
        index.add(ids, vectors, high_water_mark=3000)
        check = index.convert(kind, 32, min_recall=0.95)
        assert check is not None and check.recall >= 0.95 and index.kind == kind
        meta = index.save_snapshot(tmp_path / kind)
        read[kind] = meta.index_bytes
        size = (tmp_path / kind / "vectors.snapshot").stat().st_size
        assert size - meta.index_bytes - 3000 * 64 * 4 * (kind == "hnsw-sq8") < 4096  # header
    # 64 links of 4 bytes per vector stay; the 256 bytes of floats become 64 of codes, and
    # the floats the 8-bit graph re-ranks by follow its index bytes, mapped, not read.
    assert read["hnsw-sq8"] < read["hnsw"] - 3000 * 150
    loaded = VectorIndex.load_snapshot(tmp_path / "hnsw-sq8", "test", 64)
    assert loaded is not None and loaded.kind == "hnsw-sq8"
    held = loaded.vector(7)
    assert held is not None and float(held @ vectors[6]) > 0.99  # decoded from its codes


def test_a_vector_outside_the_codes_range_is_still_found(tmp_path: Path) -> None:
    index = VectorIndex("test", 32)
    index.add(np.arange(1, 2001), clustered_vectors(2000), high_water_mark=2000)
    index.convert("hnsw-sq8", 32, min_recall=0.95)
    outlier = np.zeros((1, 32), np.float32)
    outlier[0, 3] = 1.0  # a component past the range the codes learnt: clipped, still nearest
    index.add(np.array([5000]), outlier, high_water_mark=5000)
    _, found = index.search(outlier, 1)
    assert found[0, 0] == 5000


def test_8_bit_codes_that_cannot_tell_the_vectors_apart_are_refused(tmp_path: Path) -> None:
    """A few vectors spanning the whole range of each dimension leave the others, which
    differ by less than one 8-bit step, the same codes: the graph's recall is poor."""
    rng = np.random.default_rng(3)
    base = np.full(64, 1 / 8, np.float32)
    crowd = base + 1e-3 * rng.normal(size=(3000, 64)).astype(np.float32)
    spread = rng.choice([-1.0, 1.0], size=(10, 64)).astype(np.float32)
    vectors = np.vstack([spread, crowd])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex("test", 64)
    index.add(np.arange(1, 3011), vectors, high_water_mark=3010)
    check = index.convert("hnsw-sq8", 32, min_recall=0.95, exact_if_short=True)
    assert check is not None and check.kind == "hnsw-sq8" and check.recall < 0.95
    assert check.breadth == 512  # every breadth tried before giving up
    assert index.kind == "flat" and index.recall_check == check and len(index) == 3010
    _, found = index.search(vectors[20:30], 1)
    assert (found[:, 0] == np.arange(21, 31)).all()
    index.save_snapshot(tmp_path)
    loaded = VectorIndex.load_snapshot(tmp_path, "test", 64)
    assert loaded is not None and loaded.kind == "flat" and loaded.recall_check == check
    assert "hnsw-sq8 recall@10" in check.describe() and "efSearch 512" in check.describe()


def test_a_recall_check_climbs_by_less_than_doubles_and_keeps_its_recall() -> None:
    """A search's time grows with efSearch: the check stops at the first rung that holds
    the recall, and no rung is more than half again the one before it."""
    vectors = unit_vectors(4000, dimension=48)
    ids = np.arange(1, 4001, dtype=np.int64)
    index = VectorIndex("test", 48)
    index.add(ids, vectors)
    check = index.convert("hnsw-sq8", 32, min_recall=0.95)
    ladder = index.breadths_from(32)
    assert ladder[0] == 32 and ladder[-1] == 512
    assert all(b <= 1.5 * a for a, b in zip(ladder, ladder[1:], strict=False))
    assert check is not None and check.breadth in ladder and check.recall >= 0.95
    assert index.breadth == check.breadth
    queries = unit_vectors(300, dimension=48, seed=11)  # not the check's own queries
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10] + 1
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10
                      for a, b in zip(found, truth, strict=True)])
    assert recall >= 0.93


def test_a_graph_snapshot_of_the_previous_build_breadth_still_loads_and_grows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots of graphs built with efConstruction 80 (before it became 160) are the same
    format: they load as they are, keep their measured recall, and add with their own."""
    from store.vectors import index as index_module

    vectors = clustered_vectors(3000)
    ids = np.arange(1, 3001, dtype=np.int64)
    monkeypatch.setattr(index_module, "HNSW_BUILD_BREADTH", 80)
    older = VectorIndex("test", 32)
    older.add(ids, vectors, high_water_mark=3000)
    check = older.convert("hnsw-sq8", 32, min_recall=0.95)
    older.save_snapshot(tmp_path)
    monkeypatch.undo()
    loaded = VectorIndex.load_snapshot(tmp_path, "test", 32)
    assert loaded is not None and loaded.kind == "hnsw-sq8" and loaded.recall_check == check
    assert loaded._graph().efConstruction == 80 and loaded.breadth == check.breadth
    late = unit_vectors(1, seed=8)
    loaded.add(np.array([5001]), late, high_water_mark=5001)
    _, found = loaded.search(np.vstack([late, vectors[:3]]), 1)
    assert found[:, 0].tolist() == [5001, 1, 2, 3]
    fresh = VectorIndex("test", 32)
    fresh.add(ids, vectors)
    fresh.convert("hnsw-sq8", 32)
    assert fresh._graph().efConstruction == index_module.HNSW_BUILD_BREADTH == 160


def test_an_8_bit_graph_adds_saved_records_without_rewriting_its_snapshot(
        settings: Settings) -> None:
    settings = settings.model_copy(update={"index_kind": "hnsw-sq8"})
    with Store.open(settings) as store:
        fill(store, per_family=8)
        index = store.vectors.index()
        assert index.kind == "hnsw-sq8" and index.recall_check is not None
        assert store.vectors.snapshot(force=True)
        path = index_directory(settings) / "vectors.snapshot"
        written = path.read_bytes()
        before = len(index)
        family = next(iter(FAMILIES))
        store.save_many([("late", validate_record(family_record(family, 99, day=20), "late"))])
        index = store.vectors.index()
        assert len(index) == before + 1 and index.kind == "hnsw-sq8"
        assert not store.vectors.snapshot()  # one add: the snapshot stays as it was
        assert path.read_bytes() == written
    with Store.open(settings) as store:
        index = store.vectors.index()  # the snapshot, caught up with the late record
        assert index.kind == "hnsw-sq8" and len(index) == before + 1
        assert path.read_bytes() == written
        report = store.verify_vectors()
        assert report.in_step and not report.changed_vectors, report.lines()
        assert any(line.startswith("index hnsw-sq8: hnsw-sq8 recall@10")
                   for line in report.lines())
        assert store.similar(incident_id=f"{family.upper()}-99", k=3).hits


def test_verify_reads_the_float_rows_a_load_only_maps(settings: Settings) -> None:
    settings = settings.model_copy(update={"index_kind": "hnsw-sq8"})
    path = filled_snapshot(settings, per_family=8)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # one bit of the last float vector
    path.write_bytes(bytes(data))
    with Store.open(settings) as store:
        report = store.verify_vectors()
        assert not report.in_step
        assert report.snapshot_set_aside == "its float vectors do not match their checksum"
        assert not path.exists()  # the next open rebuilds it from the database
        assert store.vectors.index().kind == "hnsw-sq8"
        assert store.verify_vectors().in_step
    data = bytearray(filled_snapshot(settings, per_family=8).read_bytes())
    path.write_bytes(bytes(data[:-4]))  # one float short: not loaded at all
    assert VectorIndex.open_snapshot(index_directory(settings), "x", 1)[0] is None
    with Store.open(settings) as store:
        embedder = store.vectors.embedder
        loaded, reason = VectorIndex.open_snapshot(index_directory(settings), embedder.name,
                                                   embedder.dimension)
        assert loaded is None and reason is not None and "bytes, its header says" in reason


def test_an_8_bit_graph_gives_back_each_exact_vector_after_adds_and_replacements() -> None:
    vectors = unit_vectors(9000)
    ids = np.arange(1, 9001, dtype=np.int64)
    index = VectorIndex("test", 32)
    index.add(ids[:5000], vectors[:5000])
    index.convert("hnsw-sq8", 32)
    index.add(ids[5000:], vectors[5000:])  # past the nodes scanned unsorted: sorted again
    replacement = unit_vectors(1, seed=4)
    index.add(ids[10:11], replacement)
    index.remove(ids[20:21])
    for pk in (1, 11, 4999, 5001, 9000):
        expected = replacement[0] if pk == 11 else vectors[pk - 1]
        held = index.vector(pk)
        assert held is not None and np.array_equal(held, expected)
    assert index.vector(21) is None and index.vector(9001) is None


def test_a_loaded_8_bit_graph_reads_its_snapshot_in_place_and_copies_it_to_grow(
        tmp_path: Path) -> None:
    vectors = clustered_vectors(3000)
    ids = np.arange(1, 3001, dtype=np.int64)
    index = VectorIndex("test", 32)
    index.add(ids, vectors, high_water_mark=3000)
    index.convert("hnsw-sq8", 32, min_recall=0.95)
    index.save_snapshot(tmp_path)
    loaded = VectorIndex.load_snapshot(tmp_path, "test", 32)
    assert loaded is not None and loaded._mapped is not None  # codes and links not copied
    assert loaded.remove(ids[:1]) == 1  # a relabel: the id map is the process's own
    _, found = loaded.search(vectors[1:4], 1)
    assert found[:, 0].tolist() == [2, 3, 4]
    late = unit_vectors(2, seed=8)
    loaded.add(np.array([7001, 7002]), late, high_water_mark=7002)  # copies, then grows
    assert loaded._mapped is None and len(loaded) == 3001
    _, found = loaded.search(np.vstack([late, vectors[:1]]), 1)
    assert found[:2, 0].tolist() == [7001, 7002] and found[2, 0] != 1
    loaded.save_snapshot(tmp_path)  # over the file it was mapped from
    again = VectorIndex.load_snapshot(tmp_path, "test", 32)
    assert again is not None and len(again) == 3001 and 1 not in again.ids()
    held = again.vector(7002)
    assert held is not None and np.array_equal(held, late[1])


def test_an_8_bit_graph_whose_index_bytes_were_changed_is_not_read(tmp_path: Path) -> None:
    index = VectorIndex("test", 32)
    index.add(np.arange(1, 3001), clustered_vectors(3000), high_water_mark=3000)
    meta = index.convert("hnsw-sq8", 32) and index.save_snapshot(tmp_path)
    assert meta
    path = tmp_path / "vectors.snapshot"
    data = bytearray(path.read_bytes())
    index_start = len(data) - meta.index_bytes - 3000 * 32 * 4
    data[index_start + 100] ^= 0xFF  # checked before FAISS parses a byte of it
    path.write_bytes(bytes(data))
    assert VectorIndex.open_snapshot(tmp_path, "test", 32) == (
        None, "its index bytes do not match their checksum")
