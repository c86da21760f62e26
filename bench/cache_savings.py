"""What the cache saves: embed the same 1,000 texts twice through an OpenAI-compatible server.

    python bench/cache_savings.py [--texts 1000] [--redis redis://127.0.0.1:6379/0]

The server is the test suite's real HTTP server on 127.0.0.1; the embedder is the one
incidex uses for `openai:<model>`. Prints requests, tokens and dollars for a cold pass and
a warm pass, per cache configuration, and the time each pass took.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.cache import make_cache  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.vectors.service import VectorService  # noqa: E402
from tests.support.openai_server import OpenAIServer  # noqa: E402

WORDS = ("phishing invoice macro ransomware lockbit beacon cobalt strike exfiltration bucket "
         "public exposure credential stuffing vpn exploit insider usb payroll dns tunnel").split()


def texts(count: int) -> list[str]:
    rng = random.Random(7)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) + f" case {n}" for n in range(count)]


def run(label: str, settings: Settings, server: OpenAIServer, items: list[str]) -> None:
    cache = make_cache(settings, prefix=f"bench{uuid.uuid4().hex[:8]}")
    service = VectorService(settings, engine=None, cache_provider=lambda: cache)  # type: ignore[arg-type]
    rows = []
    for name in ("cold", "warm"):
        server.reset_counts()
        started = time.perf_counter()
        for start in range(0, len(items), 100):
            service.embed_texts(items[start : start + 100])
        elapsed = time.perf_counter() - started
        rows.append((name, server.embedding_requests, server.embedding_tokens, elapsed))
    stats = cache.stats()
    totals = stats.shared if stats.shared is not None else stats.process
    print(f"{label}:")
    for name, requests, tokens, elapsed in rows:
        print(f"  {name} pass: {requests:4d} requests, {tokens:7,d} tokens, {elapsed:6.2f} s")
    print(f"  saved by hits: {totals.tokens_saved:,} tokens, ${totals.cost_usd_saved:.6f}, "
          f"hit rate {totals.hit_rate() or 0:.1%}")
    cache.clear()
    cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    items = texts(args.texts)
    with OpenAIServer(dimension=1536) as server, tempfile.TemporaryDirectory() as scratch:
        base = dict(embedder="openai:text-embedding-3-small", openai_base_url=server.base_url,
                    openai_api_key="bench", data_dir=Path(scratch))
        run("memory -> disk cache", Settings(**base), server, items)
        try:
            run("memory -> Redis", Settings(**base, redis_url=args.redis), server, items)
        except Exception as error:  # noqa: BLE001 - the bench reports and goes on
            print(f"memory -> Redis: skipped ({error})")


if __name__ == "__main__":
    main()
