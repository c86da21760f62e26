"""Cache hit latency per tier, and what a call costs when Redis is down; prints a table.

Run: .venv/bin/python bench/cache_latency.py [--gets 10000] [--redis-url redis://127.0.0.1:6379/0]
Baselines measured here: a dict lookup, a bare diskcache get, a bare redis-py GET, and the
seed's way of calling a down Redis (redis-py defaults: retries with back-off).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import diskcache  # noqa: E402
import numpy as np  # noqa: E402
import redis  # noqa: E402

from store.cache import JSON_CODEC, VECTOR_CODEC, Cache, cached  # noqa: E402
from store.cache.backends import Backend, MemoryBackend, RedisBackend  # noqa: E402
from store.cache.disk import DiskBackend  # noqa: E402

KEYS = [f"k{index:03d}" for index in range(100)]


def timings_us(call: Callable[[str], object], count: int) -> list[float]:
    """Microseconds of count calls, cycling over KEYS."""
    durations = []
    for index in range(count):
        key = KEYS[index % len(KEYS)]
        started = time.perf_counter_ns()
        call(key)
        durations.append((time.perf_counter_ns() - started) / 1000)
    return durations


def summary(durations: list[float]) -> tuple[float, float]:
    """(median, p99) of durations."""
    ordered = sorted(durations)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def payloads() -> dict[str, tuple[bytes, object, object]]:
    """name -> (raw bytes, decorated function result, codec) for each payload measured."""
    record = {"summary": "x" * 1400, "verdict": "benign", "score": 0.25}
    vector = np.random.default_rng(7).random(384, dtype=np.float32)
    return {
        "1.5 KB JSON": (JSON_CODEC.encode(record), record, JSON_CODEC),
        "384 x float32": (VECTOR_CODEC.encode(vector), vector, VECTOR_CODEC),
    }


def bench_cache(name: str, cache: Cache, count: int, rows: list[list[str]]) -> None:
    """Hit latency of get() and of a decorated call (which also decodes) for each payload."""
    for payload_name, (raw, result, codec) in payloads().items():
        for key in KEYS:
            cache.set("bench", key, raw)
        median, p99 = summary(timings_us(lambda key: cache.get("bench", key), count))

        @cached(cache, namespace="bench-fn", version="1", model="m", codec=codec)  # type: ignore[arg-type]
        def produce(key: str, result: object = result) -> object:
            return result

        for key in KEYS:
            produce(key)
        call_median, _ = summary(timings_us(produce, count))
        rows.append([name, payload_name, f"{median:.1f}", f"{p99:.1f}", f"{call_median:.1f}"])
    cache.clear()


def baseline_rows(disk_dir: Path, redis_url: str | None, count: int) -> list[list[str]]:
    """Bare dict, diskcache and redis-py GETs of the 1.5 KB payload."""
    raw = payloads()["1.5 KB JSON"][0]
    table = {key: raw for key in KEYS}
    rows = [["baseline: dict", "1.5 KB JSON", *_fmt(timings_us(table.get, count)), "-"]]
    bare = diskcache.Cache(str(disk_dir / "bare"))
    for key in KEYS:
        bare.set(key, raw)
    rows.append(["baseline: diskcache", "1.5 KB JSON", *_fmt(timings_us(bare.get, count)), "-"])
    bare.close()
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        prefix = f"bench-bare-{uuid.uuid4().hex}"
        try:
            for key in KEYS:
                client.set(f"{prefix}:{key}", raw)
            durations = timings_us(lambda key: client.get(f"{prefix}:{key}"), count)
            rows.append(["baseline: redis-py GET", "1.5 KB JSON", *_fmt(durations), "-"])
        finally:
            client.unlink(*[f"{prefix}:{key}" for key in KEYS])
            client.close()
    return rows


def _fmt(durations: list[float]) -> list[str]:
    median, p99 = summary(durations)
    return [f"{median:.1f}", f"{p99:.1f}"]


def closed_port() -> int:
    """A loopback port nothing listens on: a stopped Redis."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def down_redis_rows(count: int) -> list[list[str]]:
    """Per-call cost of get() against a stopped Redis: breaker on, breaker off, seed defaults."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    rows = []
    for label, retry_seconds in (("breaker open (3 s)", 3.0), ("every call tries", 0.0)):
        cache = Cache([RedisBackend(url, "bench-down")], retry_interval_seconds=retry_seconds)
        durations = timings_us(partial(cache.get, "bench"), count)
        rows.append([f"down Redis: {label}", "get", *_fmt(durations), "-"])
        cache.close()
    seed_client = redis.Redis.from_url(url)  # redis-py defaults, as the seed used it
    started = time.perf_counter()
    with contextlib.suppress(redis.exceptions.RedisError):
        seed_client.get("bench")
    seed_us = (time.perf_counter() - started) * 1e6
    rows.append(["baseline: seed client, down", "get (1 call)", f"{seed_us:.0f}", "-", "-"])
    return rows


def main() -> None:
    """Measure every configuration and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gets", type=int, default=10_000, help="gets per measurement")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    options = parser.parse_args()
    count = options.gets
    work_dir = Path(tempfile.mkdtemp(prefix="incidex-bench-cache-"))
    prefix = f"bench-{uuid.uuid4().hex}"
    redis_url = options.redis_url if _answers(options.redis_url) else None
    rows: list[list[str]] = []
    try:
        configs: list[tuple[str, Callable[[], list[Backend]]]] = [
            ("memory", lambda: [MemoryBackend()]),
            ("disk", lambda: [DiskBackend(work_dir / "disk")]),
            ("memory -> disk", lambda: [MemoryBackend(), DiskBackend(work_dir / "tiered")]),
        ]
        if redis_url:
            configs += [
                ("redis", lambda: [RedisBackend(redis_url, prefix)]),
                ("memory -> redis", lambda: [MemoryBackend(), RedisBackend(redis_url, prefix)]),
            ]
        for name, build in configs:
            cache = Cache(build())
            try:
                bench_cache(name, cache, count, rows)
            finally:
                cache.reset_stats()
                cache.close()
        rows += baseline_rows(work_dir, redis_url, count)
        rows += down_redis_rows(min(count, 2000))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print_table(rows, count, redis_url)


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def print_table(rows: list[list[str]], count: int, redis_url: str | None) -> None:
    """Print the rows as an aligned table."""
    header = ["configuration", "payload", "get median us", "get p99 us", "cached call median us"]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    print(f"cache hit latency, {count} gets per row, Python {sys.version.split()[0]}")
    if redis_url is None:
        print("(Redis not answering: Redis rows skipped)")
    for row in [header, ["-" * width for width in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
