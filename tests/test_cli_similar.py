"""`incidex similar`, `verify`, `reindex` and `cache` as scripts call them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.store.test_similar import family_record


def incidex(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "tui.cli", *args], input=stdin,
                            capture_output=True, timeout=120, env={**os.environ, **(env or {})})
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(),
                                       result.stderr.decode())


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    records = [family_record(family, n, "high" if n % 2 else "low", day=10 + n)
               for family in ("phish", "ransom", "bucket") for n in range(4)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert incidex("--save", str(source)).returncode == 0
    return source


def test_similar_by_text_prints_a_table(filled: Path) -> None:
    result = incidex("similar", "ransomware encrypted shares lockbit", "-k", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("similar to 'ransomware encrypted shares lockbit'")
    assert lines[1].split()[:3] == ["#", "cosine", "incident"]
    assert "RANSOM-" in lines[2] and "RANSOM-" in lines[3]


def test_similar_json_for_many_incidents(filled: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("PHISH-1\n\nBUCKET-2\n")
    result = incidex("similar", "--incident", "RANSOM-0", "--incidents-from", str(ids),
                     "--json", "-k", "3")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["incident_id"] for a in answers] == ["RANSOM-0", "PHISH-1", "BUCKET-2"]
    for answer in answers:
        results: list[dict[str, Any]] = answer["results"]
        assert 1 <= len(results) <= 3
        assert answer["incident_id"] not in {r["incident_id"] for r in results}
        assert [r["rank"] for r in results] == list(range(1, len(results) + 1))
        assert {"analysis_id", "score", "matched_iocs", "matched_techniques"} <= set(results[0])
    assert answers[0]["results"][0]["matched_techniques"] == ["T1486"]


def test_similar_json_names_the_folded_near_duplicates(tmp_path: Path) -> None:
    records = []
    for number in range(4):
        record = family_record("bucket", 0)
        record["incident"]["incident_id"] = f"DUP-{number}"
        record["analysis"]["run"] = number  # another analysis, the same text
        records.append(record)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert incidex("--save", str(source)).returncode == 0
    result = incidex("similar", "public storage bucket world readable", "--json")
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)["results"][0]
    assert top["near_duplicates"] == 3
    assert sorted([top["incident_id"], *top["near_duplicate_incident_ids"]]) == [
        f"DUP-{number}" for number in range(4)]


def test_similar_unknown_incident_fails_that_query_only(filled: Path) -> None:
    result = incidex("similar", "--incident", "NOPE-1", "--incident", "PHISH-1", "--json")
    assert result.returncode == 1
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert answers[0]["error"] and answers[1]["results"]
    assert result.stderr.strip() == "incidex: similar: no incident 'NOPE-1' with an analysis"


def test_similar_without_a_query_is_a_usage_error(filled: Path) -> None:
    assert incidex("similar").returncode == 2


def test_verify_then_drift_then_reindex(filled: Path, isolated_directories: Path) -> None:
    ok = incidex("verify")
    assert ok.returncode == 0 and ok.stdout.strip().endswith("in step")
    import sqlite3

    with sqlite3.connect(isolated_directories / "incident_analysis.db") as connection:
        connection.execute("DELETE FROM embeddings WHERE analysis_pk = 3")
    drift = incidex("verify", "--json")
    assert drift.returncode == 1
    report = json.loads(drift.stdout)
    assert report["without_vector"] == [3] and not report["in_step"]
    assert incidex("reindex", "--pending").returncode == 0
    assert incidex("verify").returncode == 0


def test_embedder_change_is_refused_with_a_clear_line(filled: Path) -> None:
    from tests.support.openai_server import OpenAIServer

    with OpenAIServer(dimension=32) as server:
        env = {"INCIDEX_EMBEDDER": "openai:test-embedding",
               "INCIDEX_OPENAI_BASE_URL": server.base_url, "INCIDEX_OPENAI_API_KEY": "k"}
        refused = incidex("similar", "phishing", env=env)
        assert refused.returncode == 1
        assert "run `incidex reindex`" in refused.stderr and "Traceback" not in refused.stderr
        assert incidex("reindex", env=env).returncode == 0
        assert incidex("similar", "phishing", env=env).returncode == 0


def test_cache_stats_warm_and_clear(filled: Path) -> None:
    warm = incidex("cache", "warm", "--recent", "12")
    assert warm.returncode == 0, warm.stderr
    assert "warmed for 12 incidents" in warm.stderr
    incidex("similar", "--incident", "PHISH-1")
    stats = json.loads(incidex("cache", "stats", "--json").stdout)
    assert stats["hits"] >= 1 and stats["misses"] >= 12
    cleared = incidex("cache", "clear", "--namespace", "similar")
    assert cleared.returncode == 0 and "entries removed" in cleared.stderr
    again = incidex("similar", "--incident", "PHISH-1", "--json")
    assert json.loads(again.stdout)["from_cache"] is False


def test_an_unusable_vector_is_left_out_with_a_warning_not_a_crash(
        filled: Path, isolated_directories: Path) -> None:
    import sqlite3

    with sqlite3.connect(isolated_directories / "incident_analysis.db") as connection:
        connection.execute("UPDATE embeddings SET vector = zeroblob(3) WHERE analysis_pk = 2")
    found = incidex("similar", "ransomware encrypted shares lockbit", "-k", "2")
    assert found.returncode == 0, found.stderr
    assert "RANSOM-" in found.stdout and "unusable vectors" in found.stderr
    drift = incidex("verify")
    assert drift.returncode == 1 and "Traceback" not in drift.stderr
    assert "1 unusable vectors in the database" in drift.stdout
    assert incidex("reindex").returncode == 0
    assert incidex("verify").returncode == 0
