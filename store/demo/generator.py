"""Realistic synthetic incidents and analyses for `incidex demo`, the same for a given seed."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate, combinations
from random import Random
from string import Formatter
from typing import Any

from store.demo import catalog as cat
from store.demo.catalog import Family, ModelProfile, Slots
from store.schemas import as_utc

BLOCK_SIZE = 10  # records per RNG block: an incident and its re-analyses never cross one
CAMPAIGN_POOL = 120
CAMPAIGN_SHARE = 0.3
WINDOW_DAYS = 90
IDS_PER_SEED = 10_000_000  # incident numbers of seed s start at s * IDS_PER_SEED + 1
# Timeline events reach ~67 hours before detection: keep them inside the window too.
_EARLIEST = (WINDOW_DAYS - 3) * 86400
_LATEST = 3 * 3600
_TAG_BLOCK, _TAG_CAMPAIGN = 1, 2
_STORM_VARYING = frozenset({"user", "user_login", "user_email", "host", "laptop", "bu", "bu_code"})
_IOC_TEXT_SLOTS = (("ip", "ip2"), ("domain",), (), ("url",), ("sender",))
_IOC_POOLS = {slot: f"ioc:{slot}" for slot in ("ip", "domain", "url", "sender")}
_CLOSINGS = ("The business owner of {bu} has been informed.",
             "The on-call analyst opened the case.")
_ID_CHARS = bytes(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[i % 62]
                  for i in range(256))
_REQUEST_ID_SHAPES = {"openai": ("chatcmpl-", 29), "anthropic": ("msg_01", 22), "google": ("", 24)}

Random01 = Callable[[], float]
IocPlan = tuple[int, tuple[str, ...], str, int, int]  # kind, slots the texts use, fresh slot, range


def _names(texts: Iterable[str]) -> set[str]:
    return {name for text in texts for _, name, _, _ in Formatter().parse(text) if name}


@dataclass(frozen=True, slots=True)
class _Plan:
    """What is worked out once per family: slot names, IOC recipe, severity weights."""

    all_names: tuple[str, ...]
    analysis_names: tuple[str, ...]
    # Slots drawn from a plain table, drawn all at once (a third of the cost of one by one).
    tables: tuple[tuple[str, tuple[str, ...]], ...]
    iocs: tuple[IocPlan, ...]
    severity: list[float]
    timeline_offsets: tuple[int, ...]  # seconds before detection
    timeline_text: str  # every event template, joined for one format_map call

    @classmethod
    def of(cls, family: Family) -> _Plan:
        """The plan of one family (names sorted: draws must happen in a fixed order)."""
        analysis = _names([*family.summaries, *family.recommendations,
                           *(text for _, text in family.timeline)]) | set(family.assets)
        every = analysis | _names([*family.titles, *family.openings, *family.details,
                                   *family.findings])
        every.discard("time_hm")
        analysis.discard("time_hm")
        fresh = ("ip", "domain", "", family.url_slot, "sender")
        iocs = []
        for kind, (least, most) in enumerate(family.iocs):
            used = tuple(name for name in _IOC_TEXT_SLOTS[kind] if name in every)
            if used or most:
                iocs.append((kind, used, fresh[kind], least, most))
        names = tuple(sorted(every))
        tables = tuple((name, cat.TABLES[name]) for name in names if name in cat.TABLES)
        return cls(names, tuple(sorted(analysis)), tables, tuple(iocs),
                   list(accumulate(family.severity)),
                   tuple(offset * 60 for offset, _ in family.timeline),
                   "\x1f".join(text for _, text in family.timeline))


_PLANS = {family.key: _Plan.of(family) for family in cat.FAMILIES}
_FAMILY_CUMULATIVE = list(accumulate(family.weight for family in cat.FAMILIES))
_CAMPAIGN_FAMILIES = tuple(family for family in cat.FAMILIES if family.campaign)
_CAMPAIGN_FAMILY_CUMULATIVE = list(accumulate(family.weight for family in _CAMPAIGN_FAMILIES))
_CAMPAIGN_CUMULATIVE = list(accumulate((rank + 1) ** -0.8 for rank in range(CAMPAIGN_POOL)))
# Per family: (id, name, tactic) of its core techniques, then of its optional ones.
_TECHNIQUES = {family.key: [(t, *cat.TECHNIQUES[t]) for t in (*family.core, *family.extra)]
               for family in cat.FAMILIES}
_MODEL_CUMULATIVE = list(accumulate(model.weight for model in cat.MODELS))
_REANALYSIS_CUMULATIVE = list(accumulate(model.reanalysis_weight for model in cat.MODELS))


@dataclass(frozen=True, slots=True)
class _Campaign:
    """Incidents sharing a family, attacker infrastructure and a few days of activity."""

    family: Family
    pools: dict[str, tuple[str, ...]]
    hashes: tuple[str, ...]
    start: int
    length: int
    # A storm repeats one incident with tiny changes: fixed (title, opening, details, findings).
    layout: tuple[int, int, tuple[int, ...], tuple[int, ...]] | None


@dataclass(slots=True)
class _Incident:
    """Everything the analyses of one incident share."""

    fields: dict[str, str]
    family: Family
    slots: dict[str, str]
    timeline: tuple[tuple[str, str], ...]
    iocs: list[tuple[str, ...]]
    severity: int
    models: tuple[ModelProfile, ...]
    starts_ms: tuple[int, ...]
    text_chars: int


def generate_records(
    count: int, seed: int = 0, *, now: datetime | None = None, start: int = 0
) -> Iterator[dict[str, Any]]:
    """Yield records start..count-1 of the demo sequence of (seed, now), in `--save` format."""
    if count < 0 or start < 0:
        raise ValueError("count and start must be >= 0")
    sequence = DemoSequence(seed, now)
    first_block, skip = divmod(start, BLOCK_SIZE)
    for block in range(first_block, -(-count // BLOCK_SIZE)):
        yield from sequence.block(block)[skip:count - block * BLOCK_SIZE]
        skip = 0


class DemoSequence:
    """The endless demo sequence of one seed and one `now`, built in blocks of BLOCK_SIZE records.

    Each block has its own RNG, seeded from (seed, block number), so a block never depends on
    another one or on how many records are asked for.
    """

    def __init__(self, seed: int = 0, now: datetime | None = None) -> None:
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self.seed = seed
        self.now = int(as_utc(now or datetime.now(UTC)).timestamp())
        self._rng = Random()
        self._campaign_rng = Random()  # campaigns are built lazily, never from a block's RNG
        self._campaigns: dict[int, _Campaign] = {}

    def record(self, index: int) -> dict[str, Any]:
        """Record number index (from 0), in the `incidex --save` format."""
        block, position = divmod(index, BLOCK_SIZE)
        return self.block(block)[position]

    def block(self, block: int) -> list[dict[str, Any]]:
        """Records block * BLOCK_SIZE onwards: incidents, each followed by its re-analyses."""
        self._rng.seed(_key(self.seed, _TAG_BLOCK, block))
        random = self._rng.random
        records: list[dict[str, Any]] = []
        while len(records) < BLOCK_SIZE:
            draw = random()
            analyses = min(1 if draw < 0.86 else 2 if draw < 0.965 else 3,
                           BLOCK_SIZE - len(records))
            incident = self._new_incident(block * BLOCK_SIZE + len(records), analyses)
            for ordinal in range(analyses):
                records.append(_record(incident, ordinal, self._rng))
        return records

    def _campaign(self, rank: int) -> _Campaign:
        campaign = self._campaigns.get(rank)
        if campaign is None:
            campaign = _new_campaign(self._campaign_rng, self.seed, rank, self.now)
            self._campaigns[rank] = campaign
        return campaign

    def _new_incident(self, primary: int, analyses: int) -> _Incident:
        random = self._rng.random
        campaign = None
        if random() < CAMPAIGN_SHARE:
            rank = bisect(_CAMPAIGN_CUMULATIVE, random() * _CAMPAIGN_CUMULATIVE[-1])
            campaign = self._campaign(rank)
            family, low, high = campaign.family, campaign.start, campaign.start + campaign.length
        else:
            family = _weighted(random, cat.FAMILIES, _FAMILY_CUMULATIVE)
            low, high = self.now - _EARLIEST, self.now - _LATEST
        detected = _working_time(random, low, high)
        number = self.seed * IDS_PER_SEED + primary + 1
        incident_id = f"INC-{_day_prefix(detected // 86400)[:4]}-{number:07d}"
        slots = Slots(self._rng, campaign.pools if campaign else {})
        return _build_incident(slots, family, campaign, detected, incident_id, analyses, self.now)


def _key(seed: int, tag: int, index: int) -> int:
    return (seed << 56) | (tag << 48) | index


def _weighted(random: Random01, options: tuple[Any, ...], cumulative: list[float]) -> Any:
    return options[bisect(cumulative, random() * cumulative[-1])]


@lru_cache(maxsize=256)
def _subsets(count: int, size: int) -> tuple[tuple[int, ...], ...]:
    return tuple(combinations(range(size), min(count, size)))


def _ordered_sample(random: Random01, count: int, size: int) -> tuple[int, ...]:
    """count distinct indices below size, uniformly, ascending (templates keep their order)."""
    subsets = _subsets(count, size)
    return subsets[int(random() * len(subsets))]


@lru_cache(maxsize=4096)
def _day_prefix(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT")


_MINUTES = tuple(f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440))
_SECONDS = tuple(f"{second:02d}" for second in range(60))
_SECONDS_UTC = tuple(f"{second:02d}+00:00" for second in range(60))
_MILLIS_UTC = tuple(f".{millis:03d}+00:00" for millis in range(1000))


def _clock(seconds: int) -> str:
    """ISO 8601 date and time of a Unix time without offset (5x faster than datetime)."""
    day, rest = divmod(seconds, 86400)
    minute, second = divmod(rest, 60)
    return _day_prefix(day) + _MINUTES[minute] + _SECONDS[second]


def _iso(seconds: int) -> str:
    day, rest = divmod(seconds, 86400)
    minute, second = divmod(rest, 60)
    return _day_prefix(day) + _MINUTES[minute] + _SECONDS_UTC[second]


def _iso_ms(millis: int) -> str:
    seconds, rest = divmod(millis, 1000)
    return _clock(seconds) + _MILLIS_UTC[rest]


def _working_time(random: Random01, low: int, high: int) -> int:
    """A moment in [low, high), three to five times likelier in weekday working hours (UTC)."""
    for _ in range(8):
        moment = low + int(random() * (high - low))
        day, second = divmod(moment, 86400)
        weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        working = 25200 <= second < 68400  # 07:00-19:00
        if random() < (0.22 if weekend else 1.0 if working else 0.3):
            break
    return moment


def _format_all(templates: list[str], slots: dict[str, str]) -> list[str]:
    """Fill several templates with one format_map call (a third of the cost of one each)."""
    return "\x1f".join(templates).format_map(slots).split("\x1f")


def _incident_layout(s: Slots, family: Family) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    random = s.random
    title, opening = int(random() * len(family.titles)), int(random() * len(family.openings))
    details = _ordered_sample(random, 1 + int(random() * 4), len(family.details))
    findings = _ordered_sample(random, 1 + int(random() * 2), len(family.findings))
    return title, opening, tuple(details), tuple(findings)


def _new_campaign(rng: Random, seed: int, rank: int, now: int) -> _Campaign:
    rng.seed(_key(seed, _TAG_CAMPAIGN, rank))
    s = Slots(rng, {})
    family = _weighted(s.random, _CAMPAIGN_FAMILIES, _CAMPAIGN_FAMILY_CUMULATIVE)
    length = (1 + int(s.random() * 10)) * 86400
    earliest, latest = now - _EARLIEST, now - _LATEST
    start = earliest + int(s.random() * (latest - earliest - length))
    hashes = tuple(f"{rng.getrandbits(256):064x}" for _ in range(2 + int(s.random() * 3)))
    if s.random() < family.storm_chance:
        layout = _incident_layout(s, family)
        for name in _PLANS[family.key].all_names:
            s[name]  # noqa: B018 - drawing a value fixes it for the whole storm
        fixed: dict[str, tuple[str, ...]] = {
            key: (value,) for key, value in s.items() if key not in _STORM_VARYING
        }
        return _Campaign(family, fixed, hashes[:1], start, length, layout)
    # Texts name the main domain (so a sender and its domain agree); IOCs draw on all of it.
    ips = tuple(cat.fresh_ip(s) for _ in range(3 + int(s.random() * 4)))
    domains = tuple(cat.fresh_domain(s) for _ in range(2 + int(s.random() * 2)))
    urls = tuple(f"https://{domain}{s.pick(cat.URL_PATHS)}" for domain in domains)
    senders = tuple(f"{s.pick(cat.SENDER_LOCALS)}@{domain}" for domain in domains)
    pools = {
        "ip": ips, "domain": domains[:1], "url": urls[:1], "sender": senders[:1],
        "subject": (s.pick(cat.SUBJECTS), s.pick(cat.SUBJECTS)),
        "ioc:ip": ips, "ioc:domain": domains, "ioc:url": urls, "ioc:sender": senders,
    }
    shared = ("malware", "ransomware", "c2", "cve", "vuln_product", "vuln_kind", "vuln_host",
              "package", "registry", "country")
    pools.update((key, (s[key],)) for key in shared)
    return _Campaign(family, pools, hashes, start, length, None)


def _build_incident(
    s: Slots, family: Family, campaign: _Campaign | None, detected: int, incident_id: str,
    analyses: int, now: int,
) -> _Incident:
    plan, random = _PLANS[family.key], s.random
    s.update([(key, options[int(random() * len(options))]) for key, options in plan.tables])
    if campaign:
        s.update([(key, pool[int(random() * len(pool))])
                  for key, pool in campaign.pools.items() if key in plan.all_names])
    s["time_hm"] = f"{_clock(detected)[11:16]} UTC"
    storm = campaign.layout if campaign else None
    title, opening, details, findings = storm or _incident_layout(s, family)
    sentences = [family.openings[opening], *(family.details[i] for i in details)]
    if storm is None and s.random() < 0.25:
        sentences.append(s.pick(_CLOSINGS))
    texts = [family.titles[title], " ".join(sentences),
             " ".join([family.findings[i] for i in findings])]
    heading, description, first_findings = _format_all(texts, s)
    fields = {"incident_id": incident_id, "title": heading, "description": description,
              "initial_findings": first_findings}
    for name in plan.analysis_names:
        s[name]  # noqa: B018 - analyses read a frozen copy, so every value is drawn now
    timeline = _timeline(s, plan, detected)
    iocs = _incident_iocs(s, plan, campaign)
    severity = bisect(plan.severity, s.random() * plan.severity[-1])
    models = _pick_models(s.random, analyses)
    starts = _analysis_starts(s.random, detected, analyses, now)
    chars = len(heading) + len(description) + len(first_findings)
    return _Incident(fields, family, dict(s), timeline, iocs, min(severity, 3), models, starts,
                     chars)


def _timeline(s: Slots, plan: _Plan, detected: int) -> tuple[tuple[str, str], ...]:
    random = s.random
    moments = sorted([detected + int(offset * (0.6 + 0.8 * random()))
                      for offset in plan.timeline_offsets])
    events = plan.timeline_text.format_map(s).split("\x1f")
    return tuple(zip(map(_iso, moments), events, strict=True))


def _incident_iocs(s: Slots, plan: _Plan, campaign: _Campaign | None) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [(), (), (), (), ()]
    for kind, used, fresh, least, most in plan.iocs:
        values = [s[name] for name in used]
        for _ in range(least + int(s.random() * (most - least + 1))):
            values.append(_ioc_value(s, fresh, campaign))
        found[kind] = tuple(dict.fromkeys(values))
    return found


def _ioc_value(s: Slots, slot: str, campaign: _Campaign | None) -> str:
    """An extra IOC: usually from the campaign's infrastructure, else a new one."""
    if not slot:
        if campaign and s.random() < 0.85:
            return s.pick(campaign.hashes)
        return f"{s.rng.getrandbits(256):064x}"
    pool = s.pools.get(_IOC_POOLS.get(slot, ""))
    if pool and s.random() < 0.85:
        return s.pick(pool)
    return cat.FRESH_IOCS[slot](s)


