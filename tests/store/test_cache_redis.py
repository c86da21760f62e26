"""The Redis tier against real servers: the shared one (own prefix) and a private one we stop."""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from store.cache import Cache, Savings, cached
from store.cache.backends import MemoryBackend, RedisBackend
from tests.support.redis_server import RedisServer, require_shared_redis

pytestmark = pytest.mark.redis


class FakeClock:
    """A clock the test moves by hand (drives the circuit breaker's retry interval)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shared_url() -> str:
    return require_shared_redis()


@pytest.fixture
def prefix() -> str:
    return f"incidex-test-{uuid.uuid4().hex}"


@pytest.fixture
def client(shared_url: str, prefix: str) -> Iterator[redis.Redis]:
    """A plain client for looking at what the cache wrote; checks nothing is left afterwards."""
    plain = redis.Redis.from_url(shared_url)
    yield plain
    leftovers = list(plain.scan_iter(match=f"{prefix}*"))
    if leftovers:
        plain.unlink(*leftovers)
    plain.close()
    assert leftovers == []


@pytest.fixture
def redis_cache(shared_url: str, prefix: str, client: redis.Redis) -> Iterator[Cache]:
    cache = Cache([MemoryBackend(), RedisBackend(shared_url, prefix)])
    yield cache
    cache.clear()
    cache.reset_stats()
    cache.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def outage_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        record.name == "incidex.cache"
        and record.levelno == logging.WARNING
        and "unavailable" in record.getMessage()
        for record in caplog.records
    )


def test_values_round_trip_through_redis_only(shared_url: str, prefix: str, client: Any) -> None:
    cache = Cache([RedisBackend(shared_url, prefix)])
    calls: list[Any] = []

    @cached(cache, namespace="calls", version="1", model="m")
    def echo(value: Any) -> Any:
        calls.append(value)
        return value

    values: list[Any] = [0, "", [], {}, None, False, {"a": [1, 2]}]
    assert [echo(value) for value in values] == values
    assert [echo(value) for value in values] == values
    assert calls == values
    cache.set("raw", "empty", b"")
    assert cache.get("raw", "empty") == b""
    cache.clear()
    cache.reset_stats()
    cache.close()


def test_ttl_is_stored_with_the_value(redis_cache: Cache, prefix: str, client: Any) -> None:
    redis_cache.set("n", "short", b"v", ttl_seconds=30)
    redis_cache.set("n", "default", b"v")
    assert 29_000 < client.pttl(f"{prefix}:v:n:short") <= 30_000
    assert client.pttl(f"{prefix}:v:n:default") > 29 * 24 * 3600 * 1000


def test_hit_in_redis_fills_memory(redis_cache: Cache, shared_url: str, prefix: str) -> None:
    redis_cache.set("embed", "k", b"vector")
    other_process = Cache([MemoryBackend(), RedisBackend(shared_url, prefix)])
    first = other_process.lookup("embed", "k")
    second = other_process.lookup("embed", "k")
    assert first is not None and first.tier == "redis" and first.value == b"vector"
    assert second is not None and second.tier == "memory"
    other_process.close()


def test_clear_namespace_scans_only_this_prefix_and_namespace(
    redis_cache: Cache, prefix: str, client: Any
) -> None:
    neighbour = f"{prefix}-neighbour:v:embed:k"
    client.set(neighbour, b"not ours")
    try:
        for index in range(1500):
            redis_cache.set("embed", f"k{index}", b"v")
        redis_cache.set("similar", "k", b"v")
        assert redis_cache.clear("embed") == 1500
        assert list(client.scan_iter(match=f"{prefix}:v:embed:*")) == []
        assert redis_cache.get("similar", "k") == b"v"
        assert client.get(neighbour) == b"not ours"
    finally:
        client.unlink(neighbour)


def test_stats_are_shared_through_a_hash(
    redis_cache: Cache, shared_url: str, prefix: str, client: Any
) -> None:
    redis_cache.set("chat", "k", b"answer", savings=Savings(tokens=40, cost_usd=0.002))
    other_process = Cache([MemoryBackend(), RedisBackend(shared_url, prefix)])
    for _ in range(3):
        assert other_process.get("chat", "k") == b"answer"
    other_process.close()
    shared = redis_cache.stats().shared
    assert shared is not None
    assert shared.hits == 3 and shared.tokens_saved == 120
    assert shared.total("sets", scope="redis", namespace="chat") == 1
    assert client.hget(f"{prefix}:stats", "all|chat|hits") == b"3"


def test_calls_survive_outages_and_reconnect(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    retry_seconds = 3.0
    cache = Cache(
        [RedisBackend(private_redis.url, "outage")],
        retry_interval_seconds=retry_seconds,
        clock=clock,
    )
    calls: list[int] = []

    @cached(cache, namespace="square", version="1", model="m")
    def square(number: int) -> int:
        calls.append(number)
        return number * number

    def run_round() -> list[float]:
        durations = []
        for number in range(10):
            started = time.perf_counter()
            assert square(number) == number * number
            durations.append(time.perf_counter() - started)
        return durations

    with caplog.at_level(logging.INFO, logger="incidex.cache"):
        run_round()
        run_round()
        assert len(calls) == 10 and cache.stats().process.hits == 10
        private_redis.stop()
        down: list[float] = []
        for _ in range(3):
            down += run_round()
            clock.now += retry_seconds + 0.5
        assert len(calls) == 40
        assert statistics.median(down) < 0.3 and max(down) < 1.0
        assert outage_warnings(caplog) == 1
        private_redis.start()
        run_round()
        run_round()
        assert len(calls) == 50 and cache.stats().process.hits == 20
        assert sum("is back" in record.getMessage() for record in caplog.records) == 1
        private_redis.stop()
        clock.now += 10
        run_round()
        assert outage_warnings(caplog) == 2
    assert cache.stats().process.total("errors", scope="redis") == 4
    cache.close()


def test_hung_server_costs_one_timeout_then_is_skipped(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    cache = Cache([RedisBackend(private_redis.url, "hung")], clock=clock)
    cache.set("n", "k", b"v")
    private_redis.pause()
    try:
        durations = []
        with caplog.at_level(logging.WARNING, logger="incidex.cache"):
            for _ in range(20):
                started = time.perf_counter()
                assert cache.get("n", "k") is None
                assert cache.set("n", "other", b"v") is False
                durations.append(time.perf_counter() - started)
        assert durations[0] < 1.5 and statistics.median(durations) < 0.05
        assert outage_warnings(caplog) == 1
    finally:
        private_redis.resume()
    clock.now += 10
    assert cache.get("n", "k") == b"v"
    cache.close()


def test_restart_between_calls_is_not_an_outage(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache([RedisBackend(private_redis.url, "restart")])
    cache.set("n", "k", b"v")
    assert cache.get("n", "k") == b"v"
    private_redis.stop()
    private_redis.start()
    with caplog.at_level(logging.WARNING, logger="incidex.cache"):
        assert cache.get("n", "k") is None  # the private server keeps nothing across restarts
        assert cache.set("n", "k", b"again") is True
        assert cache.get("n", "k") == b"again"
    assert outage_warnings(caplog) == 0
    cache.close()
