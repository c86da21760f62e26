"""Access: roles, the actor each Store verb runs for, users, and restricted incidents.

Invariants: every Store verb checks its Action against the actor's role before it touches the
data, and a refusal is audited before AccessDenied is raised; a restricted incident's text, its
similar results and its indicators reach only an admin or a lead of one of its teams; the first
actor to open a store with no users is its admin.
"""

from __future__ import annotations

from store.access.directory import UserRow
from store.access.roles import ROLES, Action, Actor

__all__ = ["ROLES", "Action", "Actor", "UserRow"]
