"""What gets embedded for an analysis, and the indicators that explain why two incidents match."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

SUMMARY_KEYS = ("summary", "category", "classification", "incident_type", "attack_vector",
                "root_cause", "impact")
IOC_KEYS = ("iocs", "indicators", "indicators_of_compromise", "observables")
TECHNIQUE_KEYS = ("attack_techniques", "mitre_attack", "techniques", "ttps", "mitre_techniques")
TECHNIQUE_ID = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")
_TEXT_INDICATORS = re.compile(
    r"\b(?:[a-f0-9]{64}|[a-f0-9]{40}|[a-f0-9]{32})\b"  # sha256, sha1, md5
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b"  # IPv4
    r"|\bCVE-\d{4}-\d{4,7}\b",
    re.IGNORECASE,
)


def embedding_text(title: str, description: str, initial_findings: str,
                   analysis: dict[str, Any]) -> str:
    """The text embedded for one analysis, before PII is stripped.

    The incident's title, description and initial findings, then the analysis'
    summary-like fields (summary, category, classification, type, vector, root cause,
    impact) and the names and ids of its ATT&CK techniques. IOCs are matched exactly
    (shared_indicators), not through the embedding.
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


def iocs_of(analysis: dict[str, Any]) -> set[str]:
    """Indicator values (IPs, domains, hashes, URLs, senders) from the IOC fields, lower-cased."""
    found: set[str] = set()
    for key in IOC_KEYS:
        found.update(value.strip().lower() for value in _strings(analysis.get(key))
                     if len(value.strip()) >= 4)
    return found


def indicators_in_text(text: str) -> tuple[set[str], set[str]]:
    """IOCs (hashes, IPv4, CVE ids) and ATT&CK ids typed in a free-text query."""
    iocs = {match.lower() for match in _TEXT_INDICATORS.findall(text)}
    return iocs, set(TECHNIQUE_ID.findall(text))


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
