"""Turning validated input into rows: ids, content hashes, limits and prices, before any I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from store.errors import RecordError
from store.ingest.pricing import price_call
from store.ingest.reader import DEFAULT_MAX_DOCUMENT_BYTES, MAX_JSON_DEPTH
from store.schemas import AnalysisIn

if TYPE_CHECKING:
    from store.crypto import SealedRecord

# HMAC under the store's index key of (label, text): the content hash of an encrypted store.
KeyedHash = Callable[[str, str], str]

SEVERITY_KEYS = ("severity", "risk_level", "priority")
# Far above any real call; keeps per-model and per-day sums far from 64-bit overflow.
MAX_COST_USD = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits applied to every record."""

    max_text_chars: int = 1_000_000
    max_analysis_bytes: int = 5_000_000
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES


@dataclass(slots=True)
class PreparedSave:
    """One record ready to write: every row it becomes, computed without touching the store."""

    label: str
    record: AnalysisIn
    analysis_id: str
    content_hash: str
    analysis_json: str
    severity: str | None
    event_time: datetime
    run_row: dict[str, Any] | None
    vector: bytes | None = None
    embedder: str | None = None
    dimension: int | None = None
    # The stored form of the sensitive text when the store seals it (StoreCipher.seal_batch).
    sealed: SealedRecord | None = None

    @property
    def incident_id(self) -> str:
        """The caller's incident id."""
        return self.record.incident.incident_id


def canonical_json(document: Any) -> str:
    """The one text form of a JSON value: sorted keys, no spaces, UTF-8 as is.

    orjson refuses what is not storable (unpaired surrogates, integers past 64 bits);
    NaN and Infinity never get this far because the input parser refuses them.
    """
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except orjson.JSONEncodeError as error:
        if "recursion" in str(error).lower():
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise ValueError(str(error)) from None


def analysis_identity(incident_id: str, analysis_text: str,
                      keyed_hash: KeyedHash | None = None) -> tuple[str, str]:
    """The content hash of an analysis and its stable analysis_id (same content, same id).

    With keyed_hash (an encrypted store) the hash is an HMAC under the store's index key: a
    plain SHA-256 of sealed text would let anyone confirm a guess of it."""
    if keyed_hash is not None:
        content_hash = keyed_hash("analysis", analysis_text)
    else:
        content_hash = hashlib.sha256(analysis_text.encode("utf-8")).hexdigest()
    key = hashlib.sha256(f"{incident_id}\x00{content_hash}".encode()).hexdigest()
    return content_hash, f"an-{key[:24]}"


def prepare(record: AnalysisIn, label: str, limits: Limits, now: datetime,
            keyed_hash: KeyedHash | None = None) -> PreparedSave:
    """Check limits and text, compute ids and the priced run row; raise RecordError on a problem."""
    label = label_for(label, record.incident.incident_id)
    _check_text_fields(record, label, limits)
    try:
        analysis_text = canonical_json(record.analysis)
    except ValueError as error:
        raise RecordError(label, "analysis", f"not storable JSON ({_short(error)})") from None
    if len(analysis_text.encode("utf-8")) > limits.max_analysis_bytes:
        raise RecordError(
            label, "analysis",
            f"{len(analysis_text):,} bytes, over the limit of {limits.max_analysis_bytes:,} "
            "(INCIDEX_MAX_ANALYSIS_BYTES)",
        )
    content_hash, analysis_id = analysis_identity(record.incident.incident_id, analysis_text,
                                                  keyed_hash)
    event_time = now
    usage = record.usage
    if usage is not None and (usage.end_time or usage.start_time):
        # The analysis happened when its call ended; a clock ahead of ours is clamped.
        event_time = min(usage.end_time or usage.start_time or now, now)
    return PreparedSave(
        label=label,
        record=record,
        analysis_id=analysis_id,
        content_hash=content_hash,
        analysis_json=analysis_text,
        severity=severity_of(record.analysis),
        event_time=event_time,
        run_row=_run_row(record, label, analysis_id, event_time),
    )


