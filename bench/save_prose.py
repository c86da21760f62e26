"""`incidex --save` on real prose: records/s with vectors, start-up excluded, vs a baseline.

    python bench/save_prose.py [--records 10000] [--runs 3] [--sizes 0,1000000]
                               [--baseline-ref 029e063] [--baseline-pystemmer] [--no-helper-way]
                               [--main-ref 26fa020] [--backups-only] [--store-dir DIR]

Records are built from the real VCDB summaries in ../shared/data/vcdb_dev.jsonl (read at run
time, never copied): title = the summary's first 8 words, description = the summary, analysis
summary = its first 40 words, a severity and priced token usage; record i uses summary
i mod 1,583, under its own incident id. Each timed run is one `incidex --save FILE` process
(a JSON Lines file on disk, so the whole durable path: validation, PII scrubbing, embedding,
one transaction per batch with SQLite synchronous=FULL, the JSON backups, the output lines).
Start-up is excluded by timing a one-record `--save` on the same store just before:
rate = (N - 1) / (time of N records - time of one record).

Four ways, interleaved, each on the same records under its own ids:
- this tree, and the baseline tree (`git archive` of --baseline-ref, the seed's way: pure
  Python Snowball, the word table built per process) run with the same interpreter, the
  baseline on a store of its own (it cannot open this tree's newer schema; never filled);
- with --main-ref, an earlier commit of this tree (`git archive`, PyStemmer allowed) on the
  same store as this tree (filled to the same sizes), when its schema is the same; with its
  backup step only;
- with --no-helper-way, this tree with its backup step but without the helper process that
  scrubs and embeds part of each large batch (store/vectors/helper.py);
- each with its backup step (the baseline's per-analysis JSON files, this tree's journal) and
  without it (a bench-local switch: the process replaces store.store.write_backups or
  store.store.save_journalled with a pass-through, to show what the backup step costs).

Sizes: before the runs at each size in --sizes, the store is filled to that size by copying
in SQL the analyses the runs saved so far (bench-local, SQLite only: `incidex --save` would
take hours to fill a million on this machine); --store-dir keeps and reuses the store.
The machine is shared and noisy: compare figures of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data" / "vcdb_dev.jsonl"
NO_BACKUPS = (  # the seed's per-analysis files (write_backups) or this tree's journal
    "import sys, store.store as s; "
    "[setattr(s, name, skip) for name, skip in ("
    "('write_backups', lambda directory, items: []), "
    "('save_journalled', lambda journal, prepared, now, write, stored_ids: write())) "
    "if hasattr(s, name)]; "
    "sys.argv[0] = 'incidex'; from tui.cli import main; main()"
)
WITH_BACKUPS = "import sys; sys.argv[0] = 'incidex'; from tui.cli import main; main()"
# This tree without its embedding helper process (a bench-local switch: no batch is large enough).
NO_HELPER = "import store.vectors.helper as h; h.MIN_HELPED_TEXTS = 10 ** 9; " + WITH_BACKUPS


def summaries() -> list[str]:
    """The real summaries, read at run time."""
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: this bench needs the shared dev data")
    with DATA.open(encoding="utf-8") as stream:
        return [json.loads(line)["text"] for line in stream]


def record(texts: list[str], index: int, prefix: str) -> dict[str, object]:
    """One --save record from summary index mod len(texts), under a unique incident id."""
    text = texts[index % len(texts)]
    words = text.split()
    rng = random.Random(index)
    return {
        "incident": {"incident_id": f"{prefix}-{index:09d}", "title": " ".join(words[:8]),
                     "description": text, "initial_findings": ""},
        "analysis": {"summary": " ".join(words[:40]),
                     "severity": rng.choice(["low", "medium", "high", "critical"])},
        "model_name": "gpt-4o-mini",
        "usage": {"input_tokens": rng.randint(500, 5000), "output_tokens": rng.randint(100, 900),
                  "start_time": "2026-11-20T09:14:02Z", "end_time": "2026-11-20T09:14:11Z"},
    }


def lines(texts: list[str], start: int, count: int, prefix: str) -> Iterator[bytes]:
    for index in range(start, start + count):
        yield (json.dumps(record(texts, index, prefix)) + "\n").encode()


def write_records(path: Path, texts: list[str], start: int, count: int, prefix: str) -> Path:
    with path.open("wb") as stream:
        stream.writelines(lines(texts, start, count, prefix))
    return path


class Way:
    """One way of saving: a code tree, with or without the backup step."""

    def __init__(self, name: str, tree: Path, backups: bool, env: dict[str, str],
                 code: str | None = None, data_dir: Path | None = None) -> None:
        self.name, self.tree, self.backups, self.env = name, tree, backups, env
        self.data_dir = data_dir  # None: the store of this tree's ways
        self.code = code or (WITH_BACKUPS if backups else NO_BACKUPS)

    def save(self, data_dir: Path, source: Path) -> tuple[float, float]:
        """Wall seconds and CPU seconds (user + system) of one `incidex --save` process."""
        command = [sys.executable, "-c", self.code,
                   "--data-dir", str(data_dir), "--save", str(source)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.run(command, cwd=self.tree, env=self.env, capture_output=True,
                                 check=False)
        err = process.stderr
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if process.returncode != 0:
            sys.exit(f"{self.name}: incidex --save exited {process.returncode}: "
                     f"{err.decode(errors='replace')[-500:]}")
        return elapsed, cpu


def baseline_tree(reference: str, root: Path, repository: Path) -> Path:
    """The baseline's source tree (git archive of the reference), with PyStemmer hidden."""
    tree = root / f"baseline-{reference}"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(repository), "archive", reference],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shim = root / "no-pystemmer"
    shim.mkdir(exist_ok=True)
    (shim / "Stemmer.py").write_text("raise ImportError('hidden: the seed ran without it')\n")
    return tree


