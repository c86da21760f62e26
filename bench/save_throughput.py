"""Headless save throughput: incidex --save vs the seed's way, into an empty and a large store.

    python bench/save_throughput.py [--records 10000] [--history 100000] [--seed-records 1000]

Prints records/s (median of --repeat runs) for:
  - incidex's save path (store.save_many via the --save reader, batched transactions,
    priced run metadata, atomic JSON backups) into an empty store and into one that
    already holds --history analyses;
  - the seed's way (a new sqlite3 connection per record, INSERT OR REPLACE into three
    tables, a commit per record, a JSON backup file per record) on the same records.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._records import record, write_jsonl  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402
from tui.headless import save_stream  # noqa: E402


def incidex_rate(data_dir: Path, source: Path, embed: bool = True) -> float:
    """Records per second for one `incidex --save source` into data_dir (store opened first)."""
    settings = Settings(data_dir=data_dir, embed_on_save=embed)
    with Store.open(settings) as store:
        started = time.perf_counter()
        with source.open("rb") as stream:
            ok, failed = save_stream(store, stream, io.StringIO(), io.StringIO(),
                                     batch_size=settings.save_batch_size)
        elapsed = time.perf_counter() - started
    assert failed == 0 and ok > 0, (ok, failed)
    return ok / elapsed


def prefill(data_dir: Path, count: int) -> None:
    """Fill a store with `count` analyses through the same save path."""
    with tempfile.TemporaryDirectory() as scratch:
        for start in range(0, count, 20_000):
            chunk = write_jsonl(Path(scratch) / "fill.jsonl", min(20_000, count - start),
                                start=start, prefix="H")
            incidex_rate(data_dir, chunk)


SEED_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (incident_id TEXT PRIMARY KEY, title TEXT,
  description TEXT, initial_findings TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS analyses (incident_id TEXT PRIMARY KEY, analysis_json TEXT,
  model_name TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS run_metadata (request_id TEXT PRIMARY KEY, incident_id TEXT,
  model TEXT, input_tokens INT, output_tokens INT, total_tokens INT, start_time TEXT,
  end_time TEXT, duration REAL);
"""


def seed_way_rate(directory: Path, source: Path, limit: int) -> float:
    """The seed's save: a connection per call, INSERT OR REPLACE, commit, a JSON file."""
    database = directory / "seed.db"
    backups = directory / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(database) as connection:
        connection.executescript(SEED_SCHEMA)
    records = [json.loads(line) for line in source.open()][:limit]
    started = time.perf_counter()
    for item in records:
        incident, usage = item["incident"], item["usage"]
        connection = sqlite3.connect(database)
        connection.execute("INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?)",
                           (incident["incident_id"], incident["title"], incident["description"],
                            incident["initial_findings"], usage["end_time"]))
        connection.execute("INSERT OR REPLACE INTO analyses VALUES (?, ?, ?, ?)",
                           (incident["incident_id"], json.dumps(item["analysis"]),
                            item["model_name"], usage["end_time"]))
        connection.execute("INSERT OR REPLACE INTO run_metadata VALUES (?,?,?,?,?,?,?,?,?)",
                           (usage["request_id"], incident["incident_id"], item["model_name"],
                            usage["input_tokens"], usage["output_tokens"],
                            usage["input_tokens"] + usage["output_tokens"], usage["start_time"],
                            usage["end_time"], 0.0))
        connection.commit()
        connection.close()
        stamp = time.strftime("%Y%m%d_%H%M%S")
        with open(backups / f"{incident['incident_id']}_{stamp}.json", "w") as handle:
            json.dump(item, handle)
    return len(records) / (time.perf_counter() - started)


def median_rate(runs: list[float]) -> str:
    return f"{statistics.median(runs):8.0f}/s  (runs: {', '.join(f'{r:.0f}' for r in runs)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--seed-records", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="incidex-bench-", dir=os.environ.get("BENCH_DIR")))
    source = write_jsonl(root / "records.jsonl", args.records, prefix="N")
    print(f"{args.records:,} records, {source.stat().st_size / 1e6:.1f} MB JSONL, in {root}")

    os.environ.setdefault("INCIDEX_SECRETS_DIR", str(root / "secrets"))
    bulk = [incidex_rate(root / f"bulk-{n}", source, embed=False) for n in range(args.repeat)]
    empty = [incidex_rate(root / f"empty-{n}", source) for n in range(args.repeat)]
    seed_empty = [seed_way_rate(root / f"seed-empty-{n}", source, args.seed_records)
                  for n in range(args.repeat)]
    print(f"incidex --save, empty store:          {median_rate(empty)}")
    print(f"  same, INCIDEX_EMBED_ON_SAVE=false:  {median_rate(bulk)}")
    print(f"seed's way, empty store:              {median_rate(seed_empty)}")

    large = root / "large"
    started = time.perf_counter()
    prefill(large, args.history)
    print(f"(prefilled {args.history:,} analyses in {time.perf_counter() - started:.0f} s)")
    full = []
    for n in range(args.repeat):
        batch = write_jsonl(root / f"more-{n}.jsonl", args.records, start=n * args.records,
                            prefix=f"L{n}")
        full.append(incidex_rate(large, batch))
    print(f"incidex --save, {args.history:,}-analysis store: {median_rate(full)}")
    ratio = statistics.median(empty) / statistics.median(seed_empty)
    print(f"ratio incidex / seed's way (empty store): {ratio:.1f}x")
    print(f"large / empty store rate: {statistics.median(full) / statistics.median(empty):.2f}")
    print(f"one record, as JSON: {len(json.dumps(record(0))):,} bytes")


if __name__ == "__main__":
    main()
