"""What every embedder is and returns: unit float32 rows, and a record of each paid call.

Invariants: an embedder's name and dimension are stored with every vector it makes; vectors of
different embedders are never mixed in one index (offline.py and remote.py implement it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from store.errors import StoreError

DEFAULT_EMBEDDER = "hashed-concepts-v1"
# The local sentence model of the `models` extra (store/vectors/local_model.py).
MODEL_EMBEDDER = "all-minilm-l6-v2"
# Both side by side, weighted alike (store/vectors/local_model.py).
COMBINED_EMBEDDER = "hashed-concepts-v1+all-minilm-l6-v2"
OFFLINE_BATCH_SIZE = 1024


class EmbedderUnavailable(StoreError):
    """A remote embedder failed (network, timeout, HTTP error or a malformed response)."""


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """One remote embedding request, recorded as a run_metadata row of kind 'embedding'."""

    request_id: str | None
    model_name: str
    input_tokens: int
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """Unit vectors (float32, one row per text; a text with no words gives a zero row)."""

    vectors: np.ndarray
    calls: list[EmbedCall]


class Embedder(Protocol):
    """Turns texts into unit vectors; its name is stored with every vector it makes."""

    name: str
    remote: bool  # whether embed() makes paid or slow calls worth caching

    @property
    def dimension(self) -> int:
        """The length of every vector this embedder makes."""
        ...

    def embed(self, texts: list[str]) -> EmbedResult:
        """Embed texts in order, batching internally."""
        ...


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length, leaving zero rows at zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0.0, norms, 1.0)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
