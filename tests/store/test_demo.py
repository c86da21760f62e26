"""The synthetic demo records: valid, deterministic, resumable, varied and realistic."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from store.demo import catalog as demo_catalog
from store.demo.generator import DemoSequence, generate_records
from store.schemas import AnalysisIn

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
DOCUMENTATION_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")
SAFE_MAIL_DOMAINS = (".example", ".test", ".invalid", "example.com", "example.org", "example.net")
UNFILLED = re.compile(r"\{[a-z0-9_]+\}")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return list(generate_records(2000, seed=0, now=NOW))


def _digest(batch: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(batch).encode()).hexdigest()


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


def test_every_record_validates_as_save_input(records: list[dict[str, Any]]) -> None:
    for record in records:
        parsed = AnalysisIn.model_validate(record)
        assert parsed.usage is not None and parsed.usage.kind == "chat"
        assert parsed.usage.total_tokens == parsed.usage.input_tokens + parsed.usage.output_tokens
        assert 800 <= parsed.usage.input_tokens <= 6000
        assert 200 <= parsed.usage.output_tokens <= 1500
        assert parsed.usage.start_time and parsed.usage.end_time
        seconds = (parsed.usage.end_time - parsed.usage.start_time).total_seconds()
        assert 2 <= seconds <= 40
        assert parsed.incident.title and parsed.incident.description
        assert parsed.incident.initial_findings


def test_analysis_has_the_agent_shape(records: list[dict[str, Any]]) -> None:
    keys = {"summary", "severity", "category", "confidence", "attack_techniques", "iocs",
            "affected_assets", "timeline", "recommendations", "escalate"}
    for record in records:
        analysis = record["analysis"]
        assert set(analysis) == keys
        assert analysis["severity"] in {"critical", "high", "medium", "low"}
        assert 0 <= analysis["confidence"] <= 1
        assert 3 <= len(analysis["recommendations"]) <= 6
        assert isinstance(analysis["escalate"], bool)
        assert set(analysis["iocs"]) == {"ips", "domains", "hashes", "urls", "email_senders"}
        assert all(re.fullmatch("[0-9a-f]{64}", h) for h in analysis["iocs"]["hashes"])
        assert analysis["affected_assets"] and analysis["timeline"]
        assert not UNFILLED.search(json.dumps(analysis))
        for technique in analysis["attack_techniques"]:
            name, tactic = demo_catalog.TECHNIQUES[technique["id"]]
            assert technique == {"id": technique["id"], "name": name, "tactic": tactic}


def test_same_records_in_two_calls() -> None:
    first = list(generate_records(300, seed=7, now=NOW))
    second = list(generate_records(300, seed=7, now=NOW))
    assert json.dumps(first) == json.dumps(second)


def test_same_records_in_another_process() -> None:
    script = (
        "import hashlib, json, sys\n"
        "from datetime import UTC, datetime\n"
        "from store.demo.generator import generate_records\n"
        "now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)\n"
        "batch = list(generate_records(300, seed=7, now=now))\n"
        "print(hashlib.sha256(json.dumps(batch).encode()).hexdigest())\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=environment,
                          capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == _digest(list(generate_records(300, seed=7, now=NOW)))


def test_other_seeds_give_other_records_and_ids() -> None:
    zero = list(generate_records(100, seed=0, now=NOW))
    one = list(generate_records(100, seed=1, now=NOW))
    assert _digest(zero) != _digest(one)
    ids_zero = {record["incident"]["incident_id"] for record in zero}
    assert ids_zero.isdisjoint(record["incident"]["incident_id"] for record in one)


@pytest.mark.parametrize("prefix", [1, 7, 10, 13, 100, 249])
def test_a_record_does_not_depend_on_count(records: list[dict[str, Any]], prefix: int) -> None:
    assert list(generate_records(prefix, seed=0, now=NOW)) == records[:prefix]


@pytest.mark.parametrize("start", [0, 1, 9, 10, 37, 120, 250])
def test_start_resumes_the_same_sequence(records: list[dict[str, Any]], start: int) -> None:
    assert list(generate_records(250, seed=0, now=NOW, start=start)) == records[start:250]


def test_batches_concatenate_to_the_whole_run(records: list[dict[str, Any]]) -> None:
    bounds = range(0, 400, 33)
    batches = (generate_records(min(begin + 33, 400), seed=0, now=NOW, start=begin)
               for begin in bounds)
    assert list(chain.from_iterable(batches)) == records[:400]
    assert DemoSequence(0, NOW).record(123) == records[123]


def test_start_past_count_yields_nothing() -> None:
    assert list(generate_records(5, now=NOW, start=5)) == []
    assert list(generate_records(5, now=NOW, start=50)) == []


def test_negative_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        list(generate_records(-1, now=NOW))
    with pytest.raises(ValueError):
        list(generate_records(10, now=NOW, start=-1))
    with pytest.raises(ValueError):
        list(generate_records(10, seed=-1, now=NOW))


def test_every_family_category_appears_in_500_records(records: list[dict[str, Any]]) -> None:
    seen = {record["analysis"]["category"] for record in records[:500]}
    assert seen == {family.category for family in demo_catalog.FAMILIES}


def test_severities_are_spread_with_few_critical(records: list[dict[str, Any]]) -> None:
    severities = Counter(record["analysis"]["severity"] for record in records)
    assert set(severities) == {"critical", "high", "medium", "low"}
    assert 0 < severities["critical"] < 0.1 * len(records)
    assert severities["critical"] < severities["high"] < severities["medium"]


def test_models_are_spread_and_a_few_are_unpriced(records: list[dict[str, Any]]) -> None:
    models = Counter(record["model_name"] for record in records)
    assert models.most_common(1)[0][0] == "gpt-4o-mini"
    assert len(models) >= 5
    unpriced = 0
    for name, calls in models.items():
        try:
            genai_prices.calc_price(genai_prices.Usage(input_tokens=1000, output_tokens=500), name)
        except LookupError:
            unpriced += calls
    assert 0.02 < unpriced / len(records) < 0.25


def test_incident_ids_repeat_only_for_reanalyses(records: list[dict[str, Any]]) -> None:
    positions: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        incident_id = record["incident"]["incident_id"]
        assert re.fullmatch(r"INC-20\d\d-\d{7}", incident_id)
        positions[incident_id].append(index)
    for indices in positions.values():
        assert len(indices) <= 3
        assert indices == list(range(indices[0], indices[0] + len(indices)))
        group = [records[i] for i in indices]
        assert all(member["incident"] == group[0]["incident"] for member in group)
        assert len({member["model_name"] for member in group}) == len(group)
        assert len({json.dumps(member["analysis"]) for member in group}) == len(group)
        starts = [_moment(member["usage"]["start_time"]) for member in group]
        assert starts == sorted(starts)
    reanalysed = sum(1 for indices in positions.values() if len(indices) > 1)
    assert 0.08 < reanalysed / len(positions) < 0.18


def test_timestamps_are_aware_and_in_the_90_days_before_now(
    records: list[dict[str, Any]],
) -> None:
    earliest = NOW - timedelta(days=90)
    for record in records:
        start = _moment(record["usage"]["start_time"])
        end = _moment(record["usage"]["end_time"])
        assert earliest <= start < end <= NOW
        moments = [_moment(event["timestamp"]) for event in record["analysis"]["timeline"]]
        assert moments == sorted(moments)
        assert earliest <= moments[0] and moments[-1] <= start


def test_default_now_is_the_current_time() -> None:
    before = datetime.now(UTC)
    for record in generate_records(20):
        start = _moment(record["usage"]["start_time"])
        assert before - timedelta(days=90) <= start <= datetime.now(UTC)


def test_times_favour_weekday_working_hours(records: list[dict[str, Any]]) -> None:
    starts = [_moment(record["usage"]["start_time"]) for record in records]
    weekdays = sum(1 for moment in starts if moment.weekday() < 5)
    office = sum(1 for moment in starts if moment.weekday() < 5 and 7 <= moment.hour < 20)
    assert weekdays / len(starts) > 0.78
    assert office / len(starts) > 0.55


def test_campaigns_share_iocs_and_repeat_near_duplicates(records: list[dict[str, Any]]) -> None:
    incidents_by_ioc: dict[str, set[str]] = defaultdict(set)
    incidents_by_title: dict[str, set[str]] = defaultdict(set)
    for record in records:
        incident_id = record["incident"]["incident_id"]
        incidents_by_title[record["incident"]["title"]].add(incident_id)
        for value in chain(record["analysis"]["iocs"]["hashes"],
                           record["analysis"]["iocs"]["domains"]):
            incidents_by_ioc[value].add(incident_id)
    assert max(map(len, incidents_by_ioc.values())) >= 10
    assert sum(1 for ids in incidents_by_ioc.values() if len(ids) >= 3) >= 20
    assert max(map(len, incidents_by_title.values())) >= 10


def test_texts_vary(records: list[dict[str, Any]]) -> None:
    incidents = {record["incident"]["incident_id"]: record["incident"] for record in records}
    descriptions = {incident["description"] for incident in incidents.values()}
    assert len(descriptions) > 0.8 * len(incidents)


def test_only_reserved_addresses_and_mail_domains(records: list[dict[str, Any]]) -> None:
    text = json.dumps(records)
    for address in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text):
        assert address.startswith(DOCUMENTATION_NETS), address
    for mail in re.findall(r"[\w.+-]+@([\w.-]+)", text):
        assert mail.rstrip(".").endswith(SAFE_MAIL_DOMAINS), mail
    assert not UNFILLED.search(json.dumps([record["incident"] for record in records]))
