"""An embedder calling an OpenAI-compatible /v1/embeddings API (OpenAI, vLLM, Ollama, LM Studio)."""

from __future__ import annotations

from typing import Any

import numpy as np

from store.vectors.embedder import (
    EmbedCall,
    EmbedderUnavailable,
    EmbedResult,
    normalise_rows,
    one_line,
    utc_now,
)

REMOTE_BATCH_SIZE = 256
KNOWN_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


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
        return EmbedResult(normalise_rows(matrix).astype(np.float32), calls)

    def _request(self, batch: list[str]) -> tuple[np.ndarray, EmbedCall]:
        """Send one request; return its vectors in input order and its EmbedCall."""
        import openai

        start = utc_now()
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
            raise EmbedderUnavailable(one_line(
                f"{self.name}: HTTP {error.status_code} from {self._where}"
                + (f": {detail}" if detail else "")
            )) from error
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error
            raise EmbedderUnavailable(
                one_line(f"{self.name}: cannot reach {self._where}: {cause}")
            ) from error
        except (openai.OpenAIError, ValueError) as error:
            raise EmbedderUnavailable(one_line(f"{self.name}: {error}")) from error
        end = utc_now()
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
                one_line(f"{self.name}: malformed response from {self._where}: {error}")
            ) from error
        if vectors.ndim != 2 or vectors.shape[0] != expected or vectors.shape[1] == 0:
            raise EmbedderUnavailable(
                f"{self.name}: malformed response from {self._where}: "
                f"{vectors.shape[0] if vectors.ndim else 0} vectors for {expected} texts"
            )
        if not np.isfinite(vectors).all():
            raise EmbedderUnavailable(
                f"{self.name}: malformed response from {self._where}: null, NaN or infinite "
                "values in a vector")
        return vectors
