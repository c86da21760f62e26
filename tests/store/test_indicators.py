"""Indicators of compromise: extraction (every kind, the false positives that must not match),
the incident_indicators table (save, cascade, backfill), and similar search ranking by them."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from store.db.indicators import stored_form
from store.db.migrate import upgrade
from store.indicators import Indicator, indicator_of, indicators_in, indicators_of_incident
from store.schemas import AnalysisIn
from tests.conftest import make_record


def _values(text_: str) -> set[tuple[str, str]]:
    return {(indicator.kind, indicator.value) for indicator in indicators_in(text_)}


@pytest.mark.parametrize(("written", "kind", "value"), [
    ("beacon to 192.0.2.90.", "ipv4", "192.0.2.90"),
    ("from 2001:DB8:0:0::1 over", "ipv6", "2001:db8::1"),
    ("fe80::1ff:fe23:4567:890a", "ipv6", "fe80::1ff:fe23:4567:890a"),
    ("domain support-payroll.test hosted it", "domain", "support-payroll.test"),
    ("resolved Mail.Example.COM", "domain", "mail.example.com"),
    ("see https://evil.example.net/a/b?c=1).", "url", "https://evil.example.net/a/b?c=1"),
    ("sender payroll@support-payroll.test wrote", "email", "payroll@support-payroll.test"),
    ("md5 D41D8CD98F00B204E9800998ECF8427E", "md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ("sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709", "sha1",
     "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("exploited cve-2021-44228 in", "cve", "CVE-2021-44228"),
    ("technique T1486 (encryption)", "technique", "T1486"),
    ("ran T1059.001, then", "technique", "T1059.001"),
])
def test_every_kind_is_found_in_its_canonical_form(written: str, kind: str, value: str) -> None:
    assert (kind, value) in _values(written)


@pytest.mark.parametrize(("defanged", "kind", "value"), [
    ("hxxp://support-payroll[.]test/login", "url", "http://support-payroll.test/login"),
    ("hxxps[:]//evil[.]example/x", "url", "https://evil.example/x"),
    ("evil[.]example(.)net", "domain", "evil.example.net"),
    ("bob[@]corp[.]example", "email", "bob@corp.example"),
    ("bob[at]corp[dot]example", "email", "bob@corp.example"),
    ("192[.]0[.]2[.]7", "ipv4", "192.0.2.7"),
])
def test_defanged_indicators_are_read_as_the_real_ones(defanged: str, kind: str,
                                                       value: str) -> None:
    assert (kind, value) in _values(f"seen {defanged} today")


@pytest.mark.parametrize("prose", [
    "opened report.pdf and invoice.docx, then cmd.exe ran rundll32.exe",
    "e.g. the file, i.e. the share, in the U.S. and a.m. or p.m.",
    "1,248 hosts and 417,000 records; 3.5 million people; call 1-877-327-1090",
    "Windows version 10.0.19041.1 and build 6.1.7601.2 and v1.2.3.4 and version 2.0.0.1",
    "a dotted run 1.2.3.4.5 of five numbers and 999.1.1.1 out of range",
    "hex deadbeef00 and 0123456789abcdef0123456789abcdef0 (33) and a 31: "
    "0123456789abcdef0123456789abcde",
    "0123456789012345678901234567890123456789 is all digits",
    "T12 and T12345 and T1.001 and AT1486 are not techniques",
    "the server.The attacker left at 10:30:00 from 00:1a:2b:3c:4d:5e",
    "ratio 3:2 and 2001: a space odyssey and ::",
])
def test_false_positives_are_not_indicators(prose: str) -> None:
    assert _values(prose) == set()


def test_a_url_and_an_address_also_give_their_host() -> None:
    found = _values("hxxp://support-payroll[.]test/a and ops@corp.example and http://192.0.2.4/x")
    assert {("domain", "support-payroll.test"), ("domain", "corp.example"),
            ("ipv4", "192.0.2.4")} <= found


@given(st.ip_addresses(v=4))
@settings(max_examples=200, deadline=None)
def test_any_ipv4_in_prose_is_found_exactly(address: ipaddress.IPv4Address) -> None:
    assert _values(f"Traffic to {address}, blocked.") == {("ipv4", str(address))}


@given(st.ip_addresses(v=6))
@settings(max_examples=200, deadline=None)
def test_any_ipv6_in_prose_is_found_compressed(address: ipaddress.IPv6Address) -> None:
    if address.ipv4_mapped is not None or "." in str(address):
        return  # dotted IPv4 tails are not read as IPv6 (see below)
    found = _values(f"Traffic to {address.exploded} blocked")
    assert ("ipv6", address.compressed) in found


@given(st.lists(st.sampled_from("abcdefghijklmnopqrstuvwxyz ,;'-!?"), max_size=300))
@settings(max_examples=200, deadline=None)
def test_text_without_digits_dots_or_at_signs_holds_nothing(characters: list[str]) -> None:
    assert indicators_in("".join(characters)) == set()


def test_whole_terms_are_indicators_and_words_are_not() -> None:
    assert indicator_of("192.0.2.248") == Indicator("ipv4", "192.0.2.248")
    assert indicator_of("T1486") == Indicator("technique", "T1486")
    assert indicator_of("evil[.]com,") == Indicator("domain", "evil.com")
    assert indicator_of("ops@corp.example") == Indicator("email", "ops@corp.example")
    for word in ("phishing", "1,248", "e.g.", "report.pdf", "T12", "x192.0.2.1"):
        assert indicator_of(word) is None, word


def test_analyses_are_read_whole_and_listed_iocs_kept_verbatim() -> None:
    found = indicators_of_incident("Title", "beacon to 192.0.2.90", "", [
        {"summary": "encrypted shares", "attack_techniques": [{"id": "T1486"}],
         "iocs": ["invoice.docx", "HKCU\\Software\\Run\\updater", "evil.example"]}])
    assert {(i.kind, i.value) for i in found} == {
        ("ipv4", "192.0.2.90"), ("technique", "T1486"), ("domain", "evil.example"),
        ("other", "invoice.docx"), ("other", "hkcu\\software\\run\\updater")}


def _incident_rows(store: Any, incident_id: str) -> set[tuple[str, str]]:
    """The incident's indicator rows as (kind, stored value)."""
    with store.engine.connect() as connection:
        return {(kind, value) for kind, value in connection.execute(text(
            "SELECT kind, value FROM incident_indicators WHERE incident_id = :i"),
            {"i": incident_id})}


