"""Store.clear_cache: known namespaces only, and every tier must answer."""

from __future__ import annotations

from typing import Any

import pytest

from store.errors import StoreError
from store.schemas import CACHE_NAMESPACES
from store.vectors.search import SIMILAR_NAMESPACE
from store.vectors.service import EMBED_NAMESPACE


def test_the_namespaces_the_store_uses_are_the_known_ones() -> None:
    assert {EMBED_NAMESPACE, SIMILAR_NAMESPACE} <= set(CACHE_NAMESPACES)


def test_an_unknown_namespace_is_refused_and_a_known_one_cleared(store: Any) -> None:
    with pytest.raises(StoreError, match="unknown namespace 'bogus'"):
        store.clear_cache("bogus")
    store.cache.set("similar", "k" * 64, b"x")
    assert store.clear_cache("similar") >= 1
    assert store.cache.get("similar", "k" * 64) is None
