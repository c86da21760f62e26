"""The incident list's filter language: facets, quoted phrases and OR, parsed without I/O.

    ransomware lockbit             incidents holding both words (prefixes match)
    "lateral movement"             the phrase, words next to each other
    phishing OR smishing           either
    critical  /  severity:high,critical     the latest severity (a facet, not a word)
    since:2026-11-01 until:2026-11-20       created in that range (UTC days, both included)
    model:gpt-4o                   analysed at least once by that model
    192.0.2.9  T1486  evil[.]com   an indicator: exact, no prefix, found in the incident's
                                   text or in any of its analyses (incident_indicators)

Invariants: parsing never raises; a facet it cannot read is reported in `problems` (naming
the facet) and left out, never guessed; the description says how every part was understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from store.indicators import indicator_of

SEVERITY_LEVELS = ("critical", "high", "medium", "low", "info", "informational")
_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 16


@dataclass(frozen=True)
class Term:
    """A word (matched as a prefix), a phrase (its words in order) or an indicator (its one
    canonical value, matched exactly against the incident_indicators table)."""

    words: tuple[str, ...]
    phrase: bool = False
    indicator: bool = False


@dataclass(frozen=True)
class IncidentFilter:
    """A parsed filter: text alternatives (OR of ANDed terms) and facets."""

    alternatives: tuple[tuple[Term, ...], ...] = ()
    severities: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    models: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def has_indicators(self) -> bool:
        """Whether some text term is an indicator (matched exactly, not as words)."""
        return any(term.indicator for terms in self.alternatives for term in terms)

    @property
    def empty(self) -> bool:
        """Whether nothing filters (problems alone filter nothing)."""
        return not (self.alternatives or self.severities or self.since or self.until
                    or self.models)

    @property
    def since_moment(self) -> datetime | None:
        """The first instant of the since day, UTC."""
        return None if self.since is None else datetime.combine(self.since, datetime.min.time(),
                                                                 tzinfo=UTC)

    @property
    def until_moment(self) -> datetime | None:
        """The first instant after the until day, UTC."""
        return None if self.until is None else datetime.combine(
            self.until + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    def description(self) -> str:
        """How the filter was understood, in one line."""
        parts = []
        if self.severities:
            parts.append("severity " + " or ".join(self.severities))
        if self.since and self.until:
            parts.append(f"created {self.since} to {self.until}")
        elif self.since:
            parts.append(f"created since {self.since}")
        elif self.until:
            parts.append(f"created until {self.until}")
        if self.models:
            parts.append("model " + " or ".join(self.models))
        if self.alternatives:
            parts.append("text " + " OR ".join(
                " ".join(_shown(term) for term in terms) for terms in self.alternatives))
        parts.extend(self.problems)
        return "; ".join(parts)


def _shown(term: Term) -> str:
    if term.indicator:
        return f"={term.words[0]}"
    return f"“{' '.join(term.words)}”" if term.phrase else " ".join(term.words)


def parse_incident_filter(query: str | None) -> IncidentFilter:
    """Read a typed filter into text terms and facets (see the module docstring)."""
    alternatives: list[list[Term]] = [[]]
    severities: list[str] = []
    models: list[str] = []
    problems: list[str] = []
    dates: dict[str, date] = {}
    count = 0
    for match in _TOKEN.finditer(query or ""):
        quoted, bare = match.group(1), match.group(2)
        if quoted is not None:
            words = tuple(_WORD.findall(quoted))
            if words and count < MAX_TERMS:
                alternatives[-1].append(Term(words, phrase=len(words) > 1))
                count += 1
            continue
        if bare == "OR":
            if alternatives[-1]:
                alternatives.append([])
            continue
        name, colon, value = bare.partition(":")
        facet = name.lower() if colon else ""
        if facet in ("severity", "sev"):
            for level in filter(None, value.lower().split(",")):
                if level in SEVERITY_LEVELS or level == "none":
                    severities.append(level)
                else:
                    problems.append(f"severity:{level} is not a level (critical, high, "
                                    "medium, low, info, none)")
        elif facet in ("since", "until"):
            try:
                dates[facet] = date.fromisoformat(value)
            except ValueError:
                problems.append(f"{facet}:{value} is not a date like 2026-11-01")
        elif facet == "model":
            if value:
                models.append(value)
        elif not colon and bare.lower() in SEVERITY_LEVELS:
            severities.append(bare.lower())
        elif (indicator := indicator_of(bare)) is not None:
            if count < MAX_TERMS:
                alternatives[-1].append(Term((indicator.value,), indicator=True))
                count += 1
        else:
            words = tuple(_WORD.findall(bare))
            if words and count < MAX_TERMS:
                alternatives[-1].extend(Term((word,)) for word in words)
                count += len(words)
    kept = tuple(tuple(terms) for terms in alternatives if terms)
    return IncidentFilter(kept, tuple(dict.fromkeys(severities)), dates.get("since"),
                          dates.get("until"), tuple(dict.fromkeys(models)), tuple(problems))


# Encrypted text (issue 10) -----------------------------------------------------------------
# Descriptions, findings and analyses are sealed; the text index holds the incident id, the
# title and the blind-index tokens of the sealed text (store.crypto.blind_index). A word then
# matches the id or title by prefix, or the sealed text exactly (its token); a phrase matches
# the id or title only. A store that does not encrypt keeps the words themselves as its search
# terms, and a word matches them by prefix too.

def fts5_match_with_blind_index(parsed: IncidentFilter,
                                token_of: Callable[[str], str] | None) -> str | None:
    """The FTS5 MATCH expression over incidents_fts(incident_id, title, search_terms)."""
    if not parsed.alternatives:
        return None
    groups = []
    for terms in _word_terms(parsed):
        groups.append("(" + " AND ".join(_fts5_blind_term(term, token_of)
                                         for term in terms) + ")")
    return " OR ".join(groups)


def _fts5_blind_term(term: Term, token_of: Callable[[str], str] | None) -> str:
    if term.phrase:
        return f'{{incident_id title}} : "{" ".join(term.words)}"'
    prefix = f'{{incident_id title}} : "{term.words[0]}"*'
    if token_of is None:  # a clear-text store: its search terms are the words themselves
        return f'({prefix} OR search_terms : "{term.words[0].lower()}"*)'
    return f'({prefix} OR search_terms : "{token_of(term.words[0])}")'


def pg_tsquery_with_blind_index(parsed: IncidentFilter,
                                token_of: Callable[[str], str] | None) -> str | None:
    """The PostgreSQL tsquery over store.db.models.PG_SEARCH_VECTOR (weight A: id and
    title, weight B: blind-index tokens)."""
    if not parsed.alternatives:
        return None
    groups = []
    for terms in _word_terms(parsed):
        groups.append("(" + " & ".join(_pg_blind_term(term, token_of) for term in terms) + ")")
    return " | ".join(groups)


def _pg_blind_term(term: Term, token_of: Callable[[str], str] | None) -> str:
    if term.phrase:
        return "(" + " <-> ".join(f"{word.lower()}:A" for word in term.words) + ")"
    prefix = f"{term.words[0].lower()}:*A"
    if token_of is None:  # a clear-text store: its search terms are the words themselves
        return f"{term.words[0].lower()}:*"
    return f"({prefix} | {token_of(term.words[0])}:B)"


def _word_terms(parsed: IncidentFilter) -> tuple[tuple[Term, ...], ...]:
    """The alternatives of words and phrases; indicator terms are matched apart (queries.py
    asks for the words of one alternative at a time when a filter holds indicators)."""
    if parsed.has_indicators:
        raise ValueError("a filter with indicators is matched one alternative at a time")
    return parsed.alternatives


def words_only(terms: tuple[Term, ...]) -> IncidentFilter:
    """One alternative's words and phrases as a filter of their own (no indicators, no facets),
    for the text index to match."""
    return IncidentFilter((tuple(term for term in terms if not term.indicator),))
