"""How fast a `model:` facet pages, without and with the (incident_id, model_name) index.

    python bench/model_facet.py                 # SQLite, 200,000 incidents, in a temp dir
    python bench/model_facet.py --count 1000000

Incidents are written as in bench/sort_pages.py, each with one analysis row (about 1.5 KB of
JSON, as a real analysis) by one of five models, one of them rare (1 in 100). The first page
of a common and of a rare model's facet, and of a facet with a text word, is timed with the
index dropped (the baseline, as before migration 0013) and then created, in the same run.
Figures are medians of --repeat runs; the machine is shared, so compare within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.sort_pages import fill, median_ms  # noqa: E402
from store.db.models import Analysis, table_of  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402

MODELS = ["gpt-4o"] * 40 + ["gpt-4o-mini"] * 40 + ["claude-sonnet-4"] * 15 + \
    ["gemini-2.0-flash"] * 4 + ["llama3.1:8b"]
QUERIES = {"common model": "model:gpt-4o", "rare model": "model:llama3.1:8b",
           "rare model + word": "ransomware model:llama3.1:8b"}
INDEX = "ix_analyses_incident_model"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def fill_analyses(store: Store, count: int, batch: int = 20_000) -> None:
    """One analysis row per incident, by a model drawn from MODELS."""
    random.seed(11)
    table = table_of(Analysis)
    body = json.dumps({"summary": "x" * 600, "recommendations": ["y" * 100] * 8})
    with store.engine.connect() as connection:
        existing = connection.execute(text("SELECT count(*) FROM analyses")).scalar_one()
    for offset in range(existing, count, batch):
        rows = [{"analysis_id": f"a{number}", "incident_id": f"INC-{number:08d}",
                 "model_name": random.choice(MODELS), "analysis_json": body,
                 "content_hash": f"h{number}", "severity": "high",
                 "created_at": CREATED}
                for number in range(offset, min(count, offset + batch))]
        with store.engine.begin() as connection:
            connection.execute(table.insert(), rows)


def timings(store: Store, repeat: int) -> dict[str, float]:
    return {name: median_ms(lambda query=query: store.incidents_page(query=query), repeat)
            for name, query in QUERIES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=9)
    arguments = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="incidex-model-bench-"))
    with Store.open(Settings(data_dir=data_dir)) as store:
        began = time.perf_counter()
        fill(store, arguments.count)
        fill_analyses(store, arguments.count)
        with store.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        print(f"{arguments.count:,} incidents and analyses ready in "
              f"{time.perf_counter() - began:.1f} s ({data_dir})")
        with store.engine.begin() as connection:
            connection.execute(text(f"DROP INDEX IF EXISTS {INDEX}"))
        before = timings(store, arguments.repeat)
        with store.engine.begin() as connection:
            connection.execute(text(
                f"CREATE INDEX {INDEX} ON analyses (incident_id, model_name)"))
            connection.execute(text("ANALYZE"))
        after = timings(store, arguments.repeat)
        print(f"{'first page of':<20} {'no index':>10} {'index':>10}   "
              f"(median ms of {arguments.repeat})")
        for name in QUERIES:
            print(f"{name:<20} {before[name]:>10.2f} {after[name]:>10.2f}")


if __name__ == "__main__":
    main()