def severity_of(analysis: dict[str, Any]) -> str | None:
    """The analysis' severity in lower case, from the first of the usual keys present."""
    for key in SEVERITY_KEYS:
        value = analysis.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()[:32]
    return None


def _check_text_fields(record: AnalysisIn, label: str, limits: Limits) -> None:
    incident = record.incident
    fields = {
        "incident.incident_id": incident.incident_id,
        "incident.title": incident.title,
        "incident.description": incident.description,
        "incident.initial_findings": incident.initial_findings,
        "model_name": record.model_name,
    }
    for name, value in fields.items():
        if len(value) > limits.max_text_chars:
            raise RecordError(
                label, name,
                f"{len(value):,} characters, over the limit of {limits.max_text_chars:,} "
                "(INCIDEX_MAX_TEXT_CHARS)",
            )
        if "\x00" in value:
            raise RecordError(label, name, "contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RecordError(label, name, "contains an unpaired surrogate (not UTF-8)") from None


def _run_row(
    record: AnalysisIn, label: str, analysis_id: str, event_time: datetime
) -> dict[str, Any] | None:
    usage = record.usage
    if usage is None:
        return None
    end = usage.end_time or usage.start_time or event_time
    start = usage.start_time or end
    if end < start:
        raise RecordError(label, "usage.end_time", "is before usage.start_time")
    model_name = usage.model_name or record.model_name
    total = usage.total_tokens
    if total is None:
        total = usage.input_tokens + usage.output_tokens
    price = price_call(model_name, usage.input_tokens, usage.output_tokens, start, usage.kind)
    if price.cost_usd is not None and price.cost_usd > MAX_COST_USD:
        raise RecordError(label, "usage", f"priced at ${price.cost_usd:,.2f}, over the limit of "
                          f"${MAX_COST_USD:,} for one call")
    return {
        "request_id": usage.request_id,
        "kind": usage.kind,
        "model_name": model_name,
        "incident_id": record.incident.incident_id,
        "analysis_id": analysis_id,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": total,
        "start_time": start,
        "end_time": end,
        "duration_seconds": (end - start).total_seconds(),
        "cost_usd": price.cost_usd,
        "price_source": price.source,
    }


def utc_now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:120]


def validate_record(raw: Any, label: str, default_model: str | None = None) -> AnalysisIn:
    """Validate one raw record; a problem becomes a RecordError naming the first bad field.

    A record without a model_name (absent or null) gets default_model (INCIDEX_CHAT_MODEL).
    """
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        raise RecordError(label, "", f"expected a JSON object, got {_json_type(raw)}")
    if default_model and raw.get("model_name") is None:
        raw = {**raw, "model_name": default_model}
    try:
        return AnalysisIn.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field_name = ".".join(str(part) for part in first["loc"]) or "record"
        message = first["msg"]
        if first["type"] == "missing":
            message = "is required"
        elif first["type"] == "string_unicode":
            message = "contains an unpaired surrogate (not UTF-8)"
        elif first["type"] in ("dict_type", "model_type"):
            message = f"must be a JSON object, got {_json_type(first.get('input'))}"
        elif first["type"].endswith("_type"):
            message = f"{message.lower()}, got {_json_type(first.get('input'))}"
        else:
            message = message.removeprefix("Value error, ")
            message = message[0].lower() + message[1:]
        extra = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise RecordError(_with_id(label, raw), field_name, message + extra) from None


def _with_id(label: str, raw: dict[str, Any]) -> str:
    incident = raw.get("incident")
    if isinstance(incident, dict):
        return label_for(label, incident.get("incident_id"))
    return label


def label_for(label: str, incident_id: Any) -> str:
    """A record's label for messages: where it was in the input, and its incident id if known."""
    if isinstance(incident_id, str) and incident_id.strip() and " (incident " not in label:
        return f"{label} (incident {incident_id.strip()[:60]!r})"
    return label


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
