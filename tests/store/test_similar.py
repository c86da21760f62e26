"""Similar-incident search end to end: save, search, snapshots, drift, embedder changes, PII."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store.errors import EmbedderMismatch
from store.ingest.records import validate_record
from store.locations import index_directory
from store.settings import Settings
from store.store import Store
from store.vectors.index import VectorIndex
from tests.conftest import make_record

FAMILIES = {
    "phish": ("Invoice phishing with macro attachment",
              "Finance staff received a fake invoice e-mail with a Word macro that ran PowerShell",
              {"iocs": {"domains": ["invoice-pay.example.net"]},
               "attack_techniques": [{"id": "T1566.001"}]}),
    "ransom": ("Ransomware encrypted the file server",
               "Shares encrypted with the lockbit extension after shadow copies were deleted",
               {"iocs": {"hashes": ["ab" * 32]}, "attack_techniques": [{"id": "T1486"}]}),
    "bucket": ("Public storage bucket exposed exports",
               "A cloud storage bucket with customer CSV exports was world readable",
               {"iocs": {"ips": ["198.51.100.23"]}, "attack_techniques": [{"id": "T1530"}]}),
}


VARIETY = ["finance department laptop", "legal team mailbox", "warehouse kiosk in Leeds",
           "developer workstation", "executive assistant", "branch office in Porto",
           "night shift helpdesk", "payroll contractor"]


def family_record(family: str, number: int, severity: str = "high",
                  day: int = 20) -> dict[str, Any]:
    title, description, extra = FAMILIES[family]
    where = VARIETY[number % len(VARIETY)]
    record = make_record(f"{family.upper()}-{number}")
    record["incident"].update(title=f"{title} on the {where}",
                              description=f"{description}. Seen on the {where}.",
                              initial_findings=f"Alert raised for the {where}.")
    record["analysis"] = {"summary": description, "severity": severity, **extra}
    record["usage"]["start_time"] = f"2026-11-{day:02d}T10:00:00Z"
    record["usage"]["end_time"] = f"2026-11-{day:02d}T10:00:05Z"
    return record


def fill(store: Store, per_family: int = 4) -> None:
    records = [family_record(family, n, "high" if n % 2 else "low", day=10 + n)
               for family in FAMILIES for n in range(per_family)]
    store.save_many([(f"r{i}", validate_record(r, "r")) for i, r in enumerate(records)])


def test_save_then_search_by_incident_and_text(store: Store) -> None:
    fill(store)
    by_incident = store.similar(incident_id="PHISH-1", k=3)
    ids = [hit.incident_id for hit in by_incident.hits]
    assert "PHISH-1" not in ids
    assert ids and all(i.startswith("PHISH-") for i in ids)
    assert len(set(ids)) == len(ids)
    top = by_incident.hits[0]
    assert top.shared_techniques == ["T1566.001"]
    assert top.shared_iocs == ["invoice-pay.example.net"]
    by_text = store.similar(text="ransomware lockbit encrypted shares", k=2)
    assert [hit.incident_id.split("-")[0] for hit in by_text.hits] == ["RANSOM", "RANSOM"]
    # The order fuses the vector and lexical ranks; the score shown is the vector's cosine.
    assert all(0.0 <= hit.score <= 1.0 for hit in by_text.hits)


def test_filters_by_severity_and_date(store: Store) -> None:
    from datetime import UTC, datetime

    fill(store)
    only_high = store.similar(incident_id="PHISH-1", k=10, severity=["high"])
    assert only_high.hits and {h.severity for h in only_high.hits} == {"high"}
    recent = store.similar(incident_id="PHISH-1", k=10,
                           since=datetime(2026, 11, 12, tzinfo=UTC))
    assert recent.hits and all(h.created_at >= datetime(2026, 11, 12, tzinfo=UTC)
                               for h in recent.hits)


def test_near_duplicates_fold_behind_one_row(store: Store) -> None:
    records = []
    for n in range(12):
        record = family_record("bucket", 0)
        record["incident"]["incident_id"] = f"DUP-{n}"
        record["analysis"]["run"] = n  # a different analysis, the same text
        records.append((f"r{n}", validate_record(record, "r")))
    records.append(("q", validate_record(family_record("phish", 99), "q")))
    store.save_many(records)
    result = store.similar(text="public storage bucket world readable CSV exports", k=5)
    assert result.hits[0].incident_id.startswith("DUP-")
    assert result.hits[0].near_duplicates == 11


def test_folded_near_duplicates_are_listed_and_served_alike_from_cache(store: Store) -> None:
    records = []
    for n in range(12):
        record = family_record("bucket", 0, severity="low" if n % 3 else "high")
        record["incident"]["incident_id"] = f"DUP-{n}"
        record["analysis"]["run"] = n  # a different analysis, the same text
        records.append((f"r{n}", validate_record(record, "r")))
    records.append(("q", validate_record(family_record("phish", 99), "q")))
    store.save_many(records)
    query = "public storage bucket world readable CSV exports 198.51.100.23 T1530"
    first = store.similar(text=query, k=5)
    top = first.hits[0]
    members = [member.incident_id for member in top.near_duplicate_hits]
    assert sorted([top.incident_id, *members]) == sorted(f"DUP-{n}" for n in range(12))
    assert len(members) == top.near_duplicates == 11
    assert all(member.shared_iocs == ["198.51.100.23"] and member.shared_techniques == ["T1530"]
               and member.title == top.title for member in top.near_duplicate_hits)
    scores = [member.score for member in top.near_duplicate_hits]
    assert scores == sorted(scores, reverse=True)
    again = store.similar(text=query, k=5)
    assert again.from_cache and again.hits == first.hits
    only_high = store.similar(text=query, k=5, severity=["high"])
    assert {m.severity for h in only_high.hits for m in h.near_duplicate_hits} <= {"high"}
    assert only_high.hits[0].near_duplicates == 3


def test_repeat_search_is_served_from_cache_until_a_new_save(store: Store) -> None:
    fill(store)
    first = store.similar(incident_id="RANSOM-1")
    again = store.similar(incident_id="RANSOM-1")
    assert not first.from_cache and again.from_cache
    assert [h.incident_id for h in again.hits] == [h.incident_id for h in first.hits]
    store.save_analysis(validate_record(family_record("ransom", 50), "new"))
    fresh = store.similar(incident_id="RANSOM-1")
    assert not fresh.from_cache
    assert "RANSOM-50" in [h.incident_id for h in fresh.hits]


def test_a_crash_before_the_snapshot_loses_nothing(settings: Settings) -> None:
    with Store.open(settings) as store:
        fill(store, per_family=2)
        store.similar(incident_id="PHISH-1")  # loads and catches up the index
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "from store.ingest.records import validate_record\n"
         "from store.store import Store\nfrom store.settings import Settings\n"
         "from tests.store.test_similar import family_record\nimport os, signal\n"
         f"store = Store.open(Settings(database_url={settings.database_url!r}))\n"
         "store.vectors.index()\n"
         "store.save_analysis(validate_record(family_record('phish', 77), 'crash'))\n"
         "os.kill(os.getpid(), signal.SIGKILL)\n"],
        cwd=Path(__file__).parents[2], env=os.environ.copy())
    assert writer.wait(timeout=60) == -signal.SIGKILL
    with Store.open(settings) as store:
        assert "PHISH-77" in [h.incident_id for h in store.similar(incident_id="PHISH-1").hits]
        assert store.verify_vectors().in_step


def test_verify_reports_a_deleted_and_a_foreign_vector(store: Store) -> None:
    fill(store, per_family=2)
    index = store.vectors.index()
    held = index.ids()
    index.remove(np.array([held[0]]))
    index.add(np.array([987654], dtype=np.int64),
              np.ones((1, index.dimension), dtype=np.float32) / np.sqrt(index.dimension))
    store.vectors.snapshot(force=True)
    report = store.verify_vectors()
    assert not report.in_step
    assert report.missing_from_index == [int(held[0])]
    assert report.foreign_in_index == [987654]
    assert any("foreign" in line for line in report.lines())
    store.reindex()
    assert store.verify_vectors().in_step


def test_changing_the_embedder_is_refused_until_reindex(settings: Settings,
                                                         openai_server: Any) -> None:
    with Store.open(settings) as store:
        fill(store, per_family=2)
    changed = settings.model_copy(update={"embedder": "openai:test-embedding",
                                          "openai_base_url": openai_server.base_url,
                                          "openai_api_key": "test"})
    with Store.open(changed) as store:
        with pytest.raises(EmbedderMismatch, match="incidex reindex"):
            store.similar(incident_id="PHISH-1")
        store.reindex()
        assert store.similar(incident_id="PHISH-1").hits
        assert store.verify_vectors().in_step


def test_pii_never_reaches_the_embedder_the_index_or_the_cache(
        settings: Settings, openai_server: Any, isolated_directories: Path) -> None:
    secrets = ["jane.doe@example.com", "+1 415 555 0199", "AKIAIOSFODNN7EXAMPLE"]
    record = family_record("phish", 1)
    record["incident"]["description"] += (f" Reported by {secrets[0]}, call {secrets[1]}; "
                                          f"leaked key {secrets[2]}.")
    remote = settings.model_copy(update={"embedder": "openai:test-embedding",
                                         "openai_base_url": openai_server.base_url,
                                         "openai_api_key": "test"})
    with Store.open(remote) as store:
        store.save_analysis(validate_record(record, "pii"))
        store.similar(text=f"mail from {secrets[0]}")
        store.similar(incident_id="PHISH-1")
    sent = "\n".join(openai_server.embedded_texts)
    assert "invoice" in sent.lower()  # the text did go out, scrubbed
    for secret in secrets:
        assert secret not in sent
    for path in isolated_directories.rglob("*"):
        if path.is_file() and "backups" not in path.parts and path.suffix != ".db":
            blob = path.read_bytes()
            assert not any(secret.encode() in blob for secret in secrets), path


def test_unreachable_embedder_saves_the_analysis_as_pending(settings: Settings,
                                                            openai_server: Any) -> None:
    remote = settings.model_copy(update={"embedder": "openai:test-embedding",
                                         "openai_base_url": openai_server.base_url,
                                         "openai_api_key": "test",
                                         "openai_timeout_seconds": 1.0})
    with Store.open(remote) as store:
        for number, mode in enumerate(("error", "timeout", "drop")):
            openai_server.fail_mode = mode
            result = store.save_analysis(validate_record(family_record("phish", number), mode))
            assert result.status == "saved"
        openai_server.fail_mode = None

        assert store.pending_vector_count() == 3
        assert store.reindex(pending_only=True) == 3
        assert store.pending_vector_count() == 0
        assert store.verify_vectors().in_step
        assert len(store.similar(text="invoice macro").hits) == 3


def test_embedding_calls_are_metered(settings: Settings) -> None:
    from tests.support.openai_server import OpenAIServer

    with OpenAIServer(dimension=1536) as server:  # the real model's dimension
        remote = settings.model_copy(update={"embedder": "openai:text-embedding-3-small",
                                             "openai_base_url": server.base_url,
                                             "openai_api_key": "test"})
        with Store.open(remote) as store:
            fill(store, per_family=1)
            kinds = {u.key: u for u in store.usage_by_model()}
    embedding = kinds["text-embedding-3-small"]
    assert embedding.input_tokens == server.embedding_tokens > 0
    assert embedding.cost_usd > 0


def test_snapshot_is_reused_on_open(settings: Settings) -> None:
    with Store.open(settings) as store:
        fill(store, per_family=2)
        store.vectors.index()
        assert not store.vectors.snapshot()  # six new vectors are not worth a rewrite
        assert store.vectors.snapshot(force=True)
    directory = index_directory(settings)
    assert (directory / "vectors.snapshot").exists()  # one file: header and index together
    embedder = Store.open(settings).vectors.embedder
    loaded = VectorIndex.load_snapshot(directory, embedder.name, embedder.dimension)
    assert loaded is not None and len(loaded) == 6


def test_an_open_index_sees_another_process_saves(settings: Settings) -> None:
    with Store.open(settings) as reader, Store.open(settings) as writer:
        fill(reader, per_family=2)
        before = reader.similar(text="public storage bucket world readable")
        writer.save_analysis(validate_record(family_record("bucket", 40), "other"))
        after = reader.similar(text="public storage bucket world readable")
    assert "BUCKET-40" not in [h.incident_id for h in before.hits]
    assert "BUCKET-40" in [h.incident_id for h in after.hits]


def test_bulk_import_without_embedding_then_fill(settings: Settings) -> None:

    bulk = settings.model_copy(update={"embed_on_save": False})
    with Store.open(bulk) as store:
        fill(store, per_family=2)
        assert store.pending_vector_count() == 6
    with Store.open(settings) as store:
        assert store.reindex(pending_only=True) == 6
        assert store.pending_vector_count() == 0 and store.verify_vectors().in_step
        assert store.similar(incident_id="PHISH-1").hits
