"""incidex's cache: bytes under (namespace, key) in memory, then Redis or an on-disk cache.

Invariants: a cache that is down makes calls slower, never broken (every tier runs behind a
circuit breaker, a miss sends the caller to the source, a failed write is skipped); values are
bytes, never pickles; keys are a hash of a canonical form of the call and a version.
This package's door: make_cache(), Cache, the `cached` decorator, codecs and stats types.
"""

from __future__ import annotations

from store.cache.decorator import bypass_cache, cached, invalidate_namespace
from store.cache.keys import (
    BYTES_CODEC,
    JSON_CODEC,
    VECTOR_CODEC,
    Codec,
    NumpyCodec,
    PydanticCodec,
    canonical_json,
    make_key,
)
from store.cache.stats import CacheStats, Savings, StatsSnapshot
from store.cache.tiered import Cache, Entry, make_cache

__all__ = [
    "BYTES_CODEC",
    "JSON_CODEC",
    "VECTOR_CODEC",
    "Cache",
    "CacheStats",
    "Codec",
    "Entry",
    "NumpyCodec",
    "PydanticCodec",
    "Savings",
    "StatsSnapshot",
    "bypass_cache",
    "cached",
    "canonical_json",
    "invalidate_namespace",
    "make_cache",
    "make_key",
]
