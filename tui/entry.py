"""The `incidex` console script: a plain --save is handed to a save server when one answers
(tui/save_client.py, standard library only); everything else is the full command (tui/cli.py)."""

from __future__ import annotations

import sys

from tui.save_client import run_full, try_save


def main() -> None:
    """Run the incidex command."""
    code = try_save(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from tui.cli import main as full_command

    run_full(full_command)
