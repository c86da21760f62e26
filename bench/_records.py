"""Synthetic --save records for benchmarks: varied enough that no two analyses are equal."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

WORDS = ("phishing ransomware beacon exfiltration credential spraying lateral movement "
         "powershell macro invoice vpn appliance exploit bucket public exposure insider "
         "download usb token mfa fatigue dns tunnelling c2 persistence scheduled task").split()


def record(index: int, prefix: str = "B") -> dict[str, Any]:
    """One record with text and an analysis derived from its index."""
    rng = random.Random(index)
    words = " ".join(rng.choice(WORDS) for _ in range(60))
    start = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(minutes=index)
    return {
        "incident": {"incident_id": f"{prefix}-{index:08d}", "title": f"Alert {index}: "
                     + " ".join(rng.choice(WORDS) for _ in range(5)),
                     "description": words, "initial_findings": words[:200]},
        "analysis": {"summary": words[:300], "severity": rng.choice(["low", "medium", "high"]),
                     "index": index, "recommendations": [words[:80], words[80:160]]},
        "model_name": rng.choice(["gpt-4o-mini", "gpt-4o", "llama3.1:8b"]),
        "usage": {"input_tokens": rng.randint(500, 5000), "output_tokens": rng.randint(100, 900),
                  "start_time": start.isoformat(),
                  "end_time": (start + timedelta(seconds=rng.randint(2, 30))).isoformat(),
                  "request_id": f"req-{prefix}-{index}"},
    }


def write_jsonl(path: Path, count: int, start: int = 0, prefix: str = "B") -> Path:
    """Write `count` records as JSON Lines."""
    with path.open("w") as handle:
        for index in range(start, start + count):
            handle.write(json.dumps(record(index, prefix)) + "\n")
    return path
