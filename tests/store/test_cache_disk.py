"""The on-disk tier: survives restarts, shared by processes, never unpickles, fails soft."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import diskcache
import pytest

from store.cache import Cache, Savings, cached
from store.cache.backends import MemoryBackend
from store.cache.disk import DiskBackend


class Planted:
    """Unpickling this touches a file: proof that a planted pickle was (or was not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def counting(cache: Cache) -> tuple[Any, list[Any]]:
    """A cached function returning its argument, and the list of arguments it really ran with."""
    calls: list[Any] = []

    @cached(cache, namespace="calls", version="1", model="m")
    def echo(value: Any) -> Any:
        calls.append(value)
        return value

    return echo, calls


def test_clear_namespace_on_disk_leaves_other_namespaces(tmp_path: Path) -> None:
    cache = Cache([DiskBackend(tmp_path / "cache")])
    for namespace in ("embed", "similar"):
        for index in range(3):
            cache.set(namespace, f"k{index}", b"v")
    assert cache.clear("embed") == 3
    assert cache.get("embed", "k0") is None and cache.get("similar", "k0") == b"v"
    cache.clear()
    assert cache.get("similar", "k0") is None
    cache.close()


def test_disk_cache_survives_a_new_instance(tmp_path: Path) -> None:
    first = Cache([MemoryBackend(), DiskBackend(tmp_path / "cache")])
    first.set("embed", "k", b"vector bytes")
    first.close()
    second = Cache([MemoryBackend(), DiskBackend(tmp_path / "cache")])
    entry = second.lookup("embed", "k")
    assert entry is not None and entry.value == b"vector bytes" and entry.tier == "disk"
    again = second.lookup("embed", "k")
    assert again is not None and again.tier == "memory"
    second.close()


def test_disk_ttl_expires(tmp_path: Path) -> None:
    cache = Cache([DiskBackend(tmp_path / "cache")])
    cache.set("n", "k", b"v", ttl_seconds=0.5)
    assert cache.get("n", "k") == b"v"
    time.sleep(0.6)
    assert cache.get("n", "k") is None
    cache.close()


def test_disk_cache_never_unpickles_planted_values_or_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "unpickled"
    backend = DiskBackend(tmp_path / "cache")
    cache = Cache([backend])
    cache.set("n", "small", b"mine")
    planted = diskcache.Cache(str(tmp_path / "cache" / "values"))  # the default, pickling Disk
    planted.set("n:small", Planted(marker))
    planted.set("n:large", [Planted(marker), "x" * 100_000])
    stats_planted = diskcache.Cache(str(tmp_path / "cache" / "stats"))
    stats_planted.set(Planted(marker), 1)
    stats_planted.set("all|n|hits", pickle.dumps(Planted(marker)))
    planted.close()
    stats_planted.close()
    with caplog.at_level(logging.WARNING, logger="incidex.cache"):
        assert cache.get("n", "small") is None
        assert cache.get("n", "large") is None
        shared = cache.stats().shared
    assert not marker.exists()
    assert shared is not None and shared.total("hits", namespace="n") == 0
    assert cache.stats().process.total("errors", scope="disk") == 2
    assert sum("refused" in record.getMessage() for record in caplog.records) == 2
    cache.set("n", "small", b"mine again")
    assert cache.get("n", "small") == b"mine again"
    cache.close()


def test_broken_disk_is_an_outage_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    cache = Cache([MemoryBackend(), DiskBackend(tmp_path / "a-file" / "cache")])
    echo, calls = counting(cache)
    with caplog.at_level(logging.WARNING, logger="incidex.cache"):
        assert [echo(1), echo(1), echo(2)] == [1, 1, 2]
    assert calls == [1, 2]
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert cache.stats().tiers[1].available is False


def test_disk_cache_is_shared_by_concurrent_processes(tmp_path: Path) -> None:
    cache = Cache([MemoryBackend(), DiskBackend(tmp_path / "cache")])
    cache.set("chat", "k", b"answer", savings=Savings(tokens=50, cost_usd=0.001))
    cache.flush_stats()
    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from pathlib import Path\n"
        "from store.cache import Cache\n"
        "from store.cache.backends import MemoryBackend\n"
        "from store.cache.disk import DiskBackend\n"
        f"backend = DiskBackend(Path({str(tmp_path / 'cache')!r}))\n"
        "cache = Cache([MemoryBackend(), backend], stats_flush_seconds=0)\n"
        "worker = sys.argv[1]\n"
        "for index in range(50):\n"
        "    cache.set('chat', f'{worker}-{index}', worker.encode())\n"
        "    assert cache.get('chat', f'{worker}-{index}') == worker.encode()\n"
        "assert [cache.get('chat', 'k') for _ in range(3)] == [b'answer'] * 3\n"
        "cache.close()\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script, name], cwd=root) for name in ("a", "b")
    ]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    reader = Cache([DiskBackend(tmp_path / "cache")])
    assert all(
        reader.get("chat", f"{name}-{i}") == name.encode() for name in "ab" for i in range(50)
    )
    reader.close()
    shared = cache.stats().shared
    assert shared is not None
    # Each worker hits its own 50 values and 'k' three times; the reader hits all 100 values.
    assert shared.hits == 2 * (50 + 3) + 100 and shared.tokens_saved == 2 * 3 * 50
    assert shared.cost_usd_saved == Decimal("0.006")
    assert shared.total("sets", scope="disk", namespace="chat") == 1 + 2 * 50
    cache.reset_stats()
    after = cache.stats().shared
    assert after is not None and after.hits == 0
    cache.close()
