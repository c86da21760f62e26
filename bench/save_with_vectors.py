"""The save path with embedding: incidex vs the seed's way (langchain FAISS, save_local per save).

    python bench/save_with_vectors.py [--records 10000] [--history 100000] [--seed-at 10000]

incidex: validated records through Store.save_many (PII stripped, embedded with the
offline default, vector row in the same transaction, run metadata, JSON backup), into an
empty store and into one already holding --history analyses (the rate must not fall).
The seed's way: a langchain-community FAISS store holding --seed-at analyses, then for
each new analysis add_documents([doc]) followed by save_local() of the whole index, the
way the seed persisted after every save. Both use the same embedder and texts.
Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._records import record  # noqa: E402
from store.schemas import AnalysisIn  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402


def incidex_rate(store: Store, start: int, count: int, prefix: str) -> float:
    batch = [(f"r{i}", AnalysisIn.model_validate(record(i, prefix)))
             for i in range(start, start + count)]
    started = time.perf_counter()
    results = store.save_many(batch)
    elapsed = time.perf_counter() - started
    assert all(r.status == "saved" for r in results)
    return count / elapsed


def seed_way_rate(directory: Path, history: int, saves: int) -> float:
    from langchain_community.docstore.document import Document
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings

    from store.vectors.offline import HashedConceptEmbedder
    from store.vectors.text import embedding_text

    embedder = HashedConceptEmbedder()

    class Adapter(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).vectors.tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed([text]).vectors[0].tolist()

    def document(index: int) -> Document:
        item = record(index, "S")
        text = embedding_text(item["incident"]["title"], item["incident"]["description"],
                              item["incident"]["initial_findings"], item["analysis"])
        return Document(page_content=text, metadata={"incident_id": item["incident"]["incident_id"],
                                                     "analysis": item["analysis"]})

    store = FAISS.from_documents([document(i) for i in range(history)], Adapter())
    store.save_local(str(directory))
    started = time.perf_counter()
    for index in range(history, history + saves):
        store.add_documents([document(index)])
        store.save_local(str(directory))
    return saves / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--seed-at", type=int, default=10_000)
    parser.add_argument("--seed-saves", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="incidex-bench-vectors-", dir=os.environ.get("BENCH_DIR")))
    os.environ["INCIDEX_SECRETS_DIR"] = str(root / "secrets")

    with Store.open(Settings(data_dir=root / "empty")) as store:
        empty = incidex_rate(store, 0, args.records, "E")
    print(f"incidex save with vectors, empty store: {empty:8.0f} records/s")

    with Store.open(Settings(data_dir=root / "large")) as store:
        started = time.perf_counter()
        for start in range(0, args.history, 10_000):
            incidex_rate(store, start, min(10_000, args.history - start), "H")
        print(f"(prefilled {args.history:,} analyses in {time.perf_counter() - started:.0f} s)")
        large = [incidex_rate(store, n * args.records, args.records, f"L{n}") for n in range(3)]
    runs = ", ".join(f"{rate:.0f}" for rate in large)
    print(f"incidex save with vectors, {args.history:,}-analysis store: "
          f"{statistics.median(large):8.0f} records/s (runs {runs})")

    with Store.open(Settings(data_dir=root / "at-seed")) as store:
        for start in range(0, args.seed_at, 10_000):
            incidex_rate(store, start, min(10_000, args.seed_at - start), "A")
        at_seed = incidex_rate(store, 0, args.seed_saves, "B")
    seed = seed_way_rate(root / "seed-faiss", args.seed_at, args.seed_saves)
    print(f"at {args.seed_at:,} analyses: incidex {at_seed:.0f} records/s (batch of "
          f"{args.seed_saves}), seed's way {seed:.1f} records/s, ratio {at_seed / seed:.0f}x")
    single = []
    with Store.open(Settings(data_dir=root / "at-seed")) as store:
        for index in range(50):
            started = time.perf_counter()
            store.save_analysis(AnalysisIn.model_validate(record(index, "ONE")))
            single.append(1 / (time.perf_counter() - started))
    one = statistics.median(single)
    print(f"at {args.seed_at:,} analyses, one record per call (own transaction): "
          f"{one:.0f} records/s, ratio {one / seed:.0f}x")


if __name__ == "__main__":
    main()
