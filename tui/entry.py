"""The `incidex` console script: a plain --save is handed to a save server when one answers
(tui/save_client.py, standard library only); everything else is the full command (tui/cli.py),
with nothing more loaded than before (`--help` and `--version` never load the save client)."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the incidex command."""
    arguments = sys.argv[1:]
    if not any(argument == "--save" or argument.startswith("--save=")
               for argument in arguments):
        from tui.cli import main as full_command

        full_command()
        return
    from tui.save_client import run_full, try_save

    code = try_save(arguments)
    if code is not None:
        sys.exit(code)
    from tui.cli import main as full_command

    run_full(full_command)
