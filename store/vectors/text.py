"""What gets embedded for an analysis, and the ATT&CK technique ids an analysis names."""

from __future__ import annotations

import re
from typing import Any

from store.indicators import json_strings

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
        parts.extend(json_strings(analysis.get(key)))
    for key in TECHNIQUE_KEYS:
        parts.extend(json_strings(analysis.get(key)))
    return "\n".join(part.strip() for part in parts if part and part.strip())


def techniques_of(analysis: dict[str, Any]) -> set[str]:
    """ATT&CK technique ids (T1566, T1566.001) named anywhere in the technique fields."""
    found: set[str] = set()
    for key in TECHNIQUE_KEYS:
        for text in json_strings(analysis.get(key)):
            found.update(TECHNIQUE_ID.findall(text))
    return found


