"""The cache without Redis: memory and disk tiers, the decorator, and stats."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store.cache import (
    VECTOR_CODEC,
    Cache,
    Savings,
    bypass_cache,
    cached,
    make_cache,
)
from store.cache.backends import MemoryBackend, RedisBackend
from store.cache.disk import DiskBackend
from store.settings import Settings


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def disk_cache(tmp_path: Path) -> Any:
    cache = Cache([MemoryBackend(), DiskBackend(tmp_path / "cache")])
    yield cache
    cache.close()


def counting(cache: Cache, namespace: str = "calls", **options: Any) -> tuple[Any, list[Any]]:
    """A cached function returning its argument, and the list of arguments it really ran with."""
    calls: list[Any] = []

    @cached(cache, namespace=namespace, version="1", model="m", **options)
    def echo(value: Any) -> Any:
        calls.append(value)
        return value

    return echo, calls


def test_memory_ttl_expires_on_injected_clock() -> None:
    clock = FakeClock()
    memory = MemoryBackend(clock=clock)
    memory.set("n", "k", b"v", ttl_seconds=10)
    clock.now += 9.9
    assert memory.get("n", "k") == (b"v", pytest.approx(0.1))
    clock.now += 0.2
    assert memory.get("n", "k") is None
    assert memory.size() == (0, 0)


def test_memory_is_lru_bounded_by_entries_and_bytes() -> None:
    memory = MemoryBackend(max_entries=3, max_bytes=10_000)
    for key in "abc":
        memory.set("n", key, b"x", None)
    assert memory.get("n", "a") is not None
    memory.set("n", "d", b"x", None)
    assert [key for key in "abcd" if memory.get("n", key)] == ["a", "c", "d"]
    by_bytes = MemoryBackend(max_entries=100, max_bytes=250)
    for key in "abc":
        by_bytes.set("n", key, b"x" * 100, None)
    entries, size = by_bytes.size()
    assert entries == 2 and size is not None and size <= 250
    assert by_bytes.get("n", "a") is None and by_bytes.get("n", "c") is not None


def test_memory_stays_consistent_under_threads() -> None:
    memory = MemoryBackend(max_entries=50, max_bytes=1_000_000)

    def churn(worker: int) -> None:
        for index in range(2000):
            memory.set("n", f"{worker}-{index % 80}", b"v" * (index % 7), None)
            memory.get("n", f"{worker}-{(index * 7) % 80}")

    threads = [threading.Thread(target=churn, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries, size = memory.size()
    keys = [f"{worker}-{index}" for worker in range(4) for index in range(80)]
    present = {key: found[0] for key in keys if (found := memory.get("n", key)) is not None}
    assert entries == len(present) == 50
    assert size == sum(len(value) + len("n") + len(key) for key, value in present.items())


@pytest.mark.parametrize("value", [0, "", [], {}, None, False, 0.0])
def test_falsy_results_are_cached_and_served(disk_cache: Cache, value: Any) -> None:
    echo, calls = counting(disk_cache)
    assert echo(value) == value
    served = echo(value)
    assert served == value and type(served) is type(value)
    assert calls == [value]


def test_empty_bytes_is_a_hit_not_a_miss(disk_cache: Cache) -> None:
    assert disk_cache.get("n", "k") is None
    disk_cache.set("n", "k", b"")
    assert disk_cache.get("n", "k") == b""


def test_sync_function_stays_sync() -> None:
    echo, calls = counting(Cache([MemoryBackend()]))
    assert not inspect.iscoroutinefunction(echo)
    assert echo(3) == 3 and echo(3) == 3 and calls == [3]


async def test_async_function_stays_async_and_works_under_asyncio(disk_cache: Cache) -> None:
    calls: list[str] = []

    @cached(disk_cache, namespace="chat", version="1", model="m")
    async def analyse(text: str) -> dict[str, str]:
        calls.append(text)
        await asyncio.sleep(0)
        return {"verdict": text.upper()}

    assert inspect.iscoroutinefunction(analyse)
    results = await asyncio.gather(analyse("a"), analyse("b"))
    assert results == [{"verdict": "A"}, {"verdict": "B"}]
    assert await analyse("a") == {"verdict": "A"}
    assert sorted(calls) == ["a", "b"]


async def test_cache_provider_is_asked_per_call_and_none_disables_caching() -> None:
    current: list[Cache | None] = [None]
    calls: list[int] = []

    @cached(lambda: current[0], namespace="n", version="1", model="m")
    async def double(number: int) -> int:
        calls.append(number)
        return number * 2

    assert [await double(1), await double(1)] == [2, 2] and calls == [1, 1]
    current[0] = Cache([MemoryBackend()])
    assert [await double(1), await double(1)] == [2, 2] and calls == [1, 1, 1]


def test_numpy_vectors_round_trip_as_float32(disk_cache: Cache) -> None:
    @cached(disk_cache, namespace="embed", version="1", model="m", codec=VECTOR_CODEC)
    def embed(text: str) -> np.ndarray:
        return np.linspace(0, 1, 384, dtype=np.float32)

    first = embed("x")
    disk_cache.tiers[0].clear(None)
    served = embed("x")
    assert served.dtype == np.float32 and served.shape == (384,)
    assert np.array_equal(first, served) and served.flags.writeable


def test_bypass_refresh_and_per_call_ttl() -> None:
    clock = FakeClock()
    cache = Cache([MemoryBackend(clock=clock)])
    echo, calls = counting(cache)
    echo(1, cache_bypass=True)
    assert cache.stats().process.total("sets") == 0
    echo(1)
    echo(1)
    with bypass_cache():
        echo(1)
    echo(1, cache_refresh=True)
    echo(1)
    assert calls == [1, 1, 1, 1]
    echo(2, cache_ttl_seconds=5)
    clock.now += 6
    echo(2)
    assert calls == [1, 1, 1, 1, 2, 2]


def test_invalidate_one_call_and_clear_namespace(disk_cache: Cache) -> None:
    echo, calls = counting(disk_cache, namespace="first")
    other, other_calls = counting(disk_cache, namespace="second")
    for value in (1, 2):
        echo(value)
        other(value)
    assert echo.invalidate(1) is True  # type: ignore[attr-defined]
    echo(1)
    echo(2)
    assert calls == [1, 2, 1]
    assert disk_cache.clear("first") >= 2
    echo(2)
    other(1)
    other(2)
    assert calls == [1, 2, 1, 2] and other_calls == [1, 2]


def test_unreadable_entry_is_recomputed(disk_cache: Cache) -> None:
    echo, calls = counting(disk_cache)
    disk_cache.set("calls", echo.cache_key({"a": 1}), b"\xff not json")  # type: ignore[attr-defined]
    assert echo({"a": 1}) == {"a": 1} and echo({"a": 1}) == {"a": 1}
    assert calls == [{"a": 1}]


def test_result_the_codec_cannot_write_is_returned_not_cached(
    disk_cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    echo, calls = counting(disk_cache)
    with caplog.at_level(logging.ERROR, logger="incidex.cache"):
        assert echo({1, 2}) == {1, 2} and echo({1, 2}) == {1, 2}
    assert len(calls) == 2 and len(caplog.records) == 1


def test_savings_are_credited_on_hits(disk_cache: Cache) -> None:
    calls, cost = [], Savings(tokens=120, cost_usd=Decimal("0.0003"))

    @cached(disk_cache, namespace="chat", version="1", model="m", savings=lambda result: cost)
    def analyse(text: str) -> str:
        calls.append(text)
        return f"analysis of {text}"

    for _ in range(3):
        analyse("incident")
    process = disk_cache.stats().process
    assert calls == ["incident"]
    assert process.hits == 2 and process.misses == 1
    assert process.tokens_saved == 240 and process.cost_usd_saved == Decimal("0.0006")
    assert process.total("hits", scope="memory", namespace="chat") == 2
    assert process.total("misses", scope="disk", namespace="chat") == 1
    assert process.hit_rate("chat") == pytest.approx(2 / 3)


def test_names_are_checked(disk_cache: Cache) -> None:
    for namespace in ("", "a:b", "*", "__stats", "a b"):
        with pytest.raises(ValueError, match="namespace"):
            disk_cache.get(namespace, "k")
    with pytest.raises(TypeError, match="bytes"):
        disk_cache.set("n", "k", "text")  # type: ignore[arg-type]


def test_make_cache_uses_disk_without_redis_url(tmp_path: Path) -> None:
    cache = make_cache(Settings(data_dir=tmp_path, redis_url=None), prefix="unit")
    assert [tier.name for tier in cache.tiers] == ["memory", "disk"]
    cache.set("n", "k", b"v")
    assert (tmp_path / "cache" / "unit" / "values" / "cache.db").exists()
    cache.close()
    remote = make_cache(Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(remote.tiers[1], RedisBackend)
    assert remote.get("n", "k") is None
    remote.close()
