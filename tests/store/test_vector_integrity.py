"""Similar results come from this store or not at all: snapshot identity, in-order sequence
numbers, unusable vectors, the PII key, floods of copies, and what the similar cache keeps."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from store.db.engine import read_connection, write_transaction
from store.db.identity import store_identity
from store.db.models import Embedding
from store.db.writes import insert_embedding_rows, vector_problem
from store.errors import EmbedderMismatch, InvalidVector, PiiKeyMismatch
from store.ingest.records import utc_now, validate_record
from store.locations import index_directory
from store.settings import Settings
from store.store import Store
from store.vectors.index import SNAPSHOT_FILE, SNAPSHOT_MAGIC, VectorIndex
from tests.store.test_similar import family_record, fill

RANSOM_QUERY = "ransomware lockbit encrypted the file server shares"


def save(store: Store, *records: dict[str, Any]) -> None:
    results = store.save_many([(f"r{n}", validate_record(r, "r")) for n, r in enumerate(records)])
    assert {r.status for r in results} == {"saved"}, results


def new_family_records(number: int = 70) -> list[dict[str, Any]]:
    return [family_record(family, number) for family in ("ransom", "phish", "bucket")]


def filled_snapshot(settings: Settings, per_family: int = 4) -> Path:
    """Fill a store, write its snapshot, and return the snapshot file."""
    with Store.open(settings) as store:
        fill(store, per_family=per_family)
        store.vectors.index()
        assert store.vectors.snapshot(force=True)
    return index_directory(settings) / SNAPSHOT_FILE


def rewrite_header(path: Path, **changes: Any) -> None:
    """Edit a snapshot's header in place, keeping its index bytes (and so their checksum)."""
    data = path.read_bytes()
    start = len(SNAPSHOT_MAGIC)
    length = int.from_bytes(data[start : start + 4], "little")
    header = json.loads(data[start + 4 : start + 4 + length])
    header.update(changes)
    encoded = json.dumps(header).encode()
    path.write_bytes(SNAPSHOT_MAGIC + len(encoded).to_bytes(4, "little") + encoded
                     + data[start + 4 + length :])


def assert_only_this_store(store: Store, only_new: bool = True) -> None:
    """The ransomware query finds this store's new ransomware incident, by its own vector."""
    hits = store.similar(text=RANSOM_QUERY, k=3 if only_new else 5).hits
    ransom = [h for h in hits if h.incident_id == "RANSOM-70"]
    assert ransom and ransom[0].score > 0.5, hits
    if only_new:
        assert hits[0] == ransom[0]
        assert {h.incident_id for h in hits} <= {"RANSOM-70", "PHISH-70", "BUCKET-70"}
    assert store.verify_vectors().in_step


# The snapshot names its store ---------------------------------------------------------------