def _pick_models(random: Random01, analyses: int) -> tuple[ModelProfile, ...]:
    models = [_weighted(random, cat.MODELS, _MODEL_CUMULATIVE)]
    while len(models) < analyses:
        candidate = _weighted(random, cat.MODELS, _REANALYSIS_CUMULATIVE)
        if candidate not in models:
            models.append(candidate)
    return tuple(models)


def _analysis_starts(random: Random01, detected: int, analyses: int, now: int) -> tuple[int, ...]:
    """Start of each call in ms: minutes after detection; re-analyses hours or days later."""
    start = detected * 1000 + int((120 + random() * 5280) * 1000)
    starts, latest = [start], (now - 60) * 1000
    for _ in range(1, analyses):
        later = start + int((3600 + random() * 3 * 86400) * 1000)
        if later > latest:
            later = start + 1 + int((latest - start) * random())
        starts.append(later)
        start = later
    return tuple(starts)


def _record(incident: _Incident, ordinal: int, rng: Random) -> dict[str, Any]:
    model = incident.models[ordinal]
    analysis = _analysis(incident, model, ordinal, rng.random)
    usage = _usage(incident, model, analysis, incident.starts_ms[ordinal], rng)
    return {"incident": dict(incident.fields), "analysis": analysis, "model_name": model.name,
            "usage": usage}


