"""The analysis runner's own cost per call against the fake OpenAI-compatible server, and the
latency of a cache hit; prints medians.

Run: .venv/bin/python bench/analyze_overhead.py [--history 300] [--calls 40]
Baselines measured in the same run: the server's own handling time of each chat request
(subtracted from every figure called "overhead") and a bare httpx POST of the same request
body (what any client pays for HTTP and JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from bench._records import record  # noqa: E402
from store import IncidentIn, Settings, Store  # noqa: E402
from store.ingest.records import validate_record  # noqa: E402
from tests.support.openai_server import OpenAIServer  # noqa: E402

REPLY = json.dumps({
    "summary": "Invoice phishing with a macro attachment; one user opened it.",
    "severity": "high", "category": "phishing",
    "attack_techniques": [{"id": "T1566.001", "name": "Spearphishing Attachment"}],
    "iocs": {"domains": ["invoice-pay.example.net"]}, "affected_assets": ["FIN-22"],
    "recommendations": ["Block the sender domain"], "confidence": 0.8,
})


def ms(seconds: list[float]) -> str:
    """Median and p90 in milliseconds."""
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"{statistics.median(ordered) * 1000:8.2f} {p90 * 1000:8.2f}"


def timed(call: Callable[[], Any]) -> float:
    """Seconds one call took."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    """Fill a store, then time fresh runs, cache hits and a bare POST."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", type=int, default=300, help="past analyses in the store")
    parser.add_argument("--calls", type=int, default=40, help="fresh analyses timed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, OpenAIServer(chat_reply=REPLY) as server:
        settings = Settings(data_dir=Path(directory) / "data",
                            secrets_dir=Path(directory) / "secrets",
                            openai_base_url=server.base_url, openai_api_key="k",
                            chat_model="gpt-4o-mini")
        with Store.open(settings) as store:
            store.save_many([(str(i), validate_record(record(i), str(i)))
                             for i in range(args.history)])
            count = args.calls + 3
            ids = [f"NEW-{i:04d}" for i in range(count)]
            store.register_incidents([IncidentIn(
                incident_id=ids[i], title=record(10_000 + i)["incident"]["title"],
                description=record(10_000 + i)["incident"]["description"])
                for i in range(count)])
            runner = store.analysis_runner()
            for incident_id in ids[:3]:  # imports, index load, connections
                runner.run(incident_id)
            prepare, execute, total, server_time = [], [], [], []
            for incident_id in ids[3:]:
                started = time.perf_counter()
                prepared = runner.prepare(incident_id)
                middle = time.perf_counter()
                runner.execute(prepared)
                ended = time.perf_counter()
                prepare.append(middle - started)
                execute.append(ended - middle)
                total.append(ended - started)
                server_time.append(server.chat_seconds[-1])
            hits_full = [timed(lambda i=i: runner.run(i)) for i in ids[3:]]
            prepared_all = [runner.prepare(i) for i in ids[3:]]
            hits_lookup = [timed(lambda p=p: runner._ask(p.content_hash, p.prompt.similar_ids,
                                                         p.prompt.digest, p.prompt))
                           for p in prepared_all]
            messages = prepared_all[0].prompt.messages()
            client_calls, client_server = [], []
            for _ in range(args.calls):
                client_calls.append(timed(lambda: runner.client.complete(messages)))
                client_server.append(server.chat_seconds[-1])
            body = server.chat_bodies[-1]
            with httpx.Client() as client:
                bare = [timed(lambda: client.post(f"{server.base_url}/chat/completions",
                                                  json=body).raise_for_status())
                        for _ in range(args.calls)]
            bare_server = server.chat_seconds[-args.calls:]
    overhead = [t - s for t, s in zip(total, server_time, strict=True)]
    call_overhead = [e - s for e, s in zip(execute, server_time, strict=True)]
    bare_overhead = [b - s for b, s in zip(bare, bare_server, strict=True)]
    client_overhead = [c - s for c, s in zip(client_calls, client_server, strict=True)]
    print(f"{args.calls} fresh analyses, {args.history} past analyses in a SQLite store")
    print(f"{'milliseconds':<58} {'median':>8} {'p90':>8}")
    rows = [
        ("server's own time per chat request (baseline)", server_time),
        ("fresh run, whole (prepare + call + validate + save)", total),
        ("  overhead: whole run minus the server's time", overhead),
        ("  prepare: incident, similar search, prompt, estimate", prepare),
        ("  call + validate + save, minus the server's time", call_overhead),
        ("    of which the LangChain call alone, minus the server's", client_overhead),
        ("bare httpx POST of the same body, minus the server's time", bare_overhead),
        ("cache hit, whole run (prepare + lookup + duplicate save)", hits_full),
        ("cache hit, lookup alone (the cached call)", hits_lookup),
    ]
    for label, values in rows:
        print(f"{label:<58} {ms(values)}")


if __name__ == "__main__":
    main()
