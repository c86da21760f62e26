"""Run rows of chat calls the store did not write with an analysis (failed, repaired, unmetered)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from store.analyze.client import ChatCall
from store.db.engine import write_transaction
from store.db.models import RunMetadata, table_of
from store.ingest.pricing import price_call


def call_cost(call: ChatCall) -> Decimal | None:
    """The call's cost in USD; None for an unknown model or a reply without usage."""
    if call.input_tokens is None or call.output_tokens is None:
        return None
    return price_call(call.model_name, call.input_tokens, call.output_tokens,
                      call.start_time).cost_usd


def calls_cost(calls: Sequence[ChatCall]) -> Decimal:
    """What the calls cost together, counting unpriced ones as zero."""
    return sum((call_cost(call) or Decimal(0) for call in calls), Decimal(0))


def run_row(call: ChatCall, incident_id: str, analysis_id: str | None) -> dict[str, Any]:
    """The run_metadata row of one chat call; no usage means 0 tokens and no price."""
    input_tokens = call.input_tokens or 0
    output_tokens = call.output_tokens or 0
    price = price_call(call.model_name, input_tokens, output_tokens, call.start_time)
    unmetered = call.input_tokens is None
    return {
        "request_id": call.request_id,
        "kind": "chat",
        "model_name": call.model_name,
        "incident_id": incident_id,
        "analysis_id": analysis_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "start_time": call.start_time,
        "end_time": call.end_time,
        "duration_seconds": (call.end_time - call.start_time).total_seconds(),
        "cost_usd": None if unmetered else price.cost_usd,
        "price_source": "no usage in the reply" if unmetered else price.source,
    }


def record_calls(engine: Engine, calls: Sequence[ChatCall], incident_id: str,
                 analysis_id: str | None) -> list[dict[str, Any]]:
    """Write one run row per call, all in one transaction; the rows written."""
    rows = [run_row(call, incident_id, analysis_id) for call in calls]
    if rows:
        with write_transaction(engine) as connection:
            connection.execute(table_of(RunMetadata).insert(), rows)
    return rows