def _reported(incident: _Incident, weak: bool, again: bool, random: Random01
              ) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """The IOCs and timeline a model reports: a small model or a re-run may miss an item."""
    ips, domains, hashes, urls, senders = incident.iocs
    iocs = {"ips": list(ips), "domains": list(domains), "hashes": list(hashes), "urls": list(urls),
            "email_senders": list(senders)}
    if weak:
        for values in iocs.values():
            if len(values) > 1 and random() < 0.3:
                values.pop()
    timeline = [{"timestamp": moment, "event": event} for moment, event in incident.timeline]
    if (weak or again) and len(timeline) > 3 and random() < 0.4:
        del timeline[1 + int(random() * (len(timeline) - 2))]
    return iocs, timeline


def _analysis(incident: _Incident, model: ModelProfile, ordinal: int, random: Random01
              ) -> dict[str, Any]:
    """What the agent answered: consistent with the incident, varying with the model."""
    family, slots, weak = incident.family, incident.slots, model.verbosity < 0.9
    severity = incident.severity
    if random() < (0.1 if ordinal == 0 else 0.35) + (0.15 if weak else 0.0):
        severity = min(3, max(0, severity + (1 if random() < 0.5 else -1)))
    level = cat.SEVERITIES[severity]
    least, most = model.extra_techniques
    extra = _ordered_sample(random, least + int(random() * (most - least + 1)), len(family.extra))
    techniques = _TECHNIQUES[family.key]
    chosen_techniques = techniques[:len(family.core)] + [techniques[len(family.core) + i]
                                                         for i in extra]
    iocs, timeline = _reported(incident, weak, ordinal > 0, random)
    advice = family.recommendations
    chosen = _ordered_sample(random, 3 + int(random() * 4), len(advice))
    summary = family.summaries[int(random() * len(family.summaries))]
    summary, *recommendations = _format_all([summary, *(advice[i] for i in chosen)], slots)
    notes = cat.SEVERITY_NOTES[level]
    low, high = model.confidence
    return {
        "summary": f"{summary} {notes[int(random() * len(notes))]}",
        "severity": level,
        "category": family.category,
        "confidence": round(low + (high - low) * random(), 2),
        "attack_techniques": [{"id": technique_id, "name": name, "tactic": tactic}
                              for technique_id, name, tactic in chosen_techniques],
        "iocs": iocs,
        "affected_assets": [slots[name] for name in family.assets],
        "timeline": timeline,
        "recommendations": recommendations,
        "escalate": random() < cat.ESCALATE_CHANCE[level],
    }


