"""Warming a long-lived process's store (the save server): what the first save would load."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.store import Store

_SAMPLE = {"incident": {"incident_id": "warm-up", "title": "warm up", "description": "warm up"},
           "analysis": {"summary": "warm up", "severity": "low"},
           "usage": {"input_tokens": 1, "output_tokens": 1}}


def warm_up_save(store: Store) -> None:
    """Load, writing nothing, what a first save loads: the price table (most of a second),
    the record models, the PII patterns, the embedder and, for the offline default, its
    helper process. A remote or local-model embedder is only set up, never called."""
    from store.ingest.pricing import price_call
    from store.ingest.records import validate_record
    from store.vectors.service import _helped

    price_call(store.settings.chat_model, 1, 1, datetime.now(UTC))
    validate_record(_SAMPLE, "warm-up", store.settings.chat_model)
    if not store.settings.embed_on_save:
        return
    service = store.vectors
    scrubber, embedder = service.scrubber, service.embedder
    if _helped(embedder):
        service._embed_helper(scrubber, embedder).clean_and_embed(["warm up"])
