"""`incidex cache stats|clear|warm`."""

from __future__ import annotations

from typing import Any

import click

from store import CACHE_NAMESPACES, Settings
from tui.cli_search import _open, _progress
from tui.output import say, say_json


@click.group()
def cache() -> None:
    """Inspect, clear and warm the cache in front of embeddings and similar search."""


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="The statistics as one JSON object.")
@click.pass_obj
def stats(settings: Settings, as_json: bool) -> None:
    """Hits, misses, errors, hit rate and the tokens and dollars hits saved."""
    with _open(settings) as store:
        numbers = store.cache_stats()
    if as_json:
        say_json(numbers, default=str)
        return
    rate = numbers["hit_rate"]
    say(f"hits {numbers['hits']:,}  misses {numbers['misses']:,}  "
               f"errors {numbers['errors']:,}  hit rate "
               f"{'-' if rate is None else f'{rate:.1%}'}")
    say(f"saved {numbers['tokens_saved']:,} tokens, ${numbers['usd_saved']:.4f}")
    for namespace, namespace_rate in numbers["by_namespace"].items():
        shown = "-" if namespace_rate is None else f"{namespace_rate:.1%}"
        say(f"  {namespace:<12} hit rate {shown}")
    for tier in numbers["detail"]["tiers"]:
        state = "up" if tier["available"] else "DOWN"
        size = "" if tier["entries"] is None else f", {tier['entries']:,} entries"
        say(f"  tier {tier['name']:<8} {state}{size}")


@cache.command()
@click.option("--namespace", type=click.Choice(CACHE_NAMESPACES),
              help="Only this namespace.")
@click.pass_obj
def clear(settings: Settings, namespace: str | None) -> None:
    """Remove cached entries (all, or one namespace); exit 3 when Redis or the disk cache is
    down."""
    with _open(settings) as store:
        removed = store.clear_cache(namespace)
    say(f"{removed:,} cache entries removed", err=True)


@cache.command()
@click.option("--recent", type=click.IntRange(0, 100_000), default=200, show_default=True,
              help="Warm similar results for this many most recent incidents.")
@click.pass_obj
def warm(settings: Settings, recent: int) -> None:
    """Fill missing vectors, then similar results for the most recent incidents."""
    with _open(settings) as store:
        pending = store.pending_vector_count()
        if pending:
            with _progress("vectors") as progress:
                task = progress.add_task("vectors", total=pending)
                store.reindex(pending_only=True,
                        progress=lambda done, total: progress.update(task, completed=done))
        ids = _recent_ids(store, recent)
        with _progress("similar") as progress:
            task = progress.add_task("similar", total=len(ids))
            warmed = 0
            for incident_id in ids:
                warmed += store.warm_similar([incident_id])
                progress.advance(task)
    say(f"{pending:,} pending vectors filled, similar results warmed for "
               f"{warmed:,} incidents", err=True)


def _recent_ids(store: Any, count: int) -> list[str]:
    ids: list[str] = []
    cursor = None
    while len(ids) < count:
        page = store.incidents_page(limit=min(500, count - len(ids)), after=cursor)
        ids.extend(row.incident_id for row in page.rows)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return ids
