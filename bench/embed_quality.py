"""Retrieval quality of similar search on VCDB incidents and ATT&CK procedures, against
TF-IDF and BM25, and the cost of extracting indicators at save time.

Leave-one-out on ../shared/data/vcdb_dev.jsonl and attack_dev.jsonl: every record queries all
the others and a result is relevant when it shares the query's primary_label (queries whose
label occurs once are skipped).  Prints P@5, recall@10 (capped by class size), MRR, nDCG@10.

The first row is the product's real path: a fresh store filled with the file's records through
Store.save_many (text as the incident description, a constant title, an empty analysis), then
Store.similar(incident_id=...) for every record, uncached: vector and lexical rankings fused,
indicators first.  "vector only" is the default embedder's cosine ranking alone (the ranking
before fusion).  The files are only read to measure: nothing here is fitted on them except the
TF-IDF and BM25 baselines, which are fitted on the file by definition.

    .venv/bin/python bench/embed_quality.py             # both files side by side
    .venv/bin/python bench/embed_quality.py --model all-minilm-l6-v2  # also a models-extra store
    .venv/bin/python bench/embed_quality.py --variants  # also the embedder variants on VCDB
    .venv/bin/python bench/embed_quality.py --ann 200000   # also IVF recall@10 vs exact
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIRECTORY = REPO_ROOT / ".." / "shared" / "data"
VCDB_FILE = DATA_DIRECTORY / "vcdb_dev.jsonl"
ATTACK_FILE = DATA_DIRECTORY / "attack_dev.jsonl"

EmbedFunction = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True, slots=True)
class Quality:
    """Mean retrieval metrics over the queries of one leave-one-out run."""

    precision_at_5: float
    recall_at_10: float
    mrr: float
    ndcg_at_10: float
    queries: int


def ranked_relevance(vectors: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Relevance flags of every other item ranked by cosine (ties by position), per query.

    Returns (flags, relevant_counts) for the queries whose label occurs more than once:
    flags[q, r] says whether the item at rank r shares query q's label.
    """
    label_array = np.array(labels)
    sizes = Counter(labels)
    scores = np.asarray(vectors, np.float64) @ np.asarray(vectors, np.float64).T
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :-1]
    flags = label_array[order] == label_array[:, None]
    kept = np.array([sizes[label] > 1 for label in labels])
    counts = np.array([sizes[label] - 1 for label in label_array[kept]])
    return flags[kept], counts


def precision_at_k(flags: np.ndarray, k: int) -> float:
    """Mean share of relevant items among the first k."""
    return float(flags[:, :k].mean()) if len(flags) else 0.0


def recall_at_k(flags: np.ndarray, relevant_counts: np.ndarray, k: int) -> float:
    """Mean share of the reachable relevant items (at most k) found among the first k."""
    if not len(flags):
        return 0.0
    return float((flags[:, :k].sum(axis=1) / np.minimum(k, relevant_counts)).mean())


def mean_reciprocal_rank(flags: np.ndarray) -> float:
    """Mean of 1 / rank of the first relevant item (0 for a query with none)."""
    if not len(flags):
        return 0.0
    found = flags.any(axis=1)
    return float(np.where(found, 1.0 / (flags.argmax(axis=1) + 1), 0.0).mean())


def ndcg_at_k(flags: np.ndarray, relevant_counts: np.ndarray, k: int) -> float:
    """Mean normalised discounted cumulative gain of the first k, with binary gains."""
    if not len(flags):
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    gains = (flags[:, :k] * discounts[: flags[:, :k].shape[1]]).sum(axis=1)
    ideal = np.array([discounts[: min(k, count)].sum() for count in relevant_counts])
    return float((gains / ideal).mean())


def evaluate(vectors: np.ndarray, labels: list[str]) -> Quality:
    """Leave-one-out quality of vectors whose relevance is a shared label."""
    flags, counts = ranked_relevance(vectors, labels)
    return quality_of(flags, counts)


def quality_of(flags: np.ndarray, counts: np.ndarray) -> Quality:
    """The metrics of relevance flags (queries x ranks) and reachable relevant counts."""
    return Quality(
        precision_at_k(flags, 5),
        recall_at_k(flags, counts, 10),
        mean_reciprocal_rank(flags),
        ndcg_at_k(flags, counts, 10),
        len(flags),
    )


def load_vcdb(path: Path) -> tuple[list[str], list[str]]:
    """The text and primary_label of every incident in the file (never the title)."""
    _ids, texts, labels = load_records(path)
    return texts, labels


