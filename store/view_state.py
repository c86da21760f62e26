"""The app's remembered view between runs: a small JSON file beside the config file.

Invariants: a missing, unreadable or malformed file reads as no remembered state (never an
error that stops the app); a write replaces the file whole (temp file and rename) or not at all.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from store.fileio import write_temp
from store.locations import state_file
from store.settings import Settings

log = logging.getLogger("incidex.store")


def load_view_state(settings: Settings) -> dict[str, Any]:
    """The remembered view, or {} when there is none or it cannot be read."""
    path = state_file(settings)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("view state %s ignored: %s", path, error)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def save_view_state(settings: Settings, changes: dict[str, Any]) -> None:
    """Merge changes into the remembered view and write it atomically; failures are logged."""
    path = state_file(settings)
    state = {**load_view_state(settings), **changes}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = write_temp(path, json.dumps(state, indent=2, sort_keys=True).encode())
        os.replace(temp, path)
    except OSError as error:
        log.warning("view state not written to %s: %s", path, error)
