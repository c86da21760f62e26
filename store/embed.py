"""Embedders that turn incident text into unit vectors: an offline default and OpenAI-compatible."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from store.errors import StoreError

if TYPE_CHECKING:
    from store.settings import Settings

DEFAULT_EMBEDDER = "hashed-concepts-v1"
OFFLINE_BATCH_SIZE = 1024
REMOTE_BATCH_SIZE = 256
KNOWN_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}

# Security concepts drawn from the VERIS action and asset varieties and their usual news wording.
# Each word (lower case, as written) also counts towards its concept, so incidents that say the
# same thing in different words meet.  Changing this table changes vectors: bump the version.
class EmbedderUnavailable(StoreError):
    """A remote embedder failed (network, timeout, HTTP error or a malformed response)."""


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """One remote embedding request, recorded as a run_metadata row of kind 'embedding'."""

    request_id: str | None
    model_name: str
    input_tokens: int
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """Unit vectors (float32, one row per text; a text with no words gives a zero row)."""

    vectors: np.ndarray
    calls: list[EmbedCall]


class Embedder(Protocol):
    """Turns texts into unit vectors; its name is stored with every vector it makes."""

    name: str
    remote: bool  # whether embed() makes paid or slow calls worth caching

    @property
    def dimension(self) -> int:
        """The length of every vector this embedder makes."""
        ...

    def embed(self, texts: list[str]) -> EmbedResult:
        """Embed texts in order, batching internally."""
        ...


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length, leaving zero rows at zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0.0, norms, 1.0)


def _utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _one_line(text: str, limit: int = 200) -> str:
    """Collapse a message to one line of at most limit characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class OpenAIEmbedder:
    """Embeds through an OpenAI-compatible /v1/embeddings API (OpenAI, vLLM, Ollama, LM Studio).

    Each request becomes an EmbedCall with the token count the server reported (0 when it
    reports none).  Empty texts are not sent and embed as zero rows.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_seconds: float = 20.0,
        max_retries: int = 1,
        batch_size: int = REMOTE_BATCH_SIZE,
    ) -> None:
        from langchain_openai import OpenAIEmbeddings
        from pydantic import SecretStr

        self.name = f"openai:{model}"
        self.remote = True
        self.model = model
        self._where = base_url or "the OpenAI API"
        self._timeout_seconds = timeout_seconds
        self._batch_size = batch_size
        self._dimension: int | None = KNOWN_OPENAI_DIMENSIONS.get(model)
        self._probe_calls: list[EmbedCall] = []
        self._client: Any = OpenAIEmbeddings(
            model=model,
            base_url=base_url,
            api_key=SecretStr(api_key or "unused"),
            check_embedding_ctx_length=False,
            timeout=timeout_seconds,
            max_retries=max_retries,
        ).client

    @property
    def dimension(self) -> int:
        """The vector size: from a known table, or asked of the server once."""
        if self._dimension is None:
            vectors, call = self._request(["dimension probe"])
            self._probe_calls.append(call)
            self._dimension = vectors.shape[1]
        return self._dimension

    def embed(self, texts: list[str]) -> EmbedResult:
        """Embed texts in batches of batch_size requests; raise EmbedderUnavailable on failure."""
        calls, self._probe_calls = self._probe_calls, []
        wanted = [index for index, text in enumerate(texts) if text.strip()]
        rows: dict[int, np.ndarray] = {}
        for start in range(0, len(wanted), self._batch_size):
            indices = wanted[start : start + self._batch_size]
            vectors, call = self._request([texts[index] for index in indices])
            calls.append(call)
            rows.update(zip(indices, vectors, strict=True))
        matrix = np.zeros((len(texts), self.dimension), np.float32)
        for index, vector in rows.items():
            if vector.shape[0] != self.dimension:
                raise EmbedderUnavailable(
                    f"{self.name}: the server returned {vector.shape[0]} dimensions, "
                    f"expected {self.dimension}"
                )
            matrix[index] = vector
        return EmbedResult(_normalise_rows(matrix).astype(np.float32), calls)

    def _request(self, batch: list[str]) -> tuple[np.ndarray, EmbedCall]:
        """Send one request; return its vectors in input order and its EmbedCall."""
        import openai

        start = _utc_now()
        try:
            raw = self._client.with_raw_response.create(
                input=batch, model=self.model, encoding_format="float"
            )
            response = raw.parse()
        except openai.APITimeoutError as error:
            raise EmbedderUnavailable(
                f"{self.name}: no answer from {self._where} within {self._timeout_seconds:g} s"
            ) from error
        except openai.APIStatusError as error:
            detail = error.body.get("message") if isinstance(error.body, dict) else None
            raise EmbedderUnavailable(_one_line(
                f"{self.name}: HTTP {error.status_code} from {self._where}"
                + (f": {detail}" if detail else "")
            )) from error
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error
            raise EmbedderUnavailable(
                _one_line(f"{self.name}: cannot reach {self._where}: {cause}")
            ) from error
        except (openai.OpenAIError, ValueError) as error:
            raise EmbedderUnavailable(_one_line(f"{self.name}: {error}")) from error
        end = _utc_now()
        vectors = self._vectors(response, len(batch))
        if self._dimension is None:
            self._dimension = vectors.shape[1]
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        return vectors, EmbedCall(raw.request_id, self.model, tokens, start, end)

    def _vectors(self, response: Any, expected: int) -> np.ndarray:
        """The embeddings of a response ordered by index, checked for shape."""
        try:
            items = sorted(response.data, key=lambda item: item.index)
            vectors = np.array([item.embedding for item in items], dtype=np.float64)
        except (AttributeError, TypeError, ValueError) as error:
            raise EmbedderUnavailable(
                _one_line(f"{self.name}: malformed response from {self._where}: {error}")
            ) from error
        if vectors.ndim != 2 or vectors.shape[0] != expected or vectors.shape[1] == 0:
            raise EmbedderUnavailable(
                f"{self.name}: malformed response from {self._where}: "
                f"{vectors.shape[0] if vectors.ndim else 0} vectors for {expected} texts"
            )
        return vectors


def make_embedder(settings: Settings) -> Embedder:
    """The embedder settings.embedder names: the offline default or 'openai:<model>'."""
    name = settings.embedder
    if name == DEFAULT_EMBEDDER:
        from store.embed_offline import HashedConceptEmbedder

        return HashedConceptEmbedder()
    if name.startswith("openai:") and name.removeprefix("openai:").strip():
        return OpenAIEmbedder(
            model=name.removeprefix("openai:").strip(),
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_seconds=settings.openai_timeout_seconds,
        )
    raise StoreError(f"unknown embedder {name!r}: use {DEFAULT_EMBEDDER!r} or 'openai:<model>'")
