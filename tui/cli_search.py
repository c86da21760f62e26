"""`incidex similar`, `reindex` and `verify`: similar-incident search without the TUI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from store import DEFAULT_SIMILAR_K, SEVERITY_SCALE, Settings, SimilarResult, StoreError
from tui.exit_codes import ExitCode
from tui.output import say, say_json
from widgets.format import printable


def _open(settings: Settings) -> Any:
    """An existing store: commands that only read or maintain it never create one."""
    from store import Store

    return Store.open(settings, create=False)


def _progress(label: str) -> Any:
    """A rich progress bar on stderr when it is a terminal; silent otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(f"[progress.description]{label}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True),
                    disable=not sys.stderr.isatty())


@click.command()
@click.argument("text", required=False)
@click.option("--incident", "incident_ids", multiple=True, metavar="ID",
              help="Find incidents like this stored one (repeatable).")
@click.option("--incidents-from", type=click.Path(path_type=Path, dir_okay=False),
              help="A file of incident ids, one per line ('-' for stdin).")
@click.option("-k", "k", type=click.IntRange(1, 200), default=DEFAULT_SIMILAR_K, show_default=True,
              help="How many similar incidents per query.")
@click.option("--severity", multiple=True,
              help="Only this severity (repeatable): critical, high, medium, low, info, or any "
                   "other word stored analyses carry.")
