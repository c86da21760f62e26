"""The snapshot tests use the TUI tests' fixed data and frozen clock."""

from __future__ import annotations

from tests.tui.conftest import empty_store, filled_store, tui_settings  # noqa: F401