def load_records(path: Path) -> tuple[list[str], list[str], list[str]]:
    """The id, text and primary_label of every record in the file (never the title)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return ([row["id"] for row in rows], [row["text"] for row in rows],
            [row["primary_label"] for row in rows])


def hashing_ngram(dimension: int) -> EmbedFunction:
    """The earlier baseline: hashed word 1-2 grams (English stop words) + char 3-5 grams."""
    from sklearn.feature_extraction.text import HashingVectorizer

    words = HashingVectorizer(ngram_range=(1, 2), stop_words="english", n_features=dimension)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=dimension)

    def embed(texts: list[str]) -> np.ndarray:
        summed = (words.transform(texts) + chars.transform(texts)).toarray()
        return summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)

    return embed


def bm25_scores(texts: list[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of every text against every other (the usual k1=1.2, b=0.75), fitted on the
    file: word unigrams, lower-cased, no stemming."""
    from sklearn.feature_extraction.text import CountVectorizer

    counts = CountVectorizer().fit_transform(texts).tocsc().astype(np.float64)
    documents = counts.shape[0]
    holders = np.diff(counts.indptr)
    idf = np.log(1.0 + (documents - holders + 0.5) / (holders + 0.5))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    weighted = counts.tocoo()
    norm = k1 * (1.0 - b + b * lengths[weighted.row] / lengths.mean())
    values = weighted.data * (k1 + 1.0) / (weighted.data + norm) * idf[weighted.col]
    from scipy.sparse import csr_matrix

    document_side = csr_matrix((values, (weighted.row, weighted.col)), shape=counts.shape)
    query_side = (counts > 0).astype(np.float64).tocsr()
    return np.asarray((query_side @ document_side.T).todense())


def score_relevance(scores: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """ranked_relevance() for a full query x item score matrix instead of vectors."""
    label_array = np.array(labels)
    sizes = Counter(labels)
    scores = np.array(scores, np.float64)
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :-1]
    flags = label_array[order] == label_array[:, None]
    kept = np.array([sizes[label] > 1 for label in labels])
    counts = np.array([sizes[label] - 1 for label in label_array[kept]])
    return flags[kept], counts


def store_relevance(ids: list[str], texts: list[str], labels: list[str],
                    embedder: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Relevance flags of the product's own similar search, through a real store (with the
    default embedder, or the one named).

    A model embedder's saves leave the vectors pending: the background filler embeds them
    (timed apart) before the queries. Returns (flags of the first 10 results, reachable
    counts, saves/s, median query ms, filler texts/s or 0 when nothing was pending).
    """
    import tempfile

    from store.schemas import AnalysisIn
    from store.settings import Settings
    from store.store import Store

    sizes = Counter(labels)
    label_of = dict(zip(ids, labels, strict=True))
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(data_dir=Path(directory) / "data",
                            **({"embedder": embedder} if embedder else {}))
        with Store.open(settings) as store:
            records = [(identifier, AnalysisIn.model_validate({
                "incident": {"incident_id": identifier, "title": "Incident",
                             "description": text},
                "analysis": {}, "model_name": "bench"}))
                for identifier, text in zip(ids, texts, strict=True)]
            started = time.perf_counter()
            results = store.save_many(records)
            save_rate = len(records) / (time.perf_counter() - started)
            assert all(result.status == "saved" for result in results)
            fill_rate = 0.0
            if store.pending_vector_count():
                started = time.perf_counter()
                filled = store.fill_pending_vectors()
                fill_rate = filled / (time.perf_counter() - started)
            flags, counts, timings = [], [], []
            for identifier in ids:
                if sizes[label_of[identifier]] < 2:
                    continue
                started = time.perf_counter()
                found = store.search.similar(incident_id=identifier, k=10, use_cache=False)
                timings.append((time.perf_counter() - started) * 1000)
                row = [label_of[hit.incident_id] == label_of[identifier] for hit in found.hits]
                flags.append((row + [False] * 10)[:10])
                counts.append(sizes[label_of[identifier]] - 1)
    return (np.array(flags), np.array(counts), save_rate, statistics.median(timings),
            fill_rate)


def tfidf_fitted(texts_to_fit: list[str]) -> EmbedFunction:
    """TF-IDF fitted on the evaluation file itself (word 1-2 grams, sublinear tf)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)

    def embed(texts: list[str]) -> np.ndarray:
        return vectorizer.fit_transform(texts_to_fit).toarray()

    return embed


def offline(**options: float) -> EmbedFunction:
    """A fresh HashedConceptEmbedder with the given options, as an embed function."""
    from store.vectors.offline import HashedConceptEmbedder

    embedder = HashedConceptEmbedder(**options)  # type: ignore[arg-type]
    return lambda texts: embedder.embed(texts).vectors


