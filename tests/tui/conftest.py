"""Fixtures of the TUI tests: fixed records with fixed times, a store of them, a frozen clock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

FROZEN_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SIZE = (120, 36)

# (incident id, title, severity, model, hours before FROZEN_NOW, IOCs, ATT&CK techniques)
FIXED_INCIDENTS: list[tuple[str, str, str, str, int, list[str], list[str]]] = [
    ("INC-0001", "Phishing e-mail with invoice macro sent to finance", "high", "gpt-4o-mini",
     3, ["invoice-pay.example.net", "203.0.113.7"], ["T1566.001", "T1204.002"]),
    ("INC-0002", "Ransomware encrypted file shares in logistics", "critical", "gpt-4o",
     7, ["198.51.100.23", "lockbit-support.example.onion"], ["T1486", "T1021.002"]),
    ("INC-0003", "Credential stuffing against the customer portal", "medium", "gpt-4o-mini",
     20, ["192.0.2.44"], ["T1110.004"]),
    ("INC-0004", "Second phishing wave with invoice macro to accounts payable", "high",
     "claude-sonnet-4", 30, ["invoice-pay.example.net", "203.0.113.9"], ["T1566.001"]),
    ("INC-0005", "Public S3 bucket exposed marketing exports", "low", "gpt-4o-mini",
     50, [], ["T1530"]),
    ("INC-0006", "MFA fatigue push approved by a sales manager", "high", "gpt-4o",
     75, ["192.0.2.201"], ["T1621"]),
    ("INC-0007", "Cobalt Strike beacon on a finance workstation", "critical", "gpt-4o",
     100, ["203.0.113.7", "cdn-update.example.org"], ["T1071.001", "T1059.001"]),
    ("INC-0008", "Lost laptop of a developer reported at the airport", "low", "llama3.1:8b",
     200, [], []),
    ("INC-0009", "Ransomware note found on a logistics file server", "critical",
     "claude-sonnet-4", 400, ["198.51.100.23"], ["T1486"]),
    ("INC-0010", "Invoice fraud attempt impersonating a supplier", "medium", "gpt-4o-mini",
     700, ["invoice-pay.example.net"], ["T1566.002"]),
]


def fixed_record(index: int, *, hours_earlier: int = 0, model: str | None = None,
                 summary_suffix: str = "") -> dict[str, Any]:
    """The --save record of FIXED_INCIDENTS[index], at its fixed time."""
    incident_id, title, severity, default_model, hours, iocs, techniques = FIXED_INCIDENTS[index]
    start = FROZEN_NOW - timedelta(hours=hours + hours_earlier, minutes=5)
    words = title.lower()
    return {
        "incident": {
            "incident_id": incident_id,
            "title": title,
            "description": f"{title}. Reported by the SOC on shift; {words} confirmed by triage.",
            "initial_findings": f"Alert correlated in the SIEM for {incident_id}: {words}.",
        },
        "analysis": {
            "summary": f"{title}: contained, follow-up planned.{summary_suffix}",
            "severity": severity,
            "category": title.split()[0],
            "iocs": {"indicators": iocs},
            "attack_techniques": [{"id": technique} for technique in techniques],
            "recommendations": ["Block the indicators", "Reset affected credentials"],
        },
        "model_name": model or default_model,
        "usage": {
            "input_tokens": 1000 + 100 * index,
            "output_tokens": 200 + 10 * index,
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(seconds=6)).isoformat(),
            "request_id": f"req-{incident_id}-{hours_earlier}",
        },
    }


def fixed_records() -> list[dict[str, Any]]:
    """Every fixed incident once, plus an older second analysis of INC-0002."""
    records = [fixed_record(index) for index in range(len(FIXED_INCIDENTS))]
    records.append(fixed_record(1, hours_earlier=2, model="gpt-4o-mini",
                                summary_suffix=" First look."))
    return records


def save_records(store: Any, records: list[dict[str, Any]]) -> None:
    """Save raw records through the store's validation."""
    from store.ingest.records import validate_record

    store.save_many([(f"r{i}", validate_record(r, f"r{i}")) for i, r in enumerate(records)])


@pytest.fixture
def tui_settings(isolated_directories: Path) -> Any:
    """Settings of a SQLite store in tmp_path."""
    from store.settings import Settings

    return Settings(data_dir=isolated_directories)


@pytest.fixture
def empty_store(tui_settings: Any) -> Iterator[Any]:
    """An open, empty store."""
    from store.access.directory import os_user
    from store.store import Store

    opened = Store.open(tui_settings, actor="soc")  # a fixed name: the header shows it
    opened.add_user(os_user(), "admin")  # so that the test's own Store.open may write too
    yield opened
    opened.close()


@pytest.fixture
def filled_store(empty_store: Any) -> Any:
    """The store holding the fixed records."""
    save_records(empty_store, fixed_records())
    return empty_store


def make_app(store: Any, settings: Any, **options: Any) -> Any:
    """The app with a frozen clock, no timers, no background warming or backups, and no
    blinking."""
    from tui.app import IncidexApp

    defaults: dict[str, Any] = {"now": lambda: FROZEN_NOW, "poll_seconds": None,
                                "warm_cache": False, "cursor_blink": False,
                                "auto_backup": False,
                                "shell_prefix": "incidex"}
    app = IncidexApp(store, settings, **{**defaults, **options})
    app.animation_level = "none"
    return app


async def settle(pilot: Any, rounds: int = 50) -> None:
    """Wait until no worker runs and every message they posted is handled."""
    from textual.worker import WorkerCancelled

    app = pilot.app
    quiet_rounds = 0
    for _ in range(rounds):
        await pilot.pause()
        with contextlib.suppress(WorkerCancelled):  # a newer request replaced it: fine
            await app.workers.wait_for_complete()
        await pilot.pause()
        # Two quiet rounds in a row: a screen pushed by the last key may start its workers
        # only when it mounts, after the first round (seen on a loaded machine).
        quiet_rounds = 0 if any(worker.is_running for worker in app.workers) else quiet_rounds + 1
        if quiet_rounds == 2:
            return
    raise AssertionError("workers kept running")

