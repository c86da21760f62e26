"""Embedders: the offline default's vectors and stability, the metrics, and OpenAI over HTTP."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from store.errors import StoreError
from store.settings import Settings
from store.vectors.embedder import (
    DEFAULT_EMBEDDER,
    OFFLINE_BATCH_SIZE,
    EmbedderUnavailable,
)
from store.vectors.offline import HashedConceptEmbedder
from store.vectors.remote import OpenAIEmbedder
from store.vectors.service import make_embedder
from tests.support.openai_server import OpenAIServer

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "An employee laptop with patient records was stolen from a parked car.",
    "A thief took a notebook computer from a vehicle outside the clinic.",
    "Staff clicked a phishing email link and entered their passwords on a fake site.",
    "Letters with account numbers were mailed to the wrong addresses.",
    "",
    "Ransomware encrypted the file server; the attackers demanded bitcoin.",
]


@pytest.fixture(scope="module")
def offline() -> HashedConceptEmbedder:
    """One default offline embedder for the module (its construction loads word frequencies)."""
    return HashedConceptEmbedder()


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    """A local OpenAI-compatible server returning 32-dimensional vectors."""
    with OpenAIServer(dimension=32) as running:
        yield running


def load_bench() -> ModuleType:
    """bench/embed_quality.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("embed_quality", REPO_ROOT / "bench" /
                                                  "embed_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_offline_vectors_are_unit_float32_rows(offline: HashedConceptEmbedder) -> None:
    result = offline.embed(TEXTS)
    assert offline.name == DEFAULT_EMBEDDER == "hashed-concepts-v1"
    assert offline.remote is False
    assert result.vectors.shape == (len(TEXTS), offline.dimension) == (len(TEXTS), 512)
    assert result.vectors.dtype == np.float32
    norms = np.linalg.norm(result.vectors, axis=1)
    assert np.allclose(np.delete(norms, 4), 1.0, atol=1e-5)
    assert norms[4] == 0.0  # an empty text is a zero row, as documented
    assert result.calls == []
    assert offline.embed([]).vectors.shape == (0, 512)


def test_offline_ranks_a_paraphrase_above_other_incidents(offline: HashedConceptEmbedder) -> None:
    vectors = offline.embed(TEXTS).vectors
    scores = vectors[1:] @ vectors[0]
    assert int(np.argmax(scores)) == 0, scores  # the other stolen computer wins


def test_offline_vectors_are_pinned(offline: HashedConceptEmbedder) -> None:
    # Fails when a dependency (wordfreq, snowballstemmer) or the code changes stored vectors:
    # then bump the embedder's version instead of mixing old and new vectors.
    vector = offline.embed(TEXTS[:1]).vectors[0]
    pinned = {456: -0.3633, 469: 0.3462, 309: 0.3296, 31: -0.3111, 163: 0.302, 191: -0.2752}
    assert {index: round(float(vector[index]), 4) for index in pinned} == pinned
    assert int(np.count_nonzero(vector)) == 18


def test_offline_vectors_are_the_same_in_another_process(
    offline: HashedConceptEmbedder, tmp_path: Path
) -> None:
    output = tmp_path / "vectors.npy"
    script = (
        "import json, sys, numpy\n"
        "from store.vectors.offline import HashedConceptEmbedder\n"
        "texts = json.loads(sys.argv[1])\n"
        "numpy.save(sys.argv[2], HashedConceptEmbedder().embed(texts).vectors)\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", script, json.dumps(TEXTS), str(output)],
        cwd=REPO_ROOT, env=environment, check=True, timeout=60,
    )
    assert np.array_equal(np.load(output), offline.embed(TEXTS).vectors)


def test_offline_batches_give_the_same_rows(offline: HashedConceptEmbedder) -> None:
    texts = [f"{TEXTS[index % 6]} case {index} word{index % 97}" for index in range(2100)]
    assert len(texts) > 2 * OFFLINE_BATCH_SIZE
    together = offline.embed(texts).vectors
    one_by_one = np.vstack([offline.embed([text]).vectors for text in texts[::150]])
    assert np.array_equal(together[::150], one_by_one)