def measure(make: Callable[[], EmbedFunction], texts: list[str]) -> tuple[np.ndarray, float, float]:
    """Vectors, cold texts/s (first pass of a fresh embedder) and median warm texts/s of 3."""
    embed = make()
    start = time.perf_counter()
    vectors = embed(texts)
    cold = len(texts) / (time.perf_counter() - start)
    warm = []
    for _ in range(3):
        start = time.perf_counter()
        embed(texts)
        warm.append(len(texts) / (time.perf_counter() - start))
    return np.asarray(vectors, np.float32), cold, statistics.median(warm)


def variants(texts: list[str]) -> list[tuple[str, int, Callable[[], EmbedFunction]]]:
    """(label, dimension, factory) of every embedder compared."""
    return [
        ("hashed-concepts-v1 (default)", 512, lambda: offline()),
        ("  same, 256 dims", 256, lambda: offline(dimension=256)),
        ("  same, 768 dims", 768, lambda: offline(dimension=768)),
        ("  same, no concept features", 512, lambda: offline(concept_weight=0.0)),
        ("  same, no concepts, uncapped rarity", 512,
         lambda: offline(concept_weight=0.0, rarity_cap=12.0, rarity_power=1.0)),
        ("hashed word 1-2 + char 3-5 grams", 512, lambda: hashing_ngram(512)),
        ("TF-IDF fitted on the file (baseline)", 0, lambda: tfidf_fitted(texts)),
    ]


def print_quality_table(texts: list[str], labels: list[str]) -> None:
    """Measure every variant and print one row each."""
    print(f"{len(texts)} incidents; leave-one-out, relevant = same primary_label")
    header = f"{'embedder':40s} {'dim':>5s} {'P@5':>6s} {'R@10':>6s} {'MRR':>6s} {'nDCG10':>6s}"
    print(f"{header} {'cold/s':>8s} {'warm/s':>8s}")
    for label, dimension, factory in variants(texts):
        vectors, cold, warm = measure(factory, texts)
        quality = evaluate(vectors, labels)
        shown = str(dimension or vectors.shape[1])
        print(
            f"{label:40s} {shown:>5s} {quality.precision_at_5:6.3f} {quality.recall_at_10:6.3f} "
            f"{quality.mrr:6.3f} {quality.ndcg_at_10:6.3f} {cold:8.0f} {warm:8.0f}",
            flush=True,
        )
    rng = np.random.default_rng(0)
    floor = evaluate(rng.standard_normal((len(texts), 64)), labels)
    print(f"{'random (floor)':40s} {'64':>5s} {floor.precision_at_5:6.3f}")
    print(f"queries: {floor.queries} (labels occurring once skipped)")


def synthetic_texts(texts: list[str], count: int, seed: int) -> list[str]:
    """Texts made of three random VCDB sentences each, to stand in for a large store."""
    sentences = [part for text in texts for part in re.split(r"(?<=[.!?])\s+", text)]
    sentences = [sentence for sentence in sentences if len(sentence) > 20]
    picks = np.random.default_rng(seed).integers(0, len(sentences), size=(count, 3))
    return [" ".join(sentences[index] for index in row) for row in picks]


def recall_against(truth: np.ndarray, found: np.ndarray) -> float:
    """Share of the exact top-k ids that an approximate search also returned."""
    hits = sum(len(set(row_found) & set(row_truth))
               for row_found, row_truth in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def print_ann_recall(texts: list[str], count: int, queries: int = 500) -> None:
    """Recall@10 of faiss IVF-Flat and HNSW-Flat against exact IndexFlatIP on synthetic texts."""
    import faiss

    from store.vectors.offline import HashedConceptEmbedder

    faiss.omp_set_num_threads(2)
    embedder = HashedConceptEmbedder()
    dimension = embedder.dimension
    start = time.perf_counter()
    base = embedder.embed(synthetic_texts(texts, count, seed=1)).vectors
    query = embedder.embed(synthetic_texts(texts, queries, seed=2)).vectors
    print(f"\nANN check: {count} synthetic texts (3 VCDB sentences each) embedded at "
          f"{(count + queries) / (time.perf_counter() - start):.0f} texts/s")
    exact = faiss.IndexFlatIP(dimension)
    exact.add(base)
    _, truth = exact.search(query, 10)
    nlist = 4096 if count >= 1_000_000 else 1024 if count >= 100_000 else 256
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist,
                             faiss.METRIC_INNER_PRODUCT)
    hnsw = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    for label, index, knob, values in (
        (f"IndexIVFFlat nlist={nlist}", ivf, "nprobe", (16, 32, 64, 128, 256)),
        ("IndexHNSWFlat M=32", hnsw, "efSearch", (32, 64, 128, 256)),
    ):
        start = time.perf_counter()
        if not index.is_trained:
            index.train(base[np.random.default_rng(3).permutation(count)[: 64 * nlist]])
        index.add(base)
        print(f"{label}: built in {time.perf_counter() - start:.1f} s", flush=True)
        for value in values:
            faiss.ParameterSpace().set_index_parameter(index, knob, value)
            start = time.perf_counter()
            _, found = index.search(query, 10)
            per_query_ms = 1000 * (time.perf_counter() - start) / queries
            print(f"  {knob}={value:<4d} recall@10={recall_against(truth, found):.3f} "
                  f"{per_query_ms:.2f} ms/query", flush=True)