@click.option("--since", type=click.DateTime(), help="Only analyses from this date (UTC).")
@click.option("--until", type=click.DateTime(), help="Only analyses up to this date (UTC).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query on stdout.")
@click.pass_obj
def similar(settings: Settings, text: str | None, incident_ids: tuple[str, ...],
            incidents_from: Path | None, k: int, severity: tuple[str, ...],
            since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """Find past incidents similar to TEXT or to stored incidents.

    \b
    Examples:
      incidex similar "fake invoice macro attachment" -k 5
      incidex similar --incident INC-2026-0001 --json
      incidex similar --incidents-from ids.txt --json > similar.jsonl
    """
    queries = list(_queries(text, incident_ids, incidents_from))
    if not queries:
        raise click.UsageError("give a TEXT, --incident ID or --incidents-from FILE")
    failed = 0
    with _open(settings) as store:
        unknown = store.unknown_severities(severity)
        if unknown:
            raise click.BadParameter(f"no analysis has the severity {unknown[0]!r} (the usual "
                                     f"ones: {', '.join(SEVERITY_SCALE[:5])})",
                                     param_hint="'--severity'")
        for query_text, incident_id in queries:
            try:
                result = store.similar(text=query_text, incident_id=incident_id, k=k,
                                       severity=list(severity) or None,
                                       since=_utc(since), until=_utc(until))
            except StoreError as error:
                failed += 1
                say(f"incidex: {error}", err=True)
                if as_json:
                    say_json({"query": query_text, "incident_id": incident_id,
                              "error": str(error), "results": []})
                continue
            if as_json:
                say_json(_as_json(result))
            else:
                say(_as_table(result))
    sys.exit(int(ExitCode.RECORDS_FAILED if failed else ExitCode.OK))


def _queries(text: str | None, incident_ids: tuple[str, ...], source: Path | None
             ) -> Iterator[tuple[str | None, str | None]]:
    if text is not None:
        yield text, None
    for incident_id in incident_ids:
        yield None, incident_id
    if source is not None:
        handle = sys.stdin if str(source) == "-" else source.open(encoding="utf-8")
        with handle:
            for line in handle:
                if line.strip():
                    yield None, line.strip()


def _utc(moment: datetime | None) -> datetime | None:
    from store import as_utc

    return None if moment is None else as_utc(moment)


def _as_json(result: SimilarResult) -> dict[str, Any]:
    return {
        "query": result.query_text, "incident_id": result.query_incident_id,
        "elapsed_ms": round(result.elapsed_ms, 3), "from_cache": result.from_cache,
        "results": [{"rank": rank, "incident_id": hit.incident_id,
                     "analysis_id": hit.analysis_id, "score": hit.score, "title": hit.title,
                     "severity": hit.severity, "created_at": hit.created_at.isoformat(),
                     "matched_iocs": hit.shared_iocs, "matched_techniques": hit.shared_techniques,
                     "near_duplicates": hit.near_duplicates,
                     "near_duplicate_incident_ids": [member.incident_id
                                                     for member in hit.near_duplicate_hits]}
                    for rank, hit in enumerate(result.hits, start=1)],
    }


def _as_table(result: SimilarResult) -> str:
    what = repr(result.query_text) if result.query_text else result.query_incident_id or ""
    lines = [f"similar to {printable(what, one_line=True)} ({result.elapsed_ms:.1f} ms"
             f"{', cached' if result.from_cache else ''}):"]
    if not result.hits:
        lines.append("  nothing similar yet")
    else:
        # The order is the fused one (shared indicators, then meaning and words together), so
        # the cosine column need not descend: the header says which number it is.
        lines.append(f"  #  cosine  {'incident':<22} {'severity':<9} {'date':<10}  title"
                     "   (ranked by shared indicators, then meaning and words)")
    for rank, hit in enumerate(result.hits, start=1):
        why = printable(", ".join(hit.shared_techniques + hit.shared_iocs), one_line=True)
        more = f" (+{hit.near_duplicates} near-duplicates)" if hit.near_duplicates else ""
        incident_id, title = (printable(value, one_line=True)
                              for value in (hit.incident_id, hit.title[:60]))
        severity = printable(hit.severity or "-", one_line=True)
        lines.append(f"{rank:3d}. {hit.score:.3f}  {incident_id:<22} {severity:<9} "
                     f"{hit.created_at:%Y-%m-%d}  {title}{more}"
                     + (f"\n       matched: {why}" if why else ""))
    return "\n".join(lines)


@click.command()
@click.option("--pending", is_flag=True,
              help="Only fill vectors left pending (by the local model's saves, or an outage).")
@click.option("--follow", is_flag=True,
              help="With --pending: keep filling new pending vectors as they are saved, until "
              "Ctrl-C or SIGTERM (safe beside the TUI and other fillers).")
@click.pass_obj
def reindex(settings: Settings, pending: bool, follow: bool) -> None:
    """Rebuild every vector and the index from the database (after changing the embedder)."""
    if follow:
        if not pending:
            raise click.UsageError("--follow goes with --pending")
        sys.exit(int(_follow_pending(settings)))
    with _open(settings) as store, _progress("embedding") as progress:
        task = progress.add_task("embedding", total=None)
        written = store.reindex(pending_only=pending,
                          progress=lambda done, total: progress.update(task, completed=done,
                                                                       total=total))
    say(f"{written:,} vectors written with {settings.embedder}", err=True)


def _follow_pending(settings: Settings) -> ExitCode:
    """Fill pending vectors as they come, one stderr line a batch, until a signal stops it
    (the batch being embedded is finished and committed first)."""
    import signal
    import threading

    from store import FillProgress

    stop = threading.Event()
    interrupted: list[int] = []

    def stop_on(signal_number: int, _frame: Any) -> None:
        interrupted.append(signal_number)
        stop.set()

    def report(at: FillProgress) -> None:
        rate = f", {at.texts_per_second:.1f} texts/s" if at.texts_per_second else ""
        problem = f" ({printable(at.problem, one_line=True)})" if at.problem else ""
        say(f"vectors filled: {at.filled:,}, pending: {at.pending:,}{rate}{problem}", err=True)

    previous = {number: signal.signal(number, stop_on)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _open(settings) as store:
            written = store.fill_pending_vectors(stop=stop, progress=report, follow=True)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    say(f"{written:,} vectors written with {settings.embedder}", err=True)
    if not stop.is_set():  # it gave up by itself: the stored vectors are another embedder's
        return ExitCode.RECORDS_FAILED
    return ExitCode.INTERRUPTED if interrupted else ExitCode.OK


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.pass_obj
def verify(settings: Settings, as_json: bool) -> None:
    """Check that the vector index and the database agree; exit 1 on drift."""
    with _open(settings) as store:
        report = store.verify_vectors()
    if as_json:
        say_json(report.as_dict())
    else:
        say("\n".join(report.lines()))
    sys.exit(int(ExitCode.OK if report.in_step else ExitCode.RECORDS_FAILED))
