"""The LLM analysis runner: an incident and its similar past incidents in, a validated,
cached, metered and saved analysis out.

Invariants: the model's reply is validated by incidex's own versioned schema (never trusted as
is); every call the server answered is a run_metadata row, failed ones included; an analysis
is saved whole through the same path as `incidex --save`, or not at all; with
INCIDEX_ANALYZE_STRIP_PII the model and the cache see pseudonyms, never the raw PII.
"""

from __future__ import annotations

from store.analyze.client import AnalyzeError, ChatCall, OutputMode, RetryPolicy
from store.analyze.incidents import register_incidents, unanalysed_incident_ids
from store.analyze.prompt import PROMPT_VERSION
from store.analyze.runner import (
    ANALYSIS_NAMESPACE,
    AnalysisOutcome,
    AnalysisRunner,
    BatchReport,
    Estimate,
    PreparedAnalysis,
)
from store.analyze.schema import SCHEMA_VERSION, IncidentAnalysis

__all__ = [
    "ANALYSIS_NAMESPACE",
    "PROMPT_VERSION",
    "SCHEMA_VERSION",
    "AnalysisOutcome",
    "AnalysisRunner",
    "AnalyzeError",
    "BatchReport",
    "ChatCall",
    "Estimate",
    "IncidentAnalysis",
    "OutputMode",
    "PreparedAnalysis",
    "RetryPolicy",
    "register_incidents",
    "unanalysed_incident_ids",
]
