"""incidex's store: everything persistent and every outside service, with no terminal at all.

This module is the public door: tui/ and widgets/ import from `store` only, never from its
sub-packages. Names load on first use (PEP 562), so `import store` stays cheap and the
headless commands that need only settings never pay for SQLAlchemy, numpy or FAISS.

Where things live: db/ (engine, tables, migrations, queries, writes), ingest/ (reading,
validation, preparation, pricing, the save stream), vectors/ (embedders, the index, similar
search, verify and reindex), privacy/ (PII scrubbing and keys), crypto/ (encryption at rest:
envelope, keyring, data keys, blind index), protection/ (key rotation and checks, retention and
purge), cache/ (tiers and the `cached` decorator), backup/ (copies outside the database),
analyze/ (the LLM analysis runner), demo/ (synthetic data).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.access import ROLES, Action, Actor, UserRow
    from store.analyze import (
        AnalysisOutcome,
        AnalysisRunner,
        AnalyzeError,
        BatchReport,
        Estimate,
        PreparedAnalysis,
    )
    from store.analyze.schema import schema_key_order
    from store.audit import AuditEntry, ChainReport
    from store.backup.service import Backups, BackupStatus, schedule_units
    from store.crypto import IncidentCodec, KeyUnavailable
    from store.db.incident_filter import IncidentFilter, parse_incident_filter
    from store.demo.fill import fill_store as fill_demo_store
    from store.errors import (
        AccessDenied,
        BackupFailed,
        EmbedderMismatch,
        RecordError,
        SettingsInvalid,
        StoreError,
        StoreUnavailable,
    )
    from store.fileio import safe_name, write_private_file
    from store.ingest.reader import read_records
    from store.ingest.stream import SaveEvent, iter_save, iter_save_batches
    from store.locations import data_directory, secrets_directory
    from store.protection import CheckReport, KeysStatus, PurgeCandidate, PurgeReport
    from store.schemas import (
        CACHE_NAMESPACES,
        DEFAULT_SIMILAR_K,
        INCIDENT_SORTS,
        SEVERITY_SCALE,
        AnalysisIn,
        AnalysisRecord,
        IncidentDetail,
        IncidentIn,
        IncidentPage,
        IncidentSort,
        IncidentSummary,
        PageCursor,
        SaveResult,
        SimilarHit,
        SimilarResult,
        StoreSummary,
        UsageByDay,
        UsageTotal,
        as_utc,
    )
    from store.settings import Settings, load_settings
    from store.store import Store
    from store.vectors.embedder import EmbedderUnavailable
    from store.vectors.filler import FillProgress
    from store.vectors.maintenance import VerifyReport
    from store.view_state import load_view_state, save_view_state
    from store.warm import warm_up_save

# Public name -> (module, attribute in it).
_EXPORTS: dict[str, tuple[str, str]] = {
    "Store": ("store.store", "Store"),
    "KeyUnavailable": ("store.crypto", "KeyUnavailable"),
    "IncidentCodec": ("store.crypto", "IncidentCodec"),
    "KeysStatus": ("store.protection", "KeysStatus"),
    "CheckReport": ("store.protection", "CheckReport"),
    "PurgeCandidate": ("store.protection", "PurgeCandidate"),
    "PurgeReport": ("store.protection", "PurgeReport"),
    "Settings": ("store.settings", "Settings"),
    "load_settings": ("store.settings", "load_settings"),
    "data_directory": ("store.locations", "data_directory"),
    "secrets_directory": ("store.locations", "secrets_directory"),
    "safe_name": ("store.fileio", "safe_name"),
    "write_private_file": ("store.fileio", "write_private_file"),
    "schema_key_order": ("store.analyze.schema", "schema_key_order"),
    "iter_save": ("store.ingest.stream", "iter_save"),
    "iter_save_batches": ("store.ingest.stream", "iter_save_batches"),
    "SaveEvent": ("store.ingest.stream", "SaveEvent"),
    "read_records": ("store.ingest.reader", "read_records"),
    **{name: ("store.analyze", name) for name in (
        "AnalysisOutcome", "AnalysisRunner", "AnalyzeError", "BatchReport", "Estimate",
        "PreparedAnalysis")},
    "fill_demo_store": ("store.demo.fill", "fill_store"),
    **{name: ("store.backup.service", name) for name in (
        "Backups", "BackupStatus", "schedule_units")},
    "BackupFailed": ("store.errors", "BackupFailed"),
    "VerifyReport": ("store.vectors.maintenance", "VerifyReport"),
    "FillProgress": ("store.vectors.filler", "FillProgress"),
    "EmbedderUnavailable": ("store.vectors.embedder", "EmbedderUnavailable"),
    "load_view_state": ("store.view_state", "load_view_state"),
    "parse_incident_filter": ("store.db.incident_filter", "parse_incident_filter"),
    "IncidentFilter": ("store.db.incident_filter", "IncidentFilter"),
    "save_view_state": ("store.view_state", "save_view_state"),
    "warm_up_save": ("store.warm", "warm_up_save"),
    **{name: ("store.errors", name) for name in (
        "StoreError", "StoreUnavailable", "RecordError", "EmbedderMismatch", "AccessDenied")},
    **{name: ("store.access", name) for name in ("ROLES", "Action", "Actor", "UserRow")},
    **{name: ("store.audit", name) for name in ("AuditEntry", "ChainReport")},
    "SettingsInvalid": ("store.errors", "SettingsInvalid"),
    "CACHE_NAMESPACES": ("store.schemas", "CACHE_NAMESPACES"),
    "SEVERITY_SCALE": ("store.schemas", "SEVERITY_SCALE"),
    **{name: ("store.schemas", name) for name in (
        "DEFAULT_SIMILAR_K", "INCIDENT_SORTS", "AnalysisIn", "AnalysisRecord", "IncidentDetail",
        "IncidentIn", "IncidentPage", "IncidentSort", "IncidentSummary", "PageCursor", "SaveResult",
        "SimilarHit",
        "SimilarResult", "StoreSummary", "UsageByDay", "UsageTotal", "as_utc")},
}

__all__ = [
    "CheckReport",
    "IncidentCodec",
    "KeyUnavailable",
    "KeysStatus",
    "PurgeCandidate",
    "PurgeReport",
    "ROLES",
    "AccessDenied",
    "Action",
    "Actor",
    "AnalysisIn",
    "AnalysisOutcome",
    "AnalysisRecord",
    "AnalysisRunner",
    "AnalyzeError",
    "BackupFailed",
    "BackupStatus",
    "Backups",
    "AuditEntry",
    "BatchReport",
    "CACHE_NAMESPACES",
    "ChainReport",
    "DEFAULT_SIMILAR_K",
    "EmbedderMismatch",
    "EmbedderUnavailable",
    "Estimate",
    "FillProgress",
    "INCIDENT_SORTS",
    "IncidentDetail",
    "IncidentFilter",
    "IncidentIn",
    "IncidentPage",
    "IncidentSort",
    "IncidentSummary",
    "PageCursor",
    "PreparedAnalysis",
    "RecordError",
    "SaveEvent",
    "SEVERITY_SCALE",
    "SaveResult",
    "Settings",
    "SettingsInvalid",
    "SimilarHit",
    "SimilarResult",
    "Store",
    "StoreError",
    "StoreSummary",
    "StoreUnavailable",
    "UsageByDay",
    "UsageTotal",
    "UserRow",
    "VerifyReport",
    "as_utc",
    "data_directory",
    "fill_demo_store",
    "iter_save",
    "iter_save_batches",
    "load_view_state",
    "load_settings",
    "parse_incident_filter",
    "read_records",
    "safe_name",
    "save_view_state",
    "schedule_units",
    "secrets_directory",
    "schema_key_order",
    "warm_up_save",
    "write_private_file",
]


def __getattr__(name: str) -> Any:
    """Load a public name from the module that defines it, on first use."""
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'store' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
