"""Pending vectors filled in the background: saves with the local model never wait for it, the
similar search finds pending analyses meanwhile, and fillers (two at once, a killed one) write
each vector exactly once, a batch a transaction, with the index kept in step.

On SQLite and PostgreSQL. The model's own tests skip without the `models` extra (and fail in
CI, where `.ci/run` installs it); the filler's mechanics are the same for every embedder, so the
concurrency and crash tests use the offline default with embedding on save switched off.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from store.db.engine import read_connection
from store.db.identity import store_identity
from store.db.models import Embedding, table_of
from store.ingest.records import validate_record
from store.settings import Settings
from store.store import Store
from store.vectors.embedder import COMBINED_EMBEDDER, MODEL_EMBEDDER
from store.vectors.filler import FillProgress, claim_batch, fill_batch
from store.vectors.local_model import SentenceModelEmbedder
from store.vectors.service import VectorService
from tests.store.test_local_model import _require_model
from tests.store.test_similar import family_record

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("ransom", "phish", "bucket")


def _records(count: int, prefix: str = "") -> list[tuple[str, Any]]:
    return [(f"r{n}", validate_record(_renamed(family_record(FAMILIES[n % 3], n), prefix), "r"))
            for n in range(count)]


def _renamed(record: dict[str, Any], prefix: str) -> dict[str, Any]:
    record["incident"]["incident_id"] = prefix + record["incident"]["incident_id"]
    return record


def _pending_store(settings: Settings, count: int) -> Settings:
    """Save `count` analyses with their vectors left pending; the settings that fill them."""
    pending = settings.model_copy(update={"embed_on_save": False})
    with Store.open(pending) as store:
        assert all(r.status == "saved" for r in store.save_many(_records(count)))
        assert store.pending_vector_count() == count
    return settings


def _embedding_rows(store: Store) -> list[Any]:
    with read_connection(store.engine) as connection:
        return list(connection.execute(select(table_of(Embedding)).order_by(
            table_of(Embedding).c.analysis_pk)))


@pytest.mark.parametrize("embedder", [MODEL_EMBEDDER, COMBINED_EMBEDDER])
def test_a_model_embedder_saves_without_waiting_for_the_model(
        settings: Settings, embedder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_self: Any, _texts: list[str]) -> Any:
        raise AssertionError("a save asked the model to embed")

    monkeypatch.setattr(SentenceModelEmbedder, "embed", refuse)
    with Store.open(settings.model_copy(update={"embedder": embedder})) as store:
        results = store.save_many(_records(6))
        assert [r.status for r in results] == ["saved"] * 6
        assert store.pending_vector_count() == 6
        rows = _embedding_rows(store)
        assert {(row.status, row.embedder, row.vector) for row in rows} == {
            ("pending", embedder, None)}


def test_the_filler_commits_batch_by_batch_and_keeps_the_index_in_step(
        settings: Settings) -> None:
    _pending_store(settings, 10)
    with Store.open(settings) as store:
        store.similar(text="ransomware encrypted the shares")  # loads this process's index
        index = store.vectors.index()
        assert len(index) == 0
        seen: list[FillProgress] = []
        filled = store.fill_pending_vectors(batch_size=3, progress=seen.append)
        assert filled == 10
        # Reported first, then after each committed batch: what is left in the store.
        assert [(at.filled, at.pending) for at in seen] == [(0, 10), (3, 7), (6, 4), (9, 1),
                                                          (10, 0)]
        assert all(at.problem is None for at in seen)
        assert len(index) == 10  # the loaded index took each batch as it was committed
        report = store.verify_vectors()
        assert report.in_step and report.pending == 0 and report.database_vectors == 10
        rows = _embedding_rows(store)
        assert all(row.status == "ready" and row.dimension == report.dimension for row in rows)
        with read_connection(store.engine) as connection:
            issued = store_identity(connection).embedding_seq
        # Each filled row got a fresh write number, after the ten the pending saves took.
        assert sorted(row.seq for row in rows) == list(range(issued - 9, issued + 1))
        assert store.fill_pending_vectors() == 0  # nothing left: nothing written again


def test_pending_analyses_are_found_by_words_and_indicators_meanwhile(
        settings: Settings) -> None:
    _pending_store(settings, 9)
    with Store.open(settings) as store:
        hits = store.similar(text="shares encrypted with the lockbit extension", k=3).hits
        assert [hit.incident_id.split("-")[0] for hit in hits] == ["RANSOM"] * 3
        assert all(hit.score == 0.0 for hit in hits)  # no vector yet: ranked by words
        by_incident = store.similar(incident_id="BUCKET-2", k=2).hits
        assert {hit.incident_id for hit in by_incident} == {"BUCKET-5", "BUCKET-8"}
        assert all(hit.shared_iocs == ["198.51.100.23"] for hit in by_incident)
        store.fill_pending_vectors()
        filled = store.similar(text="shares encrypted with the lockbit extension", k=3).hits
        assert [hit.incident_id.split("-")[0] for hit in filled] == ["RANSOM"] * 3
        assert all(hit.score > 0.2 for hit in filled)  # now ranked by their vectors too


def test_two_fillers_on_the_same_claim_write_each_vector_once(settings: Settings) -> None:
    """Even when a claim lapsed and two fillers embed the same rows, one write wins."""
    _pending_store(settings, 6)
    with Store.open(settings) as first, Store.open(settings) as second:
        # Claims that lapse at once (as a batch slower than its lease would).
        taken = claim_batch(first.engine, 6, lease_seconds=-2.0)
        again = claim_batch(second.engine, 6, lease_seconds=-2.0)
        assert taken and taken == again
        assert claim_batch(first.engine, 6, lease_seconds=60.0) == taken
        assert claim_batch(second.engine, 6, lease_seconds=60.0) == []  # held by the first
        assert fill_batch(first.vectors, taken) == 6
        assert fill_batch(second.vectors, again) == 0
        with read_connection(first.engine) as connection:
            issued = store_identity(connection).embedding_seq
        assert issued == 12  # six pending saves, six fills: no number spent on the loser
        assert second.verify_vectors().in_step


def test_two_fillers_at_once_share_the_work(settings: Settings,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _pending_store(settings, 60)
    embed = VectorService.embed_texts

    def slowly(self: VectorService, texts: list[str]) -> Any:
        time.sleep(0.02)  # as a model would take: the two fillers' batches interleave
        return embed(self, texts)

    monkeypatch.setattr(VectorService, "embed_texts", slowly)
    stores = [Store.open(settings), Store.open(settings)]
    written = [0, 0]
    try:
        for store in stores:
            store.vectors.index()  # both hold an index, caught up as they fill

        def run(position: int) -> None:
            written[position] = stores[position].fill_pending_vectors(batch_size=4)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sum(written) == 60 and all(written)
        for store in stores:
            index = store.vectors.index()
            assert len(index) == 60 and len(np.unique(index.ids())) == 60
            assert store.verify_vectors().in_step
    finally:
        for store in stores:
            store.close()


FILLER = """
import sys, time
from store.settings import Settings
from store.store import Store
import store.vectors.filler as filler

