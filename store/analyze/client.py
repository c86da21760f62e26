"""One chat call through langchain-openai with structured output, its usage always kept."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr

from store.analyze.schema import SCHEMA_NAME, json_schema
from store.errors import StoreError
from store.redact import guard_library_logs, redact_url, safe_reason, secrets_of_url

OutputMode = Literal["json_schema", "function_calling", "json_mode"]


class AnalyzeError(StoreError):
    """An analysis could not be made; calls holds the requests the server answered (billed)."""

    def __init__(self, message: str, calls: list[ChatCall] | None = None) -> None:
        super().__init__(message)
        self.calls = calls or []


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One chat request the server answered: its reply, usage (None if not reported), timing."""

    request_id: str | None
    model_name: str
    input_tokens: int | None
    output_tokens: int | None
    start_time: datetime
    end_time: datetime
    finish_reason: str | None
    text: str
    document: Any

    def as_json(self) -> dict[str, Any]:
        """The call as JSON, for the cache."""
        return {"request_id": self.request_id, "model_name": self.model_name,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "start_time": self.start_time.isoformat(), "end_time": self.end_time.isoformat(),
                "finish_reason": self.finish_reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChatCall:
        """A call read back from the cache (its reply text is not kept there)."""
        return cls(data["request_id"], data["model_name"], data["input_tokens"],
                   data["output_tokens"], datetime.fromisoformat(data["start_time"]),
                   datetime.fromisoformat(data["end_time"]), data["finish_reason"], "", None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How HTTP 429 is handled: retries, and the longest Retry-After waited for."""

    attempts: int = 3
    max_wait_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep


class ChatClient:
    """Asks an OpenAI-compatible chat API for one analysis as JSON in a chosen output mode."""

    def __init__(self, model: str, *, base_url: str | None, api_key: SecretStr | str | None,
                 mode: OutputMode, timeout_seconds: float, max_output_tokens: int,
                 retry: RetryPolicy | None = None) -> None:
        from langchain_openai import ChatOpenAI

        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key or "unused")
        self.model = model
        self.mode = mode
        # Errors name the server by its redacted URL and never quote the key or a password.
        self.where = redact_url(base_url) if base_url else "the OpenAI API"
        self._secrets = [*([key.get_secret_value()] if api_key else []),
                         *secrets_of_url(base_url)]
        guard_library_logs(self._secrets)
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        # Retries are ours (429 with Retry-After, within a bound); the SDK's would hide them.
        chat = ChatOpenAI(model=model, base_url=base_url, api_key=key,
                          timeout=timeout_seconds, max_retries=0, temperature=0,
                          max_completion_tokens=max_output_tokens)
        schema = json_schema()
        self._runnable: Any
        if mode == "function_calling":
            tool = {"type": "function", "function": {
                "name": SCHEMA_NAME, "description": "Record the analysis of the incident.",
                "parameters": schema}}
            self._runnable = chat.bind_tools([tool], tool_choice=SCHEMA_NAME)
        elif mode == "json_mode":
            self._runnable = chat.bind(response_format={"type": "json_object"})
        else:
            # A dict schema, not the Pydantic class: LangChain would raise on a reply that
            # fails validation and lose its usage; incidex validates the reply itself.
            self._runnable = chat.bind(response_format={"type": "json_schema", "json_schema": {
                "name": SCHEMA_NAME, "schema": schema, "strict": False}})

    def complete(self, messages: list[tuple[str, str]]) -> ChatCall:
        """One answered call (retrying 429 within the policy); AnalyzeError when there is none."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(messages)
            except _RateLimited as limited:
                wait = limited.retry_after
                if attempt >= self.retry.attempts or wait is None \
                        or wait > self.retry.max_wait_seconds:
                    raise AnalyzeError(self._rate_limit_message(wait, attempt)) from None
                self.retry.sleep(wait)

    def _rate_limit_message(self, wait: float | None, attempt: int) -> str:
        if wait is None:
            return f"{self.model}: HTTP 429 rate limited by {self.where} (no Retry-After)"
        if wait > self.retry.max_wait_seconds:
            return (f"{self.model}: HTTP 429 rate limited by {self.where}: Retry-After {wait:g} s "
                    f"is over the {self.retry.max_wait_seconds:g} s bound "
                    "(INCIDEX_ANALYZE_MAX_RETRY_WAIT_SECONDS)")
        return f"{self.model}: HTTP 429 rate limited by {self.where} after {attempt} attempts"

    def _once(self, messages: list[tuple[str, str]]) -> ChatCall:
        import openai

        start = _utc_now()
        try:
            message = self._runnable.invoke(messages)
        except openai.LengthFinishReasonError as error:
            # The parse path refuses a truncated reply; its usage is still billed.
            return self._from_completion(error.completion, start)
        except openai.RateLimitError as error:
            raise _RateLimited(_retry_after(error.response)) from None
        except openai.APITimeoutError:
            raise AnalyzeError(f"{self.model}: no answer from {self.where} within "
                               f"{self.timeout_seconds:g} s") from None
        except openai.APIConnectionError as error:
            raise AnalyzeError(self._reason(f"{self.model}: cannot reach {self.where}: "
                                         f"{_root_cause(error)}")) from None
        except openai.APIStatusError as error:
            raise AnalyzeError(self._status_message(error)) from None
        except (openai.OpenAIError, AttributeError, KeyError, TypeError, ValueError) as error:
            raise AnalyzeError(self._reason(f"{self.model}: malformed reply from {self.where} "
                                         f"(not an OpenAI chat completion: {error})")) from None
        return self._from_message(message, start)

    def _reason(self, text: str) -> str:
        """One bounded printable line with the key and URL password masked."""
        return safe_reason(text, limit=300, secrets=self._secrets)

    def _status_message(self, error: Any) -> str:
        status = error.status_code
        body = error.body
        detail = body.get("message") if isinstance(body, dict) else None
        if detail:
            detail = safe_reason(detail, limit=100, secrets=self._secrets)
        hint = {
            401: "the API key was refused (INCIDEX_OPENAI_API_KEY)",
            403: "the API key may not use this model (INCIDEX_OPENAI_API_KEY)",
            404: f"no model {self.model!r} or no chat API there "
                 "(--model, INCIDEX_CHAT_MODEL, INCIDEX_OPENAI_BASE_URL)",
            400: f"the server may not support {self.mode} output "
                 "(INCIDEX_ANALYZE_OUTPUT_MODE: json_schema, function_calling or json_mode)",
        }.get(status)
        parts = [f"{self.model}: HTTP {status} from {self.where}", detail, hint]
        return self._reason(": ".join(part for part in parts if part))

    def _from_message(self, message: Any, start: datetime) -> ChatCall:
        usage = getattr(message, "usage_metadata", None) or None
        metadata = getattr(message, "response_metadata", None) or {}
        text, document = self._reply_of(message)
        return ChatCall(
            request_id=metadata.get("id"),
            model_name=self.model,
            input_tokens=None if usage is None else int(usage.get("input_tokens") or 0),
            output_tokens=None if usage is None else int(usage.get("output_tokens") or 0),
            start_time=start, end_time=_utc_now(),
            finish_reason=metadata.get("finish_reason"),
            text=text, document=document,
        )

    def _reply_of(self, message: Any) -> tuple[str, Any]:
        """The reply's text and its JSON (None when it is not JSON)."""
        for call in getattr(message, "tool_calls", None) or []:
            if call.get("name") == SCHEMA_NAME:
                return json.dumps(call.get("args")), call.get("args")
        for call in getattr(message, "invalid_tool_calls", None) or []:
            return str(call.get("args") or ""), None
        content = message.content if isinstance(message.content, str) else json.dumps(
            message.content)
        return content, _json_or_none(content)

    def _from_completion(self, completion: Any, start: datetime) -> ChatCall:
        usage = getattr(completion, "usage", None)
        choice = completion.choices[0] if completion.choices else None
        content = (choice.message.content or "") if choice is not None else ""
        return ChatCall(
            request_id=getattr(completion, "id", None), model_name=self.model,
            input_tokens=None if usage is None else int(usage.prompt_tokens or 0),
            output_tokens=None if usage is None else int(usage.completion_tokens or 0),
            start_time=start, end_time=_utc_now(),
            finish_reason=choice.finish_reason if choice is not None else "length",
            text=content, document=_json_or_none(content),
        )


class _RateLimited(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


def _retry_after(response: Any) -> float | None:
    """Seconds the server asked to wait (Retry-After as seconds or an HTTP date)."""
    headers = getattr(response, "headers", None) or {}
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - _utc_now()).total_seconds())


def _root_cause(error: BaseException) -> str:
    """The innermost cause's message: 'Connection refused' rather than 'Connection error.'."""
    seen: BaseException = error
    while (seen.__cause__ or seen.__context__) is not None and len(str(seen)) < 500:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return str(seen) or type(seen).__name__


def _json_or_none(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("```"):
        # Models in json_mode sometimes fence the object anyway.
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


