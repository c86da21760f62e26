"""What gets embedded for an analysis, and the ATT&CK technique ids an analysis names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

SUMMARY_KEYS = ("summary", "category", "classification", "incident_type", "attack_vector",
                "root_cause", "impact")
TECHNIQUE_KEYS = ("attack_techniques", "mitre_attack", "techniques", "ttps", "mitre_techniques")
TECHNIQUE_ID = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")


def embedding_text(title: str, description: str, initial_findings: str,
                   analysis: dict[str, Any]) -> str:
    """The text embedded for one analysis, before PII is stripped.

    The incident's title, description and initial findings, then the analysis'
    summary-like fields (summary, category, classification, type, vector, root cause,
    impact) and the names and ids of its ATT&CK techniques. IOCs are matched exactly
    (the incident_indicators table), not through the embedding.
    """
    parts = [title, description, initial_findings]
    for key in SUMMARY_KEYS:
        parts.extend(_strings(analysis.get(key)))
    for key in TECHNIQUE_KEYS:
        parts.extend(_strings(analysis.get(key)))
    return "\n".join(part.strip() for part in parts if part and part.strip())


def techniques_of(analysis: dict[str, Any]) -> set[str]:
    """ATT&CK technique ids (T1566, T1566.001) named anywhere in the technique fields."""
    found: set[str] = set()
    for key in TECHNIQUE_KEYS:
        for text in _strings(analysis.get(key)):
            found.update(TECHNIQUE_ID.findall(text))
    return found


def _strings(value: Any) -> Iterable[str]:
    """Every string inside a JSON value (dict values, list items), depth-first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