mode = sys.argv[1]
if mode == "slow":
    original_texts = filler.clean_texts

    def slowly(service, pks):
        time.sleep(0.2)  # as a model would take: two fillers' batches interleave
        return original_texts(service, pks)

    filler.clean_texts = slowly
if mode in ("kill-while-writing", "kill-while-embedding"):
    original_write, original_embed = filler.write_filled, filler.clean_texts

    def write_then_hang(connection, *args, **kwargs):
        written = original_write(connection, *args, **kwargs)
        print("written, not committed", flush=True)
        time.sleep(120)
        return written

    def embed_then_hang(service, pks):
        print("claimed, embedding", flush=True)
        time.sleep(120)

    if mode == "kill-while-writing":
        filler.write_filled = write_then_hang
    else:
        filler.clean_texts = embed_then_hang
with Store.open(Settings(), create=False) as store:
    print("open", flush=True)
    written = filler.fill_pending(store.vectors, batch_size=int(sys.argv[2]),
                                  lease_seconds=float(sys.argv[3]))
    print(f"written {written}", flush=True)
"""


def _filler(database_url: str, mode: str, batch_size: int, lease: float
            ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", FILLER, mode, str(batch_size), str(lease)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "INCIDEX_DATABASE_URL": database_url})


@pytest.mark.slow
def test_two_filler_processes_at_once_write_each_vector_once(settings: Settings) -> None:
    _pending_store(settings, 80)
    fillers = [_filler(str(settings.database_url), "slow", 5, 300.0) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in fillers]
    for process, (_stdout, stderr) in zip(fillers, outputs, strict=True):
        assert process.returncode == 0, stderr[-2000:]
    written = [int(stdout.split("written ")[-1]) for stdout, _stderr in outputs]
    assert sum(written) == 80 and all(written), written
    with Store.open(settings) as store:
        assert store.pending_vector_count() == 0
        report = store.verify_vectors()
        assert report.in_step and report.database_vectors == 80
        with read_connection(store.engine) as connection:
            issued = store_identity(connection).embedding_seq
            seqs = connection.execute(select(func.count(func.distinct(
                table_of(Embedding).c.seq)))).scalar_one()
        assert issued == 160 and seqs == 80  # each row written once by a save, once filled


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill-while-writing", "kill-while-embedding"])
def test_a_filler_killed_mid_batch_leaves_it_pending_for_the_next_run(
        settings: Settings, mode: str) -> None:
    _pending_store(settings, 12)
    with Store.open(settings) as store:
        assert store.fill_pending_vectors(batch_size=4) == 12  # vectors filled before
    _pending_store_more(settings, 12)
    killed = _filler(str(settings.database_url), mode, 5, 2.0)
    assert killed.stdout is not None and killed.stdout.readline() == "open\n"
    assert killed.stdout.readline() in ("written, not committed\n", "claimed, embedding\n")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    with Store.open(settings) as store:
        rows = _embedding_rows(store)
        waiting = [row for row in rows if row.status == "pending"]
        # Nothing of the killed batch was written: its five rows are pending, with no vector.
        assert len(waiting) == 12 and all(row.vector is None for row in waiting)
        assert store.verify_vectors().in_step
        # The next run fills what nobody holds; the killed claim lapses after its lease.
        assert store.fill_pending_vectors(batch_size=4) == 7
        assert store.pending_vector_count() == 5
        time.sleep(2.2)
        assert store.fill_pending_vectors(batch_size=4) == 5
        report = store.verify_vectors()
        assert report.in_step and report.pending == 0 and report.database_vectors == 24


def _pending_store_more(settings: Settings, count: int) -> None:
    pending = settings.model_copy(update={"embed_on_save": False})
    with Store.open(pending) as store:
        saved = store.save_many(_records(count, prefix="MORE-"))
        assert all(r.status == "saved" for r in saved)


def test_reindex_pending_goes_through_the_filler(settings: Settings) -> None:
    _pending_store(settings, 5)
    with Store.open(settings) as store:
        steps: list[tuple[int, int]] = []
        assert store.reindex(pending_only=True, progress=lambda d, t: steps.append((d, t))) == 5
        assert steps[-1] == (5, 5)
        assert store.verify_vectors().in_step


@pytest.fixture(scope="module")
def model_ready() -> None:
    _require_model()
    SentenceModelEmbedder().embed(["warm up"])


def test_the_model_fills_in_the_background_while_saves_stay_fast(
        model_ready: None, settings: Settings) -> None:
    """The real model: saves leave vectors pending, the search finds them meanwhile, the
    filler embeds them and the model then ranks a paraphrase sharing no indicator."""
    model = settings.model_copy(update={"embedder": COMBINED_EMBEDDER})
    with Store.open(model) as store:
        assert all(r.status == "saved" for r in store.save_many(_records(9)))
        assert store.pending_vector_count() == 9
        hits = store.similar(incident_id="RANSOM-0", k=2).hits
        assert {hit.incident_id for hit in hits} == {"RANSOM-3", "RANSOM-6"}
        assert all(hit.score == 0.0 for hit in hits)  # found by shared indicators and words
        assert store.fill_pending_vectors(batch_size=4) == 9
        report = store.verify_vectors()
        assert report.in_step and report.pending == 0
        assert report.embedder == COMBINED_EMBEDDER
        paraphrase = store.similar(text="the attacker's malware locked the shared drives and "
                                        "demanded a payment", k=3).hits
        assert [hit.incident_id.split("-")[0] for hit in paraphrase] == ["RANSOM"] * 3
        assert all(hit.score > 0.0 for hit in paraphrase)