def _stored(store: Any, rows: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Clear (kind, value) pairs as the table stores them: keyed tokens when the store seals
    its text, else the values."""
    with store.engine.connect() as connection:
        form = stored_form(connection)
    return {(kind, form(value)) for kind, value in rows}


def _save(store: Any, incident_id: str, description: str, analysis: dict[str, Any]) -> None:
    record = make_record(incident_id, analysis=analysis)
    record["incident"]["description"] = description
    results = store.save_many([(incident_id, AnalysisIn.model_validate(record))])
    assert results[0].status == "saved", results


def test_saving_stores_the_indicators_of_text_and_analysis(store: Any) -> None:
    _save(store, "INC-1", "Beacon to 192.0.2.90 from payroll@support-payroll.test.",
          {"summary": "ransomware", "attack_techniques": ["T1486"]})
    _save(store, "INC-1", "", {"summary": "second look", "iocs": ["198.51.100.7"]})
    assert _incident_rows(store, "INC-1") == _stored(store, {
        ("ipv4", "192.0.2.90"), ("email", "payroll@support-payroll.test"),
        ("domain", "support-payroll.test"), ("technique", "T1486"), ("ipv4", "198.51.100.7")})


def test_a_sealing_store_keeps_indicators_only_as_keyed_tokens(store: Any) -> None:
    _save(store, "INC-1", "Beacon to 192.0.2.90 from payroll@support-payroll.test.",
          {"summary": "ransomware"})
    values = {value for _kind, value in _incident_rows(store, "INC-1")}
    assert values and not values & {"192.0.2.90", "payroll@support-payroll.test",
                                    "support-payroll.test"}
    assert all(value.startswith("i") and len(value) == 33 for value in values)


def test_deleting_an_incident_removes_its_indicators(store: Any) -> None:
    _save(store, "INC-1", "Beacon to 192.0.2.90.", {"summary": "x"})
    _save(store, "INC-2", "Beacon to 192.0.2.90.", {"summary": "y"})
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM incidents WHERE incident_id = 'INC-1'"))
    assert _incident_rows(store, "INC-1") == set()
    assert _incident_rows(store, "INC-2") == _stored(store, {("ipv4", "192.0.2.90")})


def test_the_migration_fills_the_table_for_an_existing_store(database_url: str) -> None:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url)
    upgrade(engine, "0011")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO incidents (incident_id, title, description, initial_findings, "
            "created_at, updated_at, analysis_count) VALUES ('OLD-1', 't', "
            "'seen 192.0.2.5 and report.pdf', '', '2026-11-01 10:00:00', "
            "'2026-11-01 10:00:00', 1)"))
        connection.execute(text(
            "INSERT INTO analyses (analysis_id, incident_id, model_name, analysis_json, "
            "content_hash, created_at) VALUES ('an-1', 'OLD-1', 'm', :doc, 'h', "
            "'2026-11-01 10:00:00')"),
            {"doc": json.dumps({"mitre_attack": "T1566.001 via evil[.]example"})})
    upgrade(engine)
    with engine.connect() as connection:
        rows = set(connection.execute(text(
            "SELECT kind, value FROM incident_indicators WHERE incident_id = 'OLD-1'")).all())
    engine.dispose()
    assert rows == {("ipv4", "192.0.2.5"), ("technique", "T1566.001"),
                    ("domain", "evil.example")}


PHISH_PROSE = ("Finance staff received a payroll update e-mail asking them to confirm bank "
               "details through a link; several users entered their credentials.")


def _fill_lookalikes(store: Any, count: int = 30) -> None:
    """Incidents whose prose is almost the query's but that share no indicator with it."""
    records = []
    for number in range(count):
        record = make_record(f"LOOK-{number}", analysis={
            "summary": "Payroll phishing, credentials entered", "severity": "medium"})
        record["incident"].update(title=f"Payroll phishing wave {number}",
                                  description=f"{PHISH_PROSE} Wave {number}.",
                                  initial_findings="Mail gateway alert.")
        records.append((f"r{number}", AnalysisIn.model_validate(record)))
    store.save_many(records)


def test_an_incident_sharing_indicators_outranks_lookalikes_sharing_none(store: Any) -> None:
    _fill_lookalikes(store)
    _save(store, "QUERY", f"{PHISH_PROSE} Sender payroll@support-payroll.test; the link "
          "hxxps://support-payroll[.]test/login resolved to 192.0.2.90.",
          {"summary": "Payroll phishing", "attack_techniques": ["T1566.002", "T1078"]})
    _save(store, "SHARER", "Ransomware note found on the file server after a quiet week.",
          {"summary": "Ransomware staged from a phishing foothold",
           "iocs": ["192.0.2.90", "payroll@support-payroll.test"],
           "attack_techniques": [{"id": "T1566.002"}, {"id": "T1078"}]})
    result = store.similar(incident_id="QUERY", k=5)
    top = result.hits[0]
    assert top.incident_id == "SHARER"
    assert {"192.0.2.90", "payroll@support-payroll.test", "support-payroll.test"} <= set(
        top.shared_iocs)
    assert top.shared_techniques == ["T1078", "T1566.002"]
    assert all(hit.shared_iocs == [] for hit in result.hits[1:])
    assert store.similar(incident_id="QUERY", k=5).hits == result.hits  # cached alike


def test_pasted_indicators_return_the_incidents_holding_them_first(store: Any) -> None:
    _fill_lookalikes(store)
    _save(store, "BY-IP", "Outbound beacon to 192.0.2.90 every five minutes.", {"summary": "c2"})
    _save(store, "BY-DOMAIN", "DNS lookups of support-payroll.test from the print server.",
          {"summary": "dns"})
    result = store.similar(text="192.0.2.90 support-payroll.test", k=5)
    assert {hit.incident_id for hit in result.hits[:2]} == {"BY-IP", "BY-DOMAIN"}
    shared = {hit.incident_id: hit.shared_iocs for hit in result.hits[:2]}
    assert shared == {"BY-IP": ["192.0.2.90"], "BY-DOMAIN": ["support-payroll.test"]}


def test_a_rare_shared_indicator_weighs_more_than_a_common_one(store: Any) -> None:
    for number in range(12):
        _save(store, f"COMMON-{number}", "Scan seen from 198.51.100.1.", {"summary": "scan"})
    _save(store, "RARE", "Login from 203.0.113.77 at night.", {"summary": "login"})
    result = store.similar(text="198.51.100.1 203.0.113.77", k=3)
    assert result.hits[0].incident_id == "RARE"
