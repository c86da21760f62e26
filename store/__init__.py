"""incidex's persistent layer: a plain Python library with no terminal dependencies."""

from __future__ import annotations
