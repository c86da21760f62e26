"""An embedder calling an OpenAI-compatible /v1/embeddings API (OpenAI, vLLM, Ollama, LM Studio)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import SecretStr

from store.redact import guard_library_logs, redact_url, safe_reason, secrets_of_url
from store.vectors.embedder import (
    EmbedCall,
    EmbedderUnavailable,
    EmbedResult,
    normalise_rows,
    utc_now,
)

REMOTE_BATCH_SIZE = 256
# What a server says about a failed call is shown at most this long: its words are untrusted.
SERVER_REASON_CHARS = 100
KNOWN_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """Embeds through an OpenAI-compatible /v1/embeddings API (OpenAI, vLLM, Ollama, LM Studio).

    Each request becomes an EmbedCall with the token count the server reported (0 when it
    reports none).  Empty texts are not sent and embed as zero rows.  Error messages name
    the server by its redacted URL and never hold the key, a URL password or more than a
    short, printable excerpt of what the server said.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        timeout_seconds: float = 20.0,
        max_retries: int = 1,
        batch_size: int = REMOTE_BATCH_SIZE,
    ) -> None:
        from langchain_openai import OpenAIEmbeddings

        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key or "unused")
        self.name = f"openai:{model}"
        self.remote = True
        self.model = model
        self._where = redact_url(base_url) if base_url else "the OpenAI API"
        self._secrets = [*([key.get_secret_value()] if api_key else []),
                         *secrets_of_url(base_url)]
        guard_library_logs(self._secrets)
        self._timeout_seconds = timeout_seconds
        self._batch_size = batch_size
        self._dimension: int | None = KNOWN_OPENAI_DIMENSIONS.get(model)
        self._probe_calls: list[EmbedCall] = []
        self._client: Any = OpenAIEmbeddings(
            model=model,
            base_url=base_url,
            api_key=key,
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
                raise self._unavailable(
                    f"the server returned {vector.shape[0]} dimensions, "
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
            raise self._unavailable(
                f"no answer from {self._where} within {self._timeout_seconds:g} s") from error
        except openai.APIStatusError as error:
            detail = error.body.get("message") if isinstance(error.body, dict) else None
            reason = f": {self._quote(detail, SERVER_REASON_CHARS)}" if detail else ""
            raise self._unavailable(
                f"HTTP {error.status_code} from {self._where}{reason}") from error
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error
            raise self._unavailable(
                f"cannot reach {self._where}: {self._quote(cause)}") from error
        except (openai.OpenAIError, ValueError) as error:
            raise self._unavailable(self._quote(error)) from error
        end = utc_now()
        vectors = self._vectors(response, len(batch))
        if self._dimension is None:
            self._dimension = vectors.shape[1]
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        return vectors, EmbedCall(raw.request_id, self.model, tokens, start, end)

    def _quote(self, words: object, limit: int = SERVER_REASON_CHARS) -> str:
        """Untrusted words (a server's, a library's) cut to one short printable line."""
        return safe_reason(words, limit, self._secrets)

    def _unavailable(self, message: str) -> EmbedderUnavailable:
        """The error to raise: named after this embedder, scrubbed once more as a whole."""
        return EmbedderUnavailable(safe_reason(f"{self.name}: {message}", 300, self._secrets))

    def _vectors(self, response: Any, expected: int) -> np.ndarray:
        """The embeddings of a response ordered by index, checked for shape."""
        try:
            items = sorted(response.data, key=lambda item: item.index)
            vectors = np.array([item.embedding for item in items], dtype=np.float64)
        except (AttributeError, TypeError, ValueError) as error:
            raise self._unavailable(
                f"malformed response from {self._where}: {self._quote(error)}") from error
        if vectors.ndim != 2 or vectors.shape[0] != expected or vectors.shape[1] == 0:
            raise self._unavailable(
                f"malformed response from {self._where}: "
                f"{vectors.shape[0] if vectors.ndim else 0} vectors for {expected} texts"
            )
        if not np.isfinite(vectors).all():
            raise EmbedderUnavailable(
                f"{self.name}: malformed response from {self._where}: null, NaN or infinite "
                "values in a vector")
        return vectors