def test_a_snapshot_of_another_database_is_set_aside(
        settings: Settings, isolated_directories: Path, caplog: pytest.LogCaptureFixture) -> None:
    other = settings.model_copy(update={
        "database_url": f"sqlite:///{isolated_directories.parent / 'other.db'}"})
    filled_snapshot(other)
    with Store.open(settings) as store:  # another database, the same data directory
        save(store, *new_family_records())
        with caplog.at_level("WARNING", "incidex.vectors"):
            assert_only_this_store(store)
    assert any("made from another store" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with Store.open(settings) as store, caplog.at_level("WARNING", "incidex.vectors"):
        assert_only_this_store(store)  # the snapshot was rewritten at close: no second warning
    assert not caplog.records


def test_a_recreated_database_file_does_not_reuse_the_old_snapshot(
        isolated_directories: Path) -> None:
    settings = Settings(data_dir=isolated_directories)
    filled_snapshot(settings)
    for leftover in isolated_directories.glob("incident_analysis.db*"):
        leftover.unlink()
    with Store.open(settings) as store:
        save(store, *new_family_records())
        assert_only_this_store(store)


def test_a_high_water_mark_edited_upwards_hides_nothing(settings: Settings) -> None:
    snapshot = filled_snapshot(settings)
    rewrite_header(snapshot, high_water_mark=10_000)
    with Store.open(settings) as store:
        save(store, *new_family_records())
    with Store.open(settings) as store:
        assert_only_this_store(store, only_new=False)


def test_flipped_bytes_in_the_index_are_caught_by_the_checksum(settings: Settings) -> None:
    snapshot = filled_snapshot(settings)
    data = bytearray(snapshot.read_bytes())
    data[-300:-296] = bytes(b ^ 0xFF for b in data[-300:-296])  # one float of the last vector
    snapshot.write_bytes(bytes(data))
    directory = snapshot.parent
    embedder = Store.open(settings).vectors.embedder
    loaded, reason = VectorIndex.open_snapshot(directory, embedder.name, embedder.dimension)
    assert loaded is None and reason is not None and "checksum" in reason
    with Store.open(settings) as store:
        save(store, *new_family_records())
        assert_only_this_store(store, only_new=False)


def test_shuffled_ids_with_a_matching_checksum_are_caught_by_the_spot_check(
        settings: Settings) -> None:
    import faiss

    snapshot = filled_snapshot(settings)
    with Store.open(settings) as store:
        embedder = store.vectors.embedder
        index = VectorIndex.load_snapshot(snapshot.parent, embedder.name, embedder.dimension)
        assert index is not None
        ids = faiss.vector_to_array(index._index.id_map)
        faiss.copy_array_to_vector(np.roll(ids, 1), index._index.id_map)  # every id moved
        index._index.construct_rev_map()
        index.save_snapshot(snapshot.parent)  # a fresh, valid checksum over the wrong ids
        save(store, *new_family_records())
    with Store.open(settings) as store:
        assert store.vectors.load_index()[1] is not None  # set aside, with its reason
        assert_only_this_store(store, only_new=False)


# Sequence numbers become visible in order ----------------------------------------------------


def test_a_reader_misses_no_vector_when_writers_commit_out_of_order(store: Store) -> None:
    fill(store, per_family=1)
    reader = store.vectors.rebuild_index()
    dimension = reader.dimension
    vector = (np.ones(dimension) / np.sqrt(dimension)).astype(np.float32).tobytes()

    def row(pk: int) -> dict[str, Any]:
        return {"analysis_pk": pk, "embedder": reader.embedder, "dimension": dimension,
                "status": "ready", "vector": vector, "updated_at": utc_now()}

    with write_transaction(store.engine) as connection:
        # The vectors need analyses to belong to (foreign key), without vectors of their own.
        incident_id = connection.execute(text("SELECT min(incident_id) FROM incidents")).scalar()
        for pk in (9001, 9002):
            connection.execute(text(
                "INSERT INTO analyses (id, analysis_id, incident_id, model_name, analysis_json,"
                " content_hash, created_at) VALUES (:pk, :aid, :iid, 'm', '{}', :aid, :at)"),
                {"pk": pk, "aid": f"race-{pk}", "iid": incident_id, "at": utc_now()})
    b_done = threading.Event()

    def writer_b() -> None:
        with write_transaction(store.engine) as connection:
            insert_embedding_rows(connection, [row(9002)])
        b_done.set()

    with write_transaction(store.engine) as connection_a:
        insert_embedding_rows(connection_a, [row(9001)])  # A takes its sequence number first
        thread = threading.Thread(target=writer_b)
        thread.start()
        b_done.wait(timeout=1.0)  # B either waits for A (correct) or commits ahead of it
        store.vectors.catch_up(reader)  # the reader looks while A is still open
    thread.join(timeout=60)
    assert b_done.is_set()
    store.vectors.catch_up(reader)
    held = set(reader.ids().tolist())
    assert {9001, 9002} <= held, "a vector committed out of sequence order was skipped"


def test_every_store_gets_its_own_identity_and_the_counter_starts_past_existing_rows(
        store: Store) -> None:
    fill(store, per_family=1)
    with read_connection(store.engine) as connection:
        identity = store_identity(connection)
        highest = connection.execute(select(func.max(Embedding.seq))).scalar_one()
    assert len(identity.store_id) == 32 and identity.embedding_seq == highest == 3


# Unusable vectors ----------------------------------------------------------------------------


@hypothesis_settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=12),
       dimension=st.integers(min_value=-1, max_value=12))
def test_vector_problem_accepts_exactly_finite_rows_of_the_dimension(
        values: list[float], dimension: int) -> None:
    blob = np.array(values, dtype=np.float32).tobytes()
    usable = dimension > 0 and len(values) == dimension and all(np.isfinite(values))
    assert (vector_problem(blob, dimension) is None) == usable
    assert vector_problem(None, dimension) is not None
    assert vector_problem(None, dimension, "pending") is None


@pytest.mark.parametrize("vector, dimension", [
    (np.array([np.nan, 1.0], np.float32).tobytes(), 2),
    (None, 2),
    (b"", 2),
    (np.ones(3, np.float32).tobytes(), 2),
])
def test_an_unusable_vector_is_refused_at_write_time(store: Store, vector: bytes | None,
                                                    dimension: int) -> None:
    fill(store, per_family=1)
    with read_connection(store.engine) as connection:
        before = store_identity(connection).embedding_seq
    good = {"analysis_pk": 9001, "embedder": "x", "dimension": 2, "status": "ready",
            "vector": np.ones(2, np.float32).tobytes(), "updated_at": utc_now()}
    bad = {**good, "analysis_pk": 9002, "vector": vector, "dimension": dimension}
    with pytest.raises(InvalidVector, match="analysis 9002: vector: "), \
            write_transaction(store.engine) as connection:
        insert_embedding_rows(connection, [good, bad])
    with read_connection(store.engine) as connection:
        assert store_identity(connection).embedding_seq == before  # nothing half-written
        assert connection.execute(select(func.count()).select_from(Embedding)).scalar_one() == 3


