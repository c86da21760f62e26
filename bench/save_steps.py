"""Where `incidex --save` of real prose spends its main thread's CPU, step by step.

    python bench/save_steps.py [--records 3000] [--tree DIR] [--bench-root DIR]

One `incidex --save` of --records records built as in bench/save_prose.py (the VCDB summaries in
../shared/data, read at run time), run in this process on a fresh store in a temporary folder,
with each step of the save path wrapped in a timer of the main thread's CPU (time.thread_time:
a step waiting for the disk or the helper process costs nothing here, and other processes on a
busy machine change the figures less than wall time). A step's figure leaves out the steps it
calls. The helper process's share of scrubbing and embedding is not on the main thread, so it
is not counted. --tree times another checkout of incidex (e.g. a `git archive` of an earlier
commit) with the same timers, for a before/after in one run. --bench-root saves into the
store (and with the keys) of a bench/save_prose.py run left on disk (its temporary folder, the
store filled with --sizes), to see whether the steps cost more on a large store; every tree
then saves into that one store (they must share its schema).

Start-up is excluded as in save_prose.py: the figures are those of a --save of N records less
those of a --save of one record on the same store, over N - 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))

from save_prose import environment, summaries, write_records  # noqa: E402

# (module, attribute, label): the steps timed, in the order printed.
STEPS = [
    ("store.ingest.records", "validate_record", "read + validate"),
    ("store.ingest.records", "prepare", "prepare (ids, hashes, price)"),
    ("store.crypto.blind_index", "BlindIndex.tokens", "blind-index tokens"),
    ("store.crypto.cipher", "StoreCipher.write_keys", "data keys"),
    ("store.crypto.cipher", "StoreCipher.seal_batch", "sealing (AES-GCM)"),
    ("store.vectors.service", "VectorService.attach_vectors", "scrub + embed, this process"),
    ("store.backup.entries", "journal_body", "journal bodies"),
    ("store.backup.journal", "Journal.begin", "journal lines + fsync"),
    ("store.backup.journal", "Journal.commit", "journal commit line"),
    ("store.indicators", "indicators_of_incident", "indicator extraction"),
    ("store.db.writes", "_upsert_incidents", "db: incidents upsert (+ FTS)"),
    ("store.db.writes", "_insert_indicators", "db: indicators insert"),
    ("store.db.writes", "_insert_analyses", "db: analyses insert"),
    ("store.db.writes", "_insert_runs", "db: run rows insert"),
    ("store.db.writes", "_insert_embeddings", "db: embeddings insert"),
    ("store.db.writes", "run_write", "db: begin, commit, lookups"),
    ("store.store", "Store.save_batch", "rest of the batch (audit, index)"),
]

# Run in the child: wrap each step, save, print "label<TAB>seconds" lines on stderr.
CHILD = r'''
import collections, functools, importlib, sys, time
steps = {steps!r}
spent = collections.Counter()
stack = []

def wrap(module_name, path, label):
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        started = time.thread_time()
        stack.append(0.0)
        try:
            return original(*args, **kwargs)
        finally:
            total = time.thread_time() - started
            spent[label] += total - stack.pop()
            if stack:
                stack[-1] += total
    setattr(owner, name, timed)
    if not parents:  # names imported into other modules
        for module in list(sys.modules.values()):
            if getattr(module, name, None) is original:
                setattr(module, name, timed)

import store.store, store.db.writes, store.backup.saving, store.vectors.service  # noqa
for module_name, path, label in steps:
    wrap(module_name, path, label)
sys.argv = ["incidex", *sys.argv[1:]]
from tui.cli import main
started = time.thread_time()
try:
    main()
except SystemExit:
    pass
total = time.thread_time() - started
for label, seconds in spent.items():
    print(f"{{label}}\t{{seconds}}", file=sys.stderr)
print(f"main thread, whole process\t{{total}}", file=sys.stderr)
'''


def run(tree: Path, root: Path, records: int, texts: list[str],
        store: Path | None = None) -> dict[str, float]:
    """Main-thread CPU seconds by step per record: a --save of `records` records less a
    --save of one (start-up, imports, opening the store), over records - 1."""
    data_dir = store or root / f"store-{tree.name}"
    env = environment(root, tree)
    code = CHILD.format(steps=STEPS)
    runs = []
    for count, prefix in ((1, "W"), (1, "O"), (records, "M")):  # W creates the store
        source = write_records(root / f"{prefix}.jsonl", texts, 0, count,
                               f"{prefix}{os.getpid()}-{tree.name}")
        process = subprocess.run([sys.executable, "-c", code, "--data-dir", str(data_dir),
                                  "--save", str(source)], cwd=tree, env=env,
                                 capture_output=True, text=True, check=False)
        if process.returncode != 0:
            sys.exit(f"{tree}: incidex --save exited {process.returncode}: "
                     f"{process.stderr[-500:]}")
        figures: dict[str, float] = {}
        for line in process.stderr.splitlines():
            label, _, seconds = line.rpartition("\t")
            if label:
                figures[label] = float(seconds)
        runs.append(figures)
    _warm, one, many = runs
    return {label: (many.get(label, 0.0) - one.get(label, 0.0)) / (records - 1)
            for label in many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--tree", type=Path, action="append", default=[],
                        help="another incidex checkout to time the same way (repeatable)")
    parser.add_argument("--bench-root", type=Path, default=None,
                        help="save into the store of this bench/save_prose.py folder")
    args = parser.parse_args()
    texts = summaries()
    trees = [REPO_ROOT, *args.tree]
    root = args.bench_root or Path(tempfile.mkdtemp(prefix="incidex-bench-steps-",
                                                    dir=os.environ.get("BENCH_DIR")))
    store = root / "store" if args.bench_root else None
    results = [run(tree, root, args.records, texts, store) for tree in trees]
    size = ""
    if store is not None:
        import sqlite3

        with sqlite3.connect(store / "incident_analysis.db") as connection:
            count = connection.execute("SELECT count(*) FROM analyses").fetchone()[0]
        size = f", a store of {count:,} analyses"
    print(f"main-thread CPU, microseconds per record ({args.records:,} records{size}; "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"{'step':<36}" + "".join(f"{tree.name[-18:]:>20}" for tree in trees))
    labels = [label for _module, _path, label in STEPS]
    for label in [*labels, "other (output, start-up)", "main thread, whole process"]:
        cells = []
        for figures in results:
            if label == "other (output, start-up)":
                value = figures.get("main thread, whole process", 0.0) - sum(
                    figures.get(name, 0.0) for name in labels)
            else:
                value = figures.get(label, 0.0)
            cells.append(f"{value * 1e6:20.0f}")
        print(f"{label:<36}" + "".join(cells))


if __name__ == "__main__":
    main()
