"""Which key actions need which permission, so the app greys out what the actor may not do.

The store enforces every permission itself (a refused verb raises AccessDenied, shown as a
notification); this only spares the analyst keys that would be refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store import Action

if TYPE_CHECKING:
    from store import Store

ACTION_PERMISSIONS: dict[str, Action] = {
    "analyze": Action.SAVE,
    "import_file": Action.SAVE,
    "fill_demo": Action.SAVE,
    "copy": Action.EXPORT,
    "export": Action.EXPORT,
    "export_incident": Action.EXPORT,
    "open_outside": Action.EXPORT,
    "similar": Action.SIMILAR,
    "similar_text": Action.SIMILAR,
    "usage": Action.USAGE,
}


def action_allowed(store: Store | None, action: str) -> bool | None:
    """True when the actor may run the key action; None (greyed out) when their role forbids,
    or while the store is still opening (no store yet: the actor's role is not known)."""
    needed = ACTION_PERMISSIONS.get(action)
    if needed is None:
        return True
    return True if store is not None and store.actor.may(needed) else None


def signed_in_line(store: Store) -> str:
    """Who is signed in, for the header: 'signed in as alice (analyst, team red)'."""
    return f"signed in as {store.actor.describe()}"
