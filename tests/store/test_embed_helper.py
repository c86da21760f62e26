"""The embedding helper process: the same vectors as embedding here alone, and a helper that
fails costs only the help."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import numpy as np
import pytest

from store.privacy.scrubber import PiiScrubber
from store.vectors.helper import EmbedHelper, clean_and_embed
from store.vectors.offline import HashedConceptEmbedder
from tests.conftest import make_record

KEY = b"test-only-pii-key-of-forty-characters-xx"
TEXTS = [
    f"Record {index}: Jane Doe <jane.doe{index}@example.com> called +1 415 555 {index:04d} "
    f"about invoice {index}; Mr. Robert Engel said Engel's laptop beaconed to "
    f"185.220.101.{index % 250} via WS-{index:04d}.corp.local after a macro "
    f"(T1566.001). Card 4111 1111 1111 1111."
    for index in range(260)
]


@pytest.fixture
def scrubber() -> PiiScrubber:
    return PiiScrubber(KEY)


def test_helped_vectors_are_the_bytes_made_here_alone(scrubber: PiiScrubber) -> None:
    alone = clean_and_embed(scrubber, HashedConceptEmbedder(), TEXTS)
    helper = EmbedHelper(scrubber, HashedConceptEmbedder(), min_texts=10, min_cores=1)
    try:
        helped = helper.clean_and_embed(TEXTS)
        again = helper.clean_and_embed(TEXTS[:40])
    finally:
        helper.close()
    assert helper.helped_slices > 0  # the helper really made some of them
    assert helped.dtype == np.float32 and helped.shape == (len(TEXTS), 512)
    assert helped.tobytes() == alone.tobytes()
    assert again.tobytes() == alone[:40].tobytes()


def test_small_batches_start_no_helper(scrubber: PiiScrubber) -> None:
    helper = EmbedHelper(scrubber, HashedConceptEmbedder(), min_cores=1)
    helper.clean_and_embed(TEXTS[:5])
    assert helper.process_id is None and helper.helped_slices == 0


def test_a_helper_that_dies_costs_only_the_help(scrubber: PiiScrubber,
                                                caplog: pytest.LogCaptureFixture) -> None:
    alone = clean_and_embed(scrubber, HashedConceptEmbedder(), TEXTS)
    helper = EmbedHelper(scrubber, HashedConceptEmbedder(), min_texts=10, min_cores=1)
    try:
        helper.clean_and_embed(TEXTS[:30])
        assert helper.process_id is not None
        os.kill(helper.process_id, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="incidex.vectors"):
            vectors = helper.clean_and_embed(TEXTS)
            after = helper.helped_slices
            again = helper.clean_and_embed(TEXTS)
    finally:
        helper.close()
    assert vectors.tobytes() == alone.tobytes() == again.tobytes()
    assert helper.helped_slices == after  # not asked again
    assert sum("helper process failed" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("through", ["save_many", "iter_save"])
def test_large_batches_save_the_vectors_made_here_alone(settings: Any, through: str) -> None:
    """Batches of 120: the first helped as it is saved, the second begun while the first is
    written; every stored vector is the one made here alone."""
    import io
    import json

    from store.ingest.stream import iter_save
    from store.schemas import AnalysisIn
    from store.store import Store

    records = []
    for index, text in enumerate(TEXTS):
        record = make_record(f"HELP-{index:04d}")
        record["incident"]["description"] = text
        records.append(record)
    with Store.open(settings.model_copy(update={"save_batch_size": 120})) as store:
        if through == "save_many":
            results = store.save_many([(f"line {index + 1}", AnalysisIn.model_validate(record))
                                       for index, record in enumerate(records)])
        else:
            lines = "".join(json.dumps(record) + "\n" for record in records).encode()
            results = [event.result for event in iter_save(store, io.BytesIO(lines),
                                                           batch_size=120)]
        assert [result.status for result in results] == ["saved"] * len(records)
        service = store.vectors
        assert service._helper is not None
        expected = clean_and_embed(service.scrubber, HashedConceptEmbedder(), [
            service_text(AnalysisIn.model_validate(record)) for record in records])
        stored = store_vectors(store, [result.pk for result in results])
    assert stored == [row.tobytes() for row in expected]


def service_text(record: Any) -> str:
    from store.vectors.text import embedding_text

    return embedding_text(record.incident.title, record.incident.description,
                          record.incident.initial_findings, record.analysis)


def store_vectors(store: Any, pks: list[int]) -> list[bytes]:
    from sqlalchemy import text

    with store.engine.connect() as connection:
        rows = dict(connection.execute(
            text("SELECT analysis_pk, vector FROM embeddings WHERE status = 'ready'")).all())
    return [bytes(rows[pk]) for pk in pks]


def test_a_new_pii_key_gets_a_new_helper(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a reindex takes a new PII key, large batches are scrubbed with it, not the old."""
    service = store.vectors
    old = service._embed_helper(service.scrubber, service.embedder)
    monkeypatch.setenv("INCIDEX_PII_KEY", "another-test-only-pii-key-of-40-characters")
    service.begin_reindex()
    new = service._embed_helper(service.scrubber, service.embedder)
    assert new is not old and new.serves(service.scrubber, service.embedder)
    assert not old.serves(service.scrubber, service.embedder)
