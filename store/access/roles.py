"""Roles and what each may do; the actor every Store verb runs for.

Roles nest: viewer < analyst < lead < admin, each allowed what the one below it is, and more.
Purging is a separate permission that only a lead or an admin can hold. A restricted incident's
text is readable by an admin, and by a lead of one of the teams it is restricted to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """Everything a Store verb may be asked to do, as the permission it needs."""

    LIST = "list"  # incident lists, titles, severities, counts
    USAGE = "usage"  # token and cost totals
    SIMILAR = "similar"  # similar-incident results
    READ = "read"  # an incident's description and findings, its analyses
    EXPORT = "export"  # an incident and its analyses written out or copied
    SAVE = "save"  # new analyses and incidents
    READ_AUDIT = "read_audit"  # the audit log
    RESTRICT = "restrict"  # marking incidents restricted to teams
    MAINTAIN = "maintain"  # reindex, cache clear, retention settings
    MANAGE_USERS = "manage_users"  # roles and teams
    KEYS = "keys"  # key operations
    RESTORE = "restore"  # restoring backups
    PURGE = "purge"  # deleting incidents for good


ROLES = ("viewer", "analyst", "lead", "admin")
_VIEWER = frozenset({Action.LIST, Action.USAGE, Action.SIMILAR})
_ANALYST = _VIEWER | {Action.READ, Action.EXPORT, Action.SAVE}
_LEAD = _ANALYST | {Action.READ_AUDIT, Action.RESTRICT, Action.MAINTAIN}
_ADMIN = _LEAD | {Action.MANAGE_USERS, Action.KEYS, Action.RESTORE}
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "viewer": _VIEWER, "analyst": _ANALYST, "lead": _LEAD, "admin": _ADMIN,
}
PURGE_ROLES = frozenset({"lead", "admin"})


def normalise_teams(teams: str | list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """Team names without blanks or empties: 'red, blue' and ['blue', 'red'] are the same."""
    names = teams.split(",") if isinstance(teams, str) else list(teams)
    return frozenset(name.strip().lower() for name in names if name.strip())


def teams_text(teams: frozenset[str]) -> str:
    """Teams as stored: sorted, comma-separated."""
    return ",".join(sorted(teams))


@dataclass(frozen=True)
class Actor:
    """Who a Store runs for: a user name, their role (None: no role at all), teams, purge."""

    name: str
    role: str | None
    teams: frozenset[str] = field(default_factory=frozenset)
    can_purge: bool = False

    def may(self, action: Action) -> bool:
        """Whether this actor's role allows action."""
        if self.role is None:
            return False
        if action is Action.PURGE:
            return self.can_purge and self.role in PURGE_ROLES
        return action in ROLE_ACTIONS[self.role]

    def may_read_restricted(self, teams: frozenset[str]) -> bool:
        """Whether this actor may read the text of an incident restricted to teams."""
        if self.role == "admin":
            return True
        return self.role == "lead" and bool(self.teams & teams)

    @property
    def cache_scope(self) -> str:
        """What cached answers for this actor are keyed by (role and teams)."""
        return f"{self.role or '-'}:{teams_text(self.teams)}"

    def describe(self) -> str:
        """The actor as shown to people: 'alice (analyst, team red)'."""
        role = self.role or "no role"
        team = f", team {teams_text(self.teams)}" if self.teams else ""
        return f"{self.name} ({role}{team})"