def test_importing_embed_leaves_heavy_modules_unloaded() -> None:
    script = (
        "import sys, store.vectors.embedder\n"
        "heavy = {'langchain_openai', 'openai', 'sklearn', 'wordfreq', 'snowballstemmer'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_metric_functions_on_a_hand_made_ranking() -> None:
    bench = load_bench()
    flags = np.array([[1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1]], dtype=bool)
    counts = np.array([2, 1])
    assert bench.precision_at_k(flags, 5) == pytest.approx(0.2)
    assert bench.recall_at_k(flags, counts, 3) == pytest.approx(0.5)
    assert bench.mean_reciprocal_rank(flags) == pytest.approx((1 + 1 / 6) / 2)
    first = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert bench.ndcg_at_k(flags, counts, 3) == pytest.approx(first / 2)


def test_leave_one_out_ranking_skips_single_labels() -> None:
    bench = load_bench()
    angles = np.radians([0, 10, 50, 65, 110])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    flags, counts = bench.ranked_relevance(vectors, ["a", "b", "a", "b", "c"])
    expected = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    assert flags.astype(int).tolist() == expected
    assert counts.tolist() == [1, 1, 1, 1]
    quality = bench.evaluate(vectors, ["a", "b", "a", "b", "c"])
    assert quality.queries == 4
    assert quality.mrr == pytest.approx((1 / 2 + 3 * (1 / 3)) / 4)


def test_openai_embedder_reports_each_request(server: OpenAIServer) -> None:
    embedder = OpenAIEmbedder("test-embedding", base_url=server.base_url, timeout_seconds=5,
                              max_retries=0, batch_size=2)
    assert embedder.remote is True
    assert embedder.dimension == 32  # asked of the server with one probe request
    texts = ["alpha beta", "", "gamma", "delta epsilon zeta"]
    result = embedder.embed(texts)
    assert server.requests == server.embedding_requests == 3
    assert server.embedded_texts == ["dimension probe", "alpha beta", "gamma",
                                     "delta epsilon zeta"]
    assert [call.input_tokens for call in result.calls] == [2, 3, 3]
    assert sum(call.input_tokens for call in result.calls) == server.embedding_tokens
    assert [call.request_id for call in result.calls] == server.request_ids
    for call in result.calls:
        assert call.model_name == "test-embedding"
        assert call.start_time.tzinfo == UTC and call.start_time <= call.end_time
    assert result.vectors.shape == (4, 32) and result.vectors.dtype == np.float32
    for index in (0, 2, 3):
        assert np.allclose(result.vectors[index], server.vector_for(texts[index]), atol=1e-6)
    assert not result.vectors[1].any()
    assert embedder.embed(["omega"]).calls[0].input_tokens == 1  # the probe is reported once


def test_openai_embedder_learns_its_dimension_from_the_first_answer(
    server: OpenAIServer,
) -> None:
    embedder = OpenAIEmbedder("local-model", base_url=server.base_url, max_retries=0)
    assert embedder.embed(["first text"]).vectors.shape == (1, 32)
    assert embedder.dimension == 32
    assert server.requests == 1  # no probe: the answer told the size


def test_openai_embedder_knows_openai_dimensions(server: OpenAIServer) -> None:
    embedder = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url,
                              max_retries=0)
    assert embedder.dimension == 1536
    assert server.requests == 0
    with pytest.raises(EmbedderUnavailable, match="32 dimensions, expected 1536"):
        embedder.embed(["a server with another size"])


@pytest.mark.parametrize("fail_mode", ["error", "timeout", "drop", "malformed"])
def test_openai_failures_raise_embedder_unavailable_quickly(
    server: OpenAIServer, fail_mode: str
) -> None:
    embedder = OpenAIEmbedder("test-embedding", base_url=server.base_url, timeout_seconds=0.5,
                              max_retries=0)
    server.fail_mode = fail_mode  # type: ignore[assignment]
    started = time.monotonic()
    with pytest.raises(EmbedderUnavailable) as raised:
        embedder.embed(["the server will not answer well"])
    assert time.monotonic() - started < 3.0
    message = str(raised.value)
    assert message.startswith("openai:test-embedding: ") and "\n" not in message
    assert server.requests == 1


def test_openai_retries_once_when_asked(server: OpenAIServer) -> None:
    embedder = OpenAIEmbedder("test-embedding", base_url=server.base_url, max_retries=1)
    server.fail_mode = "error"
    with pytest.raises(EmbedderUnavailable, match="HTTP 500 from .*: test failure$"):
        embedder.embed(["retried"])
    assert server.requests == 2


def test_openai_unreachable_server_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedder = OpenAIEmbedder("test-embedding", base_url=f"http://127.0.0.1:{port}/v1",
                              timeout_seconds=1, max_retries=0)
    with pytest.raises(EmbedderUnavailable, match="cannot reach"):
        embedder.embed(["nobody listens"])


def test_make_embedder_follows_settings(server: OpenAIServer) -> None:
    assert isinstance(make_embedder(Settings(embedder=DEFAULT_EMBEDDER)), HashedConceptEmbedder)
    remote = make_embedder(Settings(embedder="openai:test-embedding",
                                    openai_base_url=server.base_url))
    assert remote.name == "openai:test-embedding"
    assert remote.embed(["one two"]).calls[0].input_tokens == 2
    with pytest.raises(StoreError, match="unknown embedder"):
        make_embedder(Settings(embedder="no-such-embedder"))


def test_test_server_answers_chat_like_openai(server: OpenAIServer) -> None:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    server.chat_reply = "four words of reply"
    chat = ChatOpenAI(model="test-chat", base_url=server.base_url, api_key=SecretStr("unused"),
                      max_retries=0, stream_usage=True)
    answer = chat.invoke("two words")
    assert answer.content == "four words of reply"
    assert answer.usage_metadata is not None
    assert (answer.usage_metadata["input_tokens"], answer.usage_metadata["output_tokens"]) == (2, 4)
    streamed = list(chat.stream("three more words"))
    assert "".join(str(chunk.content) for chunk in streamed) == "four words of reply"
    usages = [chunk.usage_metadata for chunk in streamed if chunk.usage_metadata]
    assert sum(usage["input_tokens"] for usage in usages) == 3
    assert server.chat_requests == 2 and server.tokens_served == 2 + 4 + 3 + 4
