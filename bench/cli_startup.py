"""How long the command line takes: --version, --help, and a one-record --save on a store.

    python bench/cli_startup.py [--runs 15] [--baseline-ref 029e063]

Runs each command as a new process, interleaved, and prints the median wall time and CPU time
(user + system) with the bare interpreter (`python -c pass`) of the same run as the baseline.
The --save runs add one new record each to a store made (and its word table cache written)
before the timed runs, as a script calling incidex once per analysis does: side by side, handed
to a warm save server (`incidex serve`, started before the timed runs; INCIDEX_SAVE_SERVER=
required) and saved in process (INCIDEX_SAVE_SERVER=off). The commands run through the
`incidex` console script's entry point (tui.entry:main, or tui.cli:main in a tree that has
no save client). With --baseline-ref, the same commands also run from that commit's tree
(`git archive`, PyStemmer hidden as the seed had none), on its own store, interleaved with
this tree's. The CPU column counts the command's process only (not the save server's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORD = {"incident": {"title": "Phishing e-mail to payroll",
                       "description": "A user in payroll received an e-mail from John Smith "
                                      "<john.smith@example.com> asking to update bank details.",
                       "initial_findings": "Link to support-payroll.test"},
          "analysis": {"summary": "Credential phishing against payroll staff",
                       "severity": "high", "attack_techniques": ["T1566.002"]},
          "model_name": "gpt-4o-mini"}


class Tree:
    """A source tree whose command line is timed, with its own store and environment."""

    def __init__(self, label: str, path: Path, root: Path, hide: Path | None = None) -> None:
        self.label, self.path = label, path
        self.data_dir = root / f"store-{label}"
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("INCIDEX_")}
        self.env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (hide, path) if p is not None)
        self.env["INCIDEX_SECRETS_DIR"] = str(root / f"secrets-{label}")
        self.env["XDG_CACHE_HOME"] = str(root / f"cache-{label}")
        self.env["XDG_CONFIG_HOME"] = str(root / f"config-{label}")
        self.records = root / f"records-{label}"
        self.records.mkdir(parents=True)
        self.saved = 0

    @property
    def has_server(self) -> bool:
        return (self.path / "tui" / "save_client.py").exists()

    def cli(self) -> list[str]:
        entry = "tui.entry" if self.has_server else "tui.cli"
        return [sys.executable, "-c", "import sys; sys.argv[0] = 'incidex'; "
                f"from {entry} import main; main()"]

    def commands(self) -> dict[str, list[str]]:
        cli = self.cli()
        save = [*cli, "--data-dir", str(self.data_dir), "--save", "{record}"]
        if not self.has_server:
            return {f"incidex --version ({self.label})": [*cli, "--version"],
                    f"incidex --help ({self.label})": [*cli, "--help"],
                    f"incidex --save, 1 record ({self.label})": save}
        return {
            f"incidex --version ({self.label})": [*cli, "--version"],
            f"incidex --help ({self.label})": [*cli, "--help"],
            f"--save 1 record, in process ({self.label})": ["INCIDEX_SAVE_SERVER=off", *save],
            f"--save 1 record, save server ({self.label})": ["INCIDEX_SAVE_SERVER=required",
                                                              *save],
        }

    def start_server(self) -> subprocess.Popen[bytes] | None:
        """A warm `incidex serve` for this tree's store and environment (None: no server)."""
        if not self.has_server:
            return None
        process = subprocess.Popen([*self.cli(), "--data-dir", str(self.data_dir), "serve"],
                                   cwd=self.path, env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        folder = self.data_dir / ".save-server"
        while not list(folder.glob("*.sock")):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("incidex serve did not start")
            time.sleep(0.05)
        return process

    def next_record(self) -> Path:
        """A file holding one record not saved before."""
        self.saved += 1
        path = self.records / f"{self.saved}.json"
        record = json.loads(json.dumps(RECORD))
        record["incident"]["incident_id"] = f"START-{self.saved:06d}"
        path.write_text(json.dumps(record))
        return path

    def run(self, command: list[str]) -> tuple[float, float]:
        """Wall and CPU seconds of one process."""
        command = [str(self.next_record()) if part == "{record}" else part for part in command]
        env = dict(self.env)
        while "=" in command[0]:  # VARIABLE=value before the command: its environment
            name, _equals, value = command.pop(0).partition("=")
            env[name] = value
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, cwd=self.path, env=env, check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def baseline_tree(reference: str, root: Path) -> tuple[Path, Path]:
    tree = root / f"tree-{reference}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", reference],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    hide = root / "no-pystemmer"
    hide.mkdir()
    (hide / "Stemmer.py").write_text("raise ImportError('hidden: the seed ran without it')\n")
    return tree, hide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--baseline-ref", default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="incidex-bench-startup-"))
    trees = [Tree("this tree", REPO_ROOT, root)]
    if args.baseline_ref:
        path, hide = baseline_tree(args.baseline_ref, root)
        trees.append(Tree(args.baseline_ref, path, root, hide))
    commands: dict[str, tuple[Tree, list[str]]] = {
        "python -c pass (baseline)": (trees[0], [sys.executable, "-c", "pass"])}
    servers = []
    for tree in trees:
        save = [part for name, part in tree.commands().items() if "in process" in name
                or "--save, 1 record" in name][0]
        tree.run(save)  # creates the store and the word table cache: not timed
        servers.append(tree.start_server())
        commands.update({name: (tree, command) for name, command in tree.commands().items()})
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for _ in range(args.runs):
            for name, (tree, command) in commands.items():
                elapsed, used = tree.run(command)
                wall[name].append(elapsed)
                cpu[name].append(used)
    finally:
        for server in servers:
            if server is not None:
                server.terminate()
                server.wait()
    floor = statistics.median(wall["python -c pass (baseline)"])
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"{'command':<46} {'median ms':>10} {'over python':>12} {'CPU ms':>8}   "
          f"({args.runs} runs each, interleaved)")
    for name in commands:
        median = statistics.median(wall[name])
        print(f"{name:<46} {median * 1000:>10.0f} {(median - floor) * 1000:>+12.0f} "
              f"{statistics.median(cpu[name]) * 1000:>8.0f}")


if __name__ == "__main__":
    main()