def side_by_side(files: list[Path], model: tuple[str, ...] = ()) -> None:
    """The product's similar search and the baselines on each file, one column pair a file;
    also a real store with each embedder named in model (the `models` extra's)."""
    rows: dict[str, list[str]] = {}
    notes = []
    for path in files:
        ids, texts, labels = load_records(path)
        flags, counts, save_rate, query_ms, _fill = store_relevance(ids, texts, labels)
        measured = {"incidex similar (default, real store)": quality_of(flags, counts)}
        notes.append(f"{path.name}: {len(texts)} records saved at {save_rate:.0f}/s, "
                     f"similar median {query_ms:.1f} ms a query")
        for name in model:
            flags, counts, save_rate, query_ms, fill_rate = store_relevance(
                ids, texts, labels, name)
            measured[f"incidex similar ({name})"] = quality_of(flags, counts)
            notes.append(f"{path.name} with {name}: saved (vectors pending) at "
                         f"{save_rate:.1f}/s, filled in the background at {fill_rate:.1f} "
                         f"texts/s, similar median {query_ms:.1f} ms a query")
        vectors, _cold, _warm = measure(lambda: offline(), texts)
        measured["  vector only (hashed-concepts-v1)"] = evaluate(vectors, labels)
        measured["TF-IDF fitted on the file"] = evaluate(tfidf_fitted(texts)(texts), labels)
        measured["BM25 fitted on the file (k1 1.2, b .75)"] = quality_of(
            *score_relevance(bm25_scores(texts), labels))
        rng = np.random.default_rng(0)
        measured["random (floor)"] = evaluate(rng.standard_normal((len(texts), 64)), labels)
        for label, quality in measured.items():
            rows.setdefault(label, []).append(
                f"{quality.precision_at_5:6.3f} {quality.ndcg_at_10:6.3f}")
        print(f"measured {path.name}", flush=True)
    header = "".join(f" {path.stem[:13]:>13s}" for path in files)
    print(f"\n{'':42s}{header}")
    print(f"{'ranking':42s}" + " P@5  nDCG10" * len(files))
    for label, cells in rows.items():
        print(f"{label:42s}" + "".join(f" {cell}" for cell in cells))
    for note in notes:
        print(note)


def print_indicator_cost(files: list[Path]) -> None:
    """The cost of extracting indicators from each record's text, against splitting it into
    words (a floor every save pays), medians of 5 passes in the same process."""
    from store.indicators import indicators_in

    for path in files:
        _ids, texts, _labels = load_records(path)
        costs: dict[str, list[float]] = {"indicators_in": [], "str.split (floor)": []}
        for _ in range(5):
            for label, function in (("indicators_in", indicators_in),
                                    ("str.split (floor)", str.split)):
                started = time.perf_counter()
                for text in texts:
                    function(text)
                costs[label].append((time.perf_counter() - started) / len(texts) * 1000)
        mean_chars = sum(map(len, texts)) / len(texts)
        print(f"{path.name} ({mean_chars:.0f} chars a record): " + ", ".join(
            f"{label} {statistics.median(values):.4f} ms" for label, values in costs.items()))


def main(argv: list[str] | None = None) -> int:
    """Print the side-by-side table, and the variants and ANN checks when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ann", type=int, default=0, metavar="N",
                        help="also measure IVF recall@10 vs exact on N synthetic texts")
    parser.add_argument("--model", action="append", default=[], metavar="EMBEDDER",
                        help="also a real store with this embedder, e.g. all-minilm-l6-v2 or "
                        "hashed-concepts-v1+all-minilm-l6-v2 (the models extra; slow)")
    parser.add_argument("--variants", action="store_true",
                        help="also compare the embedder variants on VCDB")
    args = parser.parse_args(argv)
    files = [path for path in (ATTACK_FILE, VCDB_FILE) if path.is_file()]
    if not files:
        print(f"skipped: {DATA_DIRECTORY.resolve()} has no evaluation data")
        return 0
    sys.path.insert(0, str(REPO_ROOT))
    print("machine shared with other engineers: timings are noisy, compare within one run")
    side_by_side(files, model=tuple(args.model))
    print_indicator_cost(files)
    if not VCDB_FILE.is_file():
        return 0
    texts, labels = load_vcdb(VCDB_FILE)
    if args.variants:
        print_quality_table(texts, labels)
    if args.ann:
        print_ann_recall(texts, args.ann)
    return 0


if __name__ == "__main__":
    sys.exit(main())