def corrupt(store: Store, analysis_pk: int, vector: bytes | None) -> None:
    """Put an unusable vector in a ready row behind incidex's back, as a new write."""
    with write_transaction(store.engine) as connection:
        seq = store_identity(connection).embedding_seq + 1
        connection.execute(text("UPDATE store_info SET embedding_seq = :seq"), {"seq": seq})
        connection.execute(text("UPDATE embeddings SET vector = :vector, seq = :seq "
                                "WHERE analysis_pk = :pk"),
                           {"vector": vector, "seq": seq, "pk": analysis_pk})


def test_unusable_vectors_in_the_database_are_skipped_and_reported(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    fill(store, per_family=2)
    store.similar(incident_id="PHISH-0")  # an index in memory that must catch up
    with read_connection(store.engine) as connection:
        # Saving orders a batch by incident id: look the analyses up, never assume their pks.
        pk_of = dict(connection.execute(text(
            "SELECT incident_id, id FROM analyses WHERE incident_id IN "
            "('PHISH-0', 'PHISH-1', 'RANSOM-0')")).all())
    corrupt(store, pk_of["PHISH-0"], np.full(512, np.nan, np.float32).tobytes())
    corrupt(store, pk_of["PHISH-1"], b"")
    corrupt(store, pk_of["RANSOM-0"], np.ones(7, np.float32).tobytes())
    with caplog.at_level("WARNING", "incidex.vectors"):
        hits = store.similar(text=RANSOM_QUERY, k=5).hits
    assert hits and not {h.incident_id for h in hits} & {"PHISH-0", "PHISH-1"}
    assert any("unusable vectors" in r.getMessage() for r in caplog.records)
    report = store.verify_vectors()
    assert report.unusable_vectors == sorted(pk_of.values()) and not report.in_step
    assert any("3 unusable vectors" in line for line in report.lines())
    assert report.missing_from_index == []  # reported once, as unusable
    store.reindex()
    assert store.verify_vectors().in_step


# The remote embedder's answers ----------------------------------------------------------------


def remote(settings: Settings, server: Any) -> Settings:
    return settings.model_copy(update={"embedder": "openai:test-embedding",
                                       "openai_base_url": server.base_url,
                                       "openai_api_key": "test"})


def test_a_remote_embedder_changing_dimension_leaves_vectors_pending(
        settings: Settings, openai_server: Any) -> None:

    with Store.open(remote(settings, openai_server)) as store:
        fill(store, per_family=1)
    openai_server.dimension = 16  # the model behind the URL was swapped
    with Store.open(remote(settings, openai_server)) as store:
        result = store.save_analysis(validate_record(family_record("phish", 9), "swapped"))
        assert result.status == "saved" and store.pending_vector_count() == 1
        with pytest.raises(EmbedderMismatch, match="dimension"):
            store.similar(text="invoice")
    openai_server.dimension = 64
    with Store.open(remote(settings, openai_server)) as store:
        assert store.reindex(pending_only=True) == 1  # the cache served no 16-wide vector
        assert store.verify_vectors().in_step


def test_a_remote_embedder_returning_nan_leaves_vectors_pending(
        settings: Settings, openai_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(openai_server, "vector_for",
                        lambda _text: np.full(openai_server.dimension, np.nan))
    with Store.open(remote(settings, openai_server)) as store:
        assert store.save_analysis(validate_record(family_record("phish", 1), "n")).status \
            == "saved"
        assert store.pending_vector_count() == 1


# The PII key ---------------------------------------------------------------------------------


def test_another_pii_key_is_refused_until_reindex(settings: Settings) -> None:
    first = settings.model_copy(update={"pii_key": "k" * 40})
    second = settings.model_copy(update={"pii_key": "z" * 40})
    with Store.open(first) as store:
        fill(store, per_family=2)
        assert store.similar(text="invoice macro").hits
    with Store.open(second) as store:
        with pytest.raises(PiiKeyMismatch, match="incidex reindex"):
            store.similar(text="invoice macro")
        report = store.verify_vectors()
        assert not report.in_step and report.pii_key_problem
        assert any(line.startswith("PII key: ") for line in report.lines())
        saved = store.save_analysis(validate_record(family_record("phish", 50), "k2"))
        assert saved.status == "saved"  # kept, its vector pending until the key is settled
        store.reindex()
        assert store.similar(text="invoice macro").hits
        assert store.verify_vectors().in_step
    with Store.open(first) as store, pytest.raises(PiiKeyMismatch):
        store.similar(text="invoice macro")


def test_an_interrupted_key_change_is_refused(settings: Settings) -> None:
    with Store.open(settings.model_copy(update={"pii_key": "k" * 40})) as store:
        fill(store, per_family=1)
    with Store.open(settings.model_copy(update={"pii_key": "z" * 40})) as store:
        store.vectors.begin_reindex()  # and the process dies before finish_reindex()
    with Store.open(settings.model_copy(update={"pii_key": "k" * 40})) as store, \
            pytest.raises(PiiKeyMismatch, match="did not finish"):
        store.similar(text="invoice")


def test_the_similar_cache_key_names_store_and_pii_key(settings: Settings) -> None:
    from store.privacy.scrubber import PiiScrubber

    with Store.open(settings) as store:
        fill(store, per_family=1)
        index = store.vectors.index()
        keys = {store.search._cache_key("x", None, 5, None, None, None, index)}
        store.vectors._scrubber = PiiScrubber(b"another key of more than 32 characters")
        keys.add(store.search._cache_key("x", None, 5, None, None, None, index))
        index.store_id = "another store"
        keys.add(store.search._cache_key("x", None, 5, None, None, None, index))
    assert len(keys) == 3


# Floods of copies ----------------------------------------------------------------------------


def test_a_flood_of_copies_does_not_hide_other_matches(isolated_directories: Path) -> None:
    settings = Settings(data_dir=isolated_directories, save_batch_size=1000)
    records = []
    for number in range(5000):
        record = family_record("ransom", 0)
        record["incident"]["incident_id"] = f"COPY-{number}"
        record["analysis"]["run"] = number
        records.append(record)
    records += [family_record("ransom", number) for number in range(1, 9)]
    copied = records[0]["incident"]
    with Store.open(settings) as store:
        save(store, *records)
        hits = store.similar(text=f"{copied['title']}. {copied['description']}", k=5).hits
    assert len({h.incident_id for h in hits}) == 5
    assert sum(h.incident_id.startswith("COPY-") for h in hits) == 1
    assert max(h.near_duplicates for h in hits) >= 4999 - 8


# What the similar cache keeps ----------------------------------------------------------------


def test_the_similar_cache_holds_no_text(settings: Settings, isolated_directories: Path,
                                         tmp_path: Path) -> None:
    from tests.support.redis_server import RedisServer

    secrets = ["jane.doe@example.com", "Quarterly payroll for Jane Doe", "invoice-pay.example.net",
               "Invoice phishing with macro attachment"]
    record = family_record("phish", 1)
    record["incident"].update(incident_id="PAYROLL-1", title=secrets[1])
    record["analysis"]["run"] = "payroll"
    with RedisServer(tmp_path / "redis") as server:
        for cached in (settings, settings.model_copy(update={"redis_url": server.url})):
            with Store.open(cached) as store:
                fill(store, per_family=2)
                store.save_analysis(validate_record(record, "pii"))
                for _ in range(2):  # the second answer comes from the cache, text and all
                    by_text = store.similar(text=f"mail from {secrets[0]} about an invoice")
                    by_incident = store.similar(incident_id="PHISH-0")
                assert by_text.from_cache and by_incident.from_cache
                assert secrets[1] in {h.title for h in by_incident.hits}
                assert "invoice-pay.example.net" in by_incident.hits[0].shared_iocs
        import redis

        client = redis.Redis.from_url(server.url)
        blobs = [client.get(key) or b"" for key in client.scan_iter()
                 if client.type(key) == b"string"]
        assert blobs
    blobs += [p.read_bytes() for p in (isolated_directories / "cache").rglob("*") if p.is_file()]
    for blob in blobs:
        for secret in secrets:
            assert secret.encode() not in blob


@pytest.mark.parametrize("change, why", [
    ({"revision": "0001"}, "schema revision"),
    ({"store_id": ""}, "another store"),
])
def test_a_snapshot_header_that_does_not_fit_is_set_aside(
        settings: Settings, change: dict[str, Any], why: str) -> None:
    rewrite_header(filled_snapshot(settings), **change)
    with Store.open(settings) as store:
        index, reason = store.vectors.load_index()
        assert reason is not None and why in reason
        assert len(index) == 12


def test_a_row_deleted_behind_the_snapshot_is_caught_by_the_count(settings: Settings) -> None:
    filled_snapshot(settings)
    with Store.open(settings) as store:
        with write_transaction(store.engine) as connection:
            connection.execute(text("DELETE FROM embeddings WHERE analysis_pk = 5"))
        index, reason = store.vectors.load_index()
        assert reason is not None and "12 vectors" in reason and "the database 11" in reason
        assert 5 not in index.ids() and len(index) == 11
