"""The chat prompt of one analysis: the incident's text and the similar past incidents."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from store.analyze.redact import Redaction
from store.analyze.schema import json_schema

# Bump on any change to the wording below: it is part of every cache key.
PROMPT_VERSION = "1"
# OpenAI's rule of thumb for English text; good enough for an estimate before a run.
CHARS_PER_TOKEN = 4
MAX_FIELD_CHARS = 8_000
MAX_SUMMARY_CHARS = 600

SYSTEM_TEXT = """\
You are a senior SOC analyst. Analyse the security incident the user describes and answer \
with ONE JSON object and nothing else (no prose, no code fence) that follows this JSON schema:
{schema}

Rules:
- severity is one of informational, low, medium, high, critical.
- attack_techniques holds MITRE ATT&CK techniques with their ids (T1566 or T1566.001).
- iocs lists only indicators that appear in the incident text; never invent any.
- confidence is a number from 0 to 1.
- Similar past incidents, when given, are context from this SOC's history: reuse what \
applies, say nothing about what does not.
- Values like <EMAIL_ab12cd34ef56> stand for redacted personal data: copy them unchanged."""


@dataclass(frozen=True, slots=True)
class SimilarCase:
    """A past incident given to the model as context, with its best analysis' gist."""

    incident_id: str
    title: str
    score: float
    severity: str | None
    summary: str
    techniques: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Prompt:
    """The messages of one chat call and what identifies them."""

    system: str
    user: str
    similar_ids: list[str]

    @property
    def digest(self) -> str:
        """sha256 over both messages: the prompt's identity in the cache key."""
        return hashlib.sha256(f"{self.system}\x00{self.user}".encode()).hexdigest()

    @property
    def estimated_input_tokens(self) -> int:
        """Input tokens guessed from the prompt's length (before any call)."""
        return math.ceil((len(self.system) + len(self.user)) / CHARS_PER_TOKEN)

    def messages(self, repair: str | None = None) -> list[tuple[str, str]]:
        """(role, text) pairs; repair adds the previous reply and its validation error."""
        turns = [("system", self.system), ("human", self.user)]
        if repair is not None:
            turns.append(("human", repair))
        return turns


def build_prompt(incident_id: str, title: str, description: str, findings: str,
                 similar: list[SimilarCase], redaction: Redaction) -> Prompt:
    """The prompt for one incident, every free text passed through the redaction."""
    scrub = redaction.scrub
    lines = [
        f"Incident {scrub(incident_id)}",
        f"Title: {scrub(_clip(title, MAX_FIELD_CHARS)) or '(none)'}",
        f"Description: {scrub(_clip(description, MAX_FIELD_CHARS)) or '(none)'}",
        f"Initial findings: {scrub(_clip(findings, MAX_FIELD_CHARS)) or '(none)'}",
        "",
    ]
    if similar:
        lines.append("Similar past incidents from this SOC (most similar first):")
        for number, case in enumerate(similar, 1):
            techniques = ", ".join(case.techniques) or "none recorded"
            lines += [
                f"{number}. {scrub(case.incident_id)} (similarity {case.score:.2f}, "
                f"severity {case.severity or 'unknown'}): {scrub(case.title)}",
                f"   Summary: {scrub(_clip(case.summary, MAX_SUMMARY_CHARS)) or '(none)'}",
                f"   ATT&CK: {techniques}",
            ]
    else:
        lines.append("No similar past incident is on record.")
    schema = json.dumps(json_schema(), separators=(",", ":"))
    return Prompt(SYSTEM_TEXT.format(schema=schema), "\n".join(lines),
                  [case.incident_id for case in similar])


def repair_message(reply_text: str, problem: str) -> str:
    """The follow-up turn asking the model to fix a reply that failed validation."""
    return (f"Your previous reply was:\n{_clip(reply_text, MAX_FIELD_CHARS)}\n\n"
            f"It does not follow the schema: {problem}. Answer again with one corrected JSON "
            "object only.")


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " […]"