def environment(root: Path, tree: Path, extra_path: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("INCIDEX_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (extra_path, tree) if p is not None)
    env["INCIDEX_SECRETS_DIR"] = str(root / "secrets")
    env["XDG_CACHE_HOME"] = str(root / "xdg-cache")
    env["XDG_CONFIG_HOME"] = str(root / "xdg-config")
    return env


def fill(data_dir: Path, have: int, size: int) -> int:
    """Bring the store to `size` analyses by copying, in SQL, the analyses the runs saved
    (incident, analysis, vector and run rows, under new ids; the full-text index fills through
    its triggers): `incidex --save` would take hours to fill a million here. SQLite only."""
    import sqlite3

    started = time.perf_counter()
    connection = sqlite3.connect(data_dir / "incident_analysis.db", isolation_level=None)
    source = connection.execute("SELECT max(id) FROM analyses").fetchone()[0]
    generation = connection.execute("SELECT count(*) FROM incidents WHERE incident_id "
                                    "LIKE 'G%-%'").fetchone()[0]
    while have < size:
        generation += 1
        limit = min(source, size - have)
        tag = f"G{generation:03d}-"
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO incidents (incident_id, title, description, initial_findings, "
            "created_at, updated_at, analysis_count, latest_severity, latest_analysis_at, "
            "severity_rank, cost_nano_usd) SELECT ? || i.incident_id, i.title, i.description, "
            "i.initial_findings, i.created_at, i.updated_at, i.analysis_count, "
            "i.latest_severity, i.latest_analysis_at, i.severity_rank, i.cost_nano_usd "
            "FROM incidents i WHERE i.incident_id IN (SELECT incident_id FROM analyses "
            "WHERE id <= ?)", (tag, limit))
        connection.execute(
            "INSERT INTO analyses (analysis_id, incident_id, model_name, analysis_json, "
            "content_hash, severity, created_at) SELECT ? || substr(analysis_id, 4), "
            "? || incident_id, model_name, analysis_json, content_hash, severity, created_at "
            "FROM analyses WHERE id <= ? ORDER BY id", (tag, tag, limit))
        first_seq = connection.execute("SELECT embedding_seq FROM store_info").fetchone()[0]
        connection.execute(
            "INSERT INTO embeddings (analysis_pk, embedder, dimension, status, vector, "
            "updated_at, seq) SELECT copy.id, e.embedder, e.dimension, e.status, e.vector, "
            "e.updated_at, ? + e.analysis_pk FROM analyses copy JOIN analyses original "
            "ON copy.analysis_id = ? || substr(original.analysis_id, 4) "
            "JOIN embeddings e ON e.analysis_pk = original.id WHERE original.id <= ?",
            (first_seq, tag, limit))
        connection.execute("UPDATE store_info SET embedding_seq = "
                           "(SELECT max(seq) FROM embeddings)")
        connection.execute("COMMIT")
        have += limit
        print(f"  filled to {have:,} ({time.perf_counter() - started:.0f} s)", flush=True)
    connection.close()
    return have


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="0,1000000")
    parser.add_argument("--baseline-ref", default="029e063")
    parser.add_argument("--store-dir", type=Path, default=None)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--backups-only", action="store_true",
                        help="time only the ways with their backup step (fewer runs)")
    parser.add_argument("--main-ref", default="26fa020",
                        help="also time this earlier commit of this tree on the same store "
                             "(it must share the schema); '' leaves it out")
    parser.add_argument("--no-helper-way", action="store_true",
                        help="also time this tree with its embedding helper process off")
    parser.add_argument("--baseline-pystemmer", action="store_true",
                        help="let the baseline use PyStemmer (to compare two commits of "
                             "this tree rather than this tree with the seed)")
    parser.add_argument("--repository", type=Path, default=REPO_ROOT,
                        help="git repository holding --baseline-ref (default: this one)")
    args = parser.parse_args()
    texts = summaries()
    root = Path(tempfile.mkdtemp(prefix="incidex-bench-prose-", dir=os.environ.get("BENCH_DIR")))
    data_dir = args.store_dir or root / "store"
    here = environment(root, REPO_ROOT)
    ways = [Way("this tree, backups", REPO_ROOT, True, here),
            Way("this tree, no backups", REPO_ROOT, False, here)]
    if args.no_helper_way:
        ways.append(Way("this tree, backups, no helper", REPO_ROOT, True, here, NO_HELPER))
    if args.main_ref:
        earlier = baseline_tree(args.main_ref, root, args.repository)
        ways.append(Way(f"{args.main_ref}, backups", earlier, True,
                        environment(root, earlier)))
    if not args.skip_baseline:
        tree = baseline_tree(args.baseline_ref, root, args.repository)
        old = environment(root, tree,
                          None if args.baseline_pystemmer else root / "no-pystemmer")
        # Its own store: an older schema cannot open this tree's (it refuses the newer
        # revision). That store is not filled: its size stays near 0.
        own = root / "store-baseline"
        ways += [Way(f"{args.baseline_ref}, backups", tree, True, old, data_dir=own),
                 Way(f"{args.baseline_ref}, no backups", tree, False, old, data_dir=own)]
    if args.backups_only:
        ways = [way for way in ways if way.backups]
    count_file = data_dir / ".bench-analyses"
    have = int(count_file.read_text()) if count_file.exists() else 0
    one = root / "one.jsonl"
    serial = 0
    print(f"{args.records:,} records per run, {args.runs} runs, median records/s "
          "(start-up excluded)", flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        if have < size:
            have = fill(data_dir, have, size)
            count_file.write_text(str(have))
        rates: dict[str, list[float]] = {way.name: [] for way in ways}
        cpu_rates: dict[str, list[float]] = {way.name: [] for way in ways}
        for _run in range(args.runs):
            for way in ways:
                serial += 1
                batch = write_records(root / "batch.jsonl", texts, 0, args.records,
                                      f"R{serial}")
                write_records(one, texts, 0, 1, f"O{serial}")
                single, single_cpu = way.save(way.data_dir or data_dir, one)
                whole, whole_cpu = way.save(way.data_dir or data_dir, batch)
                rates[way.name].append((args.records - 1) / max(whole - single, 1e-9))
                cpu_rates[way.name].append((args.records - 1) / max(whole_cpu - single_cpu,
                                                                     1e-9))
                have += args.records + 1
                count_file.write_text(str(have))
        print(f"store of {size:,} analyses:")
        medians = {name: statistics.median(values) for name, values in rates.items()}
        for name, values in rates.items():
            runs = ", ".join(f"{v:.0f}" for v in values)
            per_cpu = statistics.median(cpu_rates[name])
            print(f"  {name:<28} {medians[name]:8.0f} records/s  (runs {runs}); "
                  f"{per_cpu:.0f} records per CPU-second")
        if not args.skip_baseline:
            for backups in ("backups",) if args.backups_only else ("backups", "no backups"):
                mine = medians[f"this tree, {backups}"]
                seed = medians[f"{args.baseline_ref}, {backups}"]
                print(f"  ratio this tree / {args.baseline_ref}, {backups}: {mine / seed:.1f}x")
        if args.main_ref:
            mine = medians["this tree, backups"]
            print(f"  ratio this tree / {args.main_ref}, backups: "
                  f"{mine / medians[f'{args.main_ref}, backups']:.2f}x")


if __name__ == "__main__":
    main()