def _usage(incident: _Incident, model: ModelProfile, analysis: dict[str, Any], start_ms: int,
           rng: Random) -> dict[str, Any]:
    random = rng.random
    similar = int(random() * 6) * (250 + int(random() * 650))  # similar incidents in the prompt
    input_tokens = min(6000, max(800, 700 + incident.text_chars // 4 + similar))
    size = (160 + 45 * len(analysis["attack_techniques"]) + 30 * len(analysis["timeline"])
            + 14 * sum(map(len, analysis["iocs"].values()))
            + 34 * len(analysis["recommendations"]) + len(analysis["summary"]) // 4)
    output_tokens = min(1500, max(200, int(size * model.verbosity * (0.8 + 0.5 * random()))))
    slow, fast = model.tokens_per_second
    quick, lazy = model.latency_seconds
    seconds = quick + (lazy - quick) * random() + output_tokens / (slow + (fast - slow) * random())
    duration_ms = int(min(40.0, max(2.0, seconds)) * 1000)
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "start_time": _iso_ms(start_ms),
        "end_time": _iso_ms(start_ms + duration_ms),
        "request_id": _request_id(model.request_id_style, rng),
        "kind": "chat",
    }


def _request_id(style: str, rng: Random) -> str:
    """A request id shaped like the provider's (random enough not to collide in practice)."""
    if style == "ollama":
        return f"chatcmpl-{rng.getrandbits(48)}"
    prefix, length = _REQUEST_ID_SHAPES[style]
    return prefix + rng.randbytes(length).translate(_ID_CHARS).decode("ascii")
