"""The `incidex` command: the TUI with no arguments, headless verbs otherwise."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

# Only the light errors module loads here: `incidex --version` and `--help` stay fast.
from store import StoreError
from tui.exit_codes import ExitCode, store_error_code
from tui.output import say

if TYPE_CHECKING:
    from store import Settings

EPILOG = """\b
Examples:
  incidex                                   open the TUI on ./data
  incidex demo --count 1000                 fill the store with demo incidents
  incidex --save data/examples/analyses.jsonl
  my-agent | incidex --save -               save records piped on stdin
  INCIDEX_DATABASE_URL=postgresql://db/soc incidex --save run.jsonl
  incidex analyze INC-2026-0001             a new analysis from the chat model

\b
Exit codes: 0 ok, 1 some records failed, 2 usage error,
3 store unavailable, 4 access denied, 5 audit log broken (audit verify),
70 internal error (a bug: please report it),
130 interrupted (--save saves the records read completely first).
"""


class InputUnreadable(Exception):
    """The --save input cannot be read (missing, a directory, no permission)."""


# The headless commands outside this module, by name: where each lives, and the first paragraph
# of its help (what `incidex --help` lists), so that listing them imports none of them (their
# modules load the store's settings and models: most of a second). A test checks the table.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("tui.cli_analyze", "Run new analyses of stored incidents with the chat model, "
                "grounded in similar past incidents; each is validated, cached, metered and "
                "saved like `--save`."),
    "audit": ("tui.cli_audit", "Check and read the audit log of who did what (leads and "
              "admins)."),
    "backup": ("tui.cli_backup", "Snapshots, the journal of saved analyses, restore to a time, "
               "and the restore drill."),
    "forget": ("tui.cli_keys", "Erase these incidents now, with everything derived from them "
               "(a data-subject request)."),
    "keys": ("tui.cli_keys", "The keys that seal incident text: status, rotation, checks, "
             "sealing an old store."),
    "purge": ("tui.cli_keys", "Remove the incidents the retention policy (INCIDEX_RETENTION_DAYS,"
              " INCIDEX_RETENTION_DAYS_BY_SEVERITY) says are due."),
    "restrict": ("tui.cli_audit", "Restrict an incident's text to named teams (leads and "
                 "admins)."),
    "users": ("tui.cli_audit", "Who may do what: users (OS users, or PostgreSQL roles) and their "
              "roles (admins)."),
    "cache": ("tui.cli_cache",
              "Inspect, clear and warm the cache in front of embeddings and similar search."),
    "incident": ("tui.cli_analyze", "Register incidents that have no analysis yet (for "
                 "`incidex analyze --unanalysed`)."),
    "reindex": ("tui.cli_search", "Rebuild every vector and the index from the database "
                "(after changing the embedder)."),
    "serve": ("tui.save_server", "Hold the store open and save what `incidex --save` hands "
              "over a private socket."),
    "similar": ("tui.cli_search", "Find past incidents similar to TEXT or to stored incidents."),
    "verify": ("tui.cli_search",
               "Check that the vector index and the database agree; exit 1 on drift."),
}


class _Group(click.Group):
    """A group that turns every expected failure into one line and an exit code, and imports
    a command's module only when that command runs (so --help and --save stay fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name][0])
            self.add_command(getattr(module, cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help, the lazy commands' lines from LAZY_COMMANDS."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in LAZY_COMMANDS and name not in self.commands:
                summary = click.Command(name, help=LAZY_COMMANDS[name][1])
                rows.append((name, summary.get_short_help_str(limit)))
            elif (command := self.commands.get(name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            outcome = super().main(*args, **kwargs)
        except click.ClickException as error:
            _fail(_usage_line(error), ExitCode.USAGE)
        except (click.Abort, KeyboardInterrupt):
            _fail("interrupted", ExitCode.INTERRUPTED)
        except InputUnreadable as error:
            _fail(str(error), ExitCode.USAGE)
        except StoreError as error:
            _fail(str(error), store_error_code(error))
        except Exception as error:
            if os.environ.get("INCIDEX_DEBUG"):
                raise
            _fail(f"internal error: {type(error).__name__}: {error} "
                  "(set INCIDEX_DEBUG=1 for a traceback)", ExitCode.INTERNAL_ERROR)
        sys.exit(outcome if isinstance(outcome, int) else 0)


def _usage_line(error: click.ClickException) -> str:
    """One line for a usage error: the command, what is wrong, where to find help."""
    context = getattr(error, "ctx", None)
    if context is None:
        return error.format_message()
    return (f"{context.command_path.removeprefix('incidex').strip() or 'usage'}: "
            f"{error.format_message()} (see {context.command_path} --help)")


def _fail(message: str, code: ExitCode) -> None:
    say(f"incidex: {message}", err=True)
    sys.exit(int(code))


@click.group(cls=_Group, invoke_without_command=True, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--save", "save_path", metavar="FILE",
              help="Save analyses from FILE ('-' for stdin): one JSON document, an array, "
                   "or JSON Lines. Prints a JSON line per record.")
@click.option("--data-dir", type=click.Path(path_type=Path), envvar="INCIDEX_DATA_DIR",
              show_envvar=True, help="Data directory (database, backups, index). [default: data]")
@click.option("--database-url", envvar="INCIDEX_DATABASE_URL", show_envvar=True,
              help="SQLAlchemy URL; default SQLite at DATA_DIR/incident_analysis.db.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              envvar="INCIDEX_CONFIG_FILE", show_envvar=True,
              help="TOML settings file. [default: ~/.config/incidex/config.toml]")
@click.version_option(package_name="incidex", prog_name="incidex",
                      message="%(prog)s %(version)s", help="Print the version and exit.")
@click.pass_context
def main(ctx: click.Context, save_path: str | None, data_dir: Path | None,
         database_url: str | None, config_file: Path | None) -> None:
    """incidex: every security incident and LLM analysis, searchable, with costs.

    With no command it opens the terminal app; the commands below work headless.
    """
    from store import load_settings

    if config_file is not None:
        os.environ["INCIDEX_CONFIG_FILE"] = str(config_file)
    ctx.obj = load_settings(data_dir=data_dir, database_url=database_url)
    if save_path is not None:
        if ctx.invoked_subcommand is not None:
            raise click.UsageError("--save cannot be combined with a command")
        sys.exit(int(_save(ctx.obj, save_path)))
    if ctx.invoked_subcommand is None:
        sys.exit(int(_open_app(ctx.obj)))


def _open_store(settings: Settings) -> Any:
    from store import Store

    return Store.open(settings)


def _save(settings: Settings, path: str) -> ExitCode:
    from tui.headless import save_stream
    from tui.save_client import stop_on_signals  # (standard library only)

    stream = _open_input(path)
    stop = threading.Event()
    with stream, _open_store(settings) as store, stop_on_signals(stop):
        ok, failed = save_stream(store, stream, sys.stdout, sys.stderr,
                                 batch_size=settings.save_batch_size, stop=stop)
    if stop.is_set():
        say(f"incidex: interrupted; {ok} saved or duplicate, {failed} failed "
            "(records read completely were saved)", err=True)
        return ExitCode.INTERRUPTED
    if failed:
        say(f"incidex: {ok} saved or duplicate, {failed} failed", err=True)
    return ExitCode.RECORDS_FAILED if failed else ExitCode.OK


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        # Unbuffered: the save stream's reader thread may be blocked reading it when a signal
        # ends the run, and a buffered stream's lock would then hold up closing it.
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    target = Path(path)
    if target.is_dir():
        raise InputUnreadable(f"cannot read {path}: is a directory")
    try:
        return target.open("rb")
    except FileNotFoundError:
        raise InputUnreadable(f"cannot read {path}: no such file") from None
    except OSError as error:
        raise InputUnreadable(f"cannot read {path}: {error.strerror}") from None


def _open_app(settings: Settings) -> ExitCode:
    try:
        from tui.app import run_app
    except ImportError:
        return _print_summary(settings)
    code = run_app(settings)
    _exit_now(code)
    return code


def _exit_now(code: ExitCode) -> None:
    """Leave at once once the app has closed the store: the interpreter's own teardown of
    every loaded module (FAISS, numpy, SQLAlchemy) takes about a second and saves nothing."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def _print_summary(settings: Settings) -> ExitCode:
    with _open_store(settings) as store:
        summary = store.summary()
    if summary.analyses == 0:
        say(f"The store at {summary.database_url} is empty. Add data with:\n"
                   "  incidex demo --count 1000\n"
                   "  incidex --save data/examples/analyses.jsonl")
        return ExitCode.OK
    say(f"{summary.incidents:,} incidents, {summary.analyses:,} analyses, "
               f"{summary.model_calls:,} model calls, ${summary.cost_usd:,.4f} "
               f"in {summary.database_url}")
    return ExitCode.OK


@main.command()
@click.option("--count", "-n", type=click.IntRange(1, 10_000_000), default=1000,
              show_default=True, help="How many demo analyses to add.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed; the same seed gives the same data.")
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True,
              help="Start at this record of the sequence (to resume, or to split a large "
                   "fill across processes).")
@click.pass_obj
def demo(settings: Settings, count: int, seed: int, offset: int) -> None:
    """Fill the store with realistic synthetic incidents and analyses.

    \b
    Example: incidex demo --count 100000 --seed 7
    """
    from tui.headless import fill_demo

    with _open_store(settings) as store:
        saved = fill_demo(store, count, seed, offset=offset, show_progress=sys.stderr.isatty())
    say(f"{saved:,} demo analyses saved ({count - saved:,} already there)", err=True)


if __name__ == "__main__":
    from tui.save_client import run_full, try_save

    # `python -m tui.cli`: as the console script (tui/entry.py), a --save tries a save server.
    if (handed_over := try_save(sys.argv[1:])) is not None:
        sys.exit(handed_over)
    run_full(main)
