"""Access: roles, the actor each Store verb runs for, users, and restricted incidents.

Invariants: every Store verb checks its Action against the actor's role before it touches the
data, and a refusal is audited before AccessDenied is raised; a restricted incident's text, its
similar results and its indicators reach only an admin or a lead of one of its teams; the first
actor to open a store with no users is its admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from store.access.roles import ROLES, Action, Actor

if TYPE_CHECKING:
    from store.access.directory import UserRow

__all__ = ["ROLES", "Action", "Actor", "UserRow"]


def __getattr__(name: str) -> Any:
    """UserRow (a table, so SQLModel and SQLAlchemy) loads on first use: the roles alone are
    light, and the terminal app's first screen needs only them (PEP 562)."""
    if name == "UserRow":
        from store.access.directory import UserRow

        return UserRow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
