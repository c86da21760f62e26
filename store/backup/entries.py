"""What one journal line holds about a saved analysis, and turning it back into rows.

Invariants: a body carries everything the save computed that replay cannot recompute the
same way (the batch's clock, the price at save time), so replaying a body writes the rows the
save wrote, with the same analysis_id (a body whose content gives another id is refused).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from store.errors import RecordError
from store.ingest.records import KeyedHash, Limits, PreparedSave, prepare
from store.schemas import AnalysisIn

# Replay accepts what was once saved, whatever today's size limits say.
REPLAY_LIMITS = Limits(max_text_chars=1 << 40, max_analysis_bytes=1 << 40,
                       max_document_bytes=1 << 40)


def journal_body(prepared: PreparedSave, saved_at: datetime) -> dict[str, Any]:
    """The journal body of one record about to be written."""
    record = prepared.record
    run = prepared.run_row
    return {
        "analysis_id": prepared.analysis_id,
        "incident": record.incident.model_dump(),
        "model_name": record.model_name,
        "analysis": record.analysis,
        "usage": record.usage.model_dump(mode="json") if record.usage else None,
        "content_hash": prepared.content_hash,
        "saved_at": saved_at.isoformat(),
        "created_at": prepared.event_time.isoformat(),
        "cost_usd": None if run is None or run["cost_usd"] is None else str(run["cost_usd"]),
        "price_source": None if run is None else run["price_source"],
    }


def legacy_body(document: dict[str, Any]) -> dict[str, Any]:
    """The journal body of a legacy per-analysis JSON backup (written before the journal)."""
    return {
        "analysis_id": document["analysis_id"],
        "incident": document["incident"],
        "model_name": document["model_name"],
        "analysis": document["analysis"],
        "usage": document.get("usage"),
        "content_hash": document.get("content_hash"),
        "saved_at": document["created_at"],
        "created_at": document["created_at"],
    }


def prepared_from_body(body: dict[str, Any], where: str, keyed_hash: KeyedHash | None = None
                       ) -> PreparedSave:
    """The rows a body stands for; RecordError naming `where` when it cannot be replayed
    (`keyed_hash`: the restored store's content hash when it seals, as a save computes it;
    a body journaled before the store sealed was identified by the plain hash instead)."""
    try:
        record = AnalysisIn.model_validate({key: body[key] for key in
                                            ("incident", "analysis", "model_name", "usage")})
        saved_at = datetime.fromisoformat(body["saved_at"])
    except (KeyError, ValueError) as error:
        raise RecordError(where, "body", f"not a saved analysis ({_first(error)})") from None
    prepared = prepare(record, where, REPLAY_LIMITS, saved_at, keyed_hash)
    if prepared.analysis_id != body["analysis_id"] and keyed_hash is not None:
        prepared = prepare(record, where, REPLAY_LIMITS, saved_at)
    if prepared.analysis_id != body["analysis_id"]:
        raise RecordError(where, "analysis_id", f"{body['analysis_id']!r} does not match its "
                          f"content (which gives {prepared.analysis_id!r})")
    if prepared.run_row is not None and "price_source" in body:
        cost = body.get("cost_usd")
        prepared.run_row["cost_usd"] = None if cost is None else Decimal(cost)
        prepared.run_row["price_source"] = body.get("price_source")
    return prepared


def _first(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
