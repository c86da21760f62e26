"""What roles and the audit log cost: list pages, opening an incident, saving, verifying.

    python bench/audit_cost.py                        # SQLite in a temp dir, 2,000 incidents
    python bench/audit_cost.py --count 5000 --repeat 50
    python bench/audit_cost.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Each figure is a median over --repeat runs, with its baseline measured in the same process:
- list page (100 rows): the admin (no restriction lookup) against an analyst, whose page is
  screened for restricted incidents (1% of the incidents are restricted);
- opening an incident: the same two queries without the Store's checks and audit (baseline)
  against Store.open_incident() (the role and restriction checks, one audit append);
- saving a batch of 500: Store.save_batch (one audit event) against the same batch's audit
  append alone, as a share of it;
- audit verify: the whole chain and anchors, per 1,000 entries.
The machine is shared and noisy: compare figures within one run, not across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._records import record  # noqa: E402
from store.db import queries  # noqa: E402
from store.db.engine import read_connection  # noqa: E402
from store.schemas import AnalysisIn  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402


def median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def batch(start: int, count: int, prefix: str) -> list[tuple[str, AnalysisIn]]:
    return [(f"r{n}", AnalysisIn.model_validate(record(n, prefix)))
            for n in range(start, start + count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url")
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="incidex-audit-bench-"))
    os.environ.setdefault("INCIDEX_SECRETS_DIR", str(folder / "secrets"))
    settings = Settings(data_dir=folder / "data", database_url=arguments.database_url,
                        embed_on_save=False)
    admin = Store.open(settings)
    for start in range(0, arguments.count, 500):
        admin.save_batch(batch(start, min(500, arguments.count - start), "B"))
    for n in range(0, arguments.count, 100):
        admin.restrict_incident(f"B-{n:08d}", ["red"])
    admin.add_user("bench-analyst", "analyst", ["blue"])
    analyst = Store.open(settings, actor="bench-analyst")
    target = f"B-{arguments.count // 2 + 1:08d}"
    repeat = arguments.repeat
    print(f"{arguments.count:,} incidents, {arguments.count // 100:,} restricted, "
          f"{repeat} runs each, {admin.engine.dialect.name}")

    page_admin = median_ms(lambda: admin.incidents_page(limit=100), repeat)
    page_analyst = median_ms(lambda: analyst.incidents_page(limit=100), repeat)
    print(f"list page of 100     admin {page_admin:7.2f} ms   analyst (screened) "
          f"{page_analyst:7.2f} ms   x{page_analyst / page_admin:.2f}")

    def raw_open() -> None:
        with read_connection(analyst.engine) as connection:
            queries.incident_detail(connection, target)
            queries.analyses_of(connection, target)

    def store_open() -> None:
        analyst.open_incident(target)

    baseline, audited = median_ms(raw_open, repeat), median_ms(store_open, repeat)
    print(f"open an incident     queries {baseline:7.2f} ms   Store (checked, audited) "
          f"{audited:7.2f} ms   +{audited - baseline:.2f} ms")

    saves = [median_ms(lambda n=n: admin.save_batch(batch(10**6 + n * 500, 500, "S")), 1)
             for n in range(5)]
    append = median_ms(lambda: admin.record_event("bench", detail="one event"), repeat)
    print(f"save a batch of 500  {statistics.median(saves):7.2f} ms   its one audit event "
          f"{append:5.2f} ms ({append / statistics.median(saves):.1%})")

    entries = len(admin.audit.entries())
    admin.anchor_audit()
    verify = median_ms(admin.verify_audit, 3)
    print(f"audit verify         {entries:,} entries {verify:7.1f} ms   "
          f"({verify / entries * 1000:.1f} ms per 1,000)")
    analyst.close()
    admin.close()


if __name__ == "__main__":
    main()
