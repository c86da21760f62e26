"""The command palette's incidex commands: every action the current screen and the app offer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.screen import Screen

from tui.screens.help import key_names
from widgets.format import printable
from widgets.stored_text import markup_source

SKIPPED_ACTIONS = {"command_palette"}


@dataclass(frozen=True)
class PaletteCommand:
    """One named action for the palette."""

    name: str
    help: str
    run: Callable[[], Any]


def screen_commands(screen: Screen[Any], app: App[Any]) -> list[PaletteCommand]:
    """The actions bound on this screen, its incidex widgets and the app, then extra ones."""
    commands: list[PaletteCommand] = []
    seen: set[tuple[int, str]] = set()
    for active in screen.active_bindings.values():
        node, binding = active.node, active.binding
        ours = node is screen or node is app or type(node).__module__.startswith("widgets.")
        if not ours or not binding.description or binding.action in SKIPPED_ACTIONS:
            continue
        if not active.enabled or (id(node), binding.action) in seen:
            continue
        seen.add((id(node), binding.action))
        commands.append(PaletteCommand(
            binding.description, f"key {key_names(binding)}",
            partial(app.run_action, binding.action, node)))
    extra = getattr(screen, "palette_commands", None)
    if callable(extra):
        commands.extend(extra())
    app_extra = getattr(app, "palette_commands", None)
    if callable(app_extra):
        commands.extend(app_extra())
    return commands


class IncidexCommands(Provider):
    """Offers every incidex action available where the palette was opened."""

    def _commands(self) -> Iterator[PaletteCommand]:
        yield from screen_commands(self.screen, self.app)

    async def discover(self) -> Hits:
        """List every command before anything is typed."""
        for command in self._commands():
            yield DiscoveryHit(markup_source(command.name), command.run,
                               help=markup_source(command.help))

    async def search(self, query: str) -> Hits:
        """Commands whose name matches what was typed."""
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(printable(command.name, one_line=True)),
                          command.run, help=markup_source(command.help))


class IncidentCommands(Provider):
    """Finds incidents by id, id prefix or title words as the analyst types, and opens one."""

    MIN_CHARS = 2
    # Ids found by the store but not fuzzy-matched by name still rank, below name matches.
    FOUND_SCORE = 0.3

    async def search(self, query: str) -> Hits:
        """Incidents the store finds for the typed text (looked up in a thread)."""
        app: Any = self.app
        finder = getattr(app, "store", None)
        if len(query.strip()) < self.MIN_CHARS or finder is None:
            return
        found = await asyncio.to_thread(finder.find_incidents, query, 8)
        matcher = self.matcher(query)
        for row in found:
            label = f"{row.incident_id}  {row.title}".replace("\n", " ")[:120]
            score = max(matcher.match(label), self.FOUND_SCORE)
            yield Hit(score, _highlighted(label, query), partial(app.open_analysis,
                                                                 row.incident_id),
                      text=label, help=markup_source(
                          f"open incident · {row.latest_severity or 'no severity'}"))


def _highlighted(label: str, query: str) -> Content:
    """The label as plain text (never markup: titles are stored text) with the query bold."""
    content = Content(label)
    start = label.lower().find(query.strip().lower())
    if start >= 0:
        content = content.stylize("bold", start, start + len(query.strip()))
    return content
