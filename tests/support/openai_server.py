"""A small real OpenAI-compatible HTTP server for tests and benchmarks (embeddings and chat)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

import numpy as np

FailMode = Literal["error", "timeout", "drop", "malformed", "not_json"]
ChatReply = str | Callable[[list[dict[str, Any]]], str]


def count_tokens(text: str) -> int:
    """The server's token count of one text: its whitespace-separated words."""
    return len(text.split())


class OpenAIServer:
    """Serves POST /v1/embeddings and /v1/chat/completions on 127.0.0.1 in a thread.

    Vectors are derived from a sha256 of the text, so they are the same on every run.
    Set fail_mode to "error" (HTTP 500 whose body says error_message), "timeout" (answer
    only after timeout_delay_seconds or when the server stops), "drop" (close the connection
    without answering),
    "malformed" (HTTP 200 with a body that is not the OpenAI shape) or "not_json" (HTTP 200
    with an HTML body); None serves normally.

    Chat completions follow the request: with `tools` and a named tool_choice the reply comes
    as that tool call's arguments, otherwise as the message content. Knobs for the chat API:
    fail_status (answer every request with that HTTP status), rate_limited (answer the next
    N chat requests with 429 and a Retry-After of retry_after), reject_json_object (HTTP 400
    for response_format json_object, as LM Studio does), reject_json_schema (HTTP 400 for
    json_schema, as servers without structured output do), omit_usage, finish_reason, and
    chat_delay_seconds (to overlap concurrent calls; max_concurrent_chats records the most
    seen at once). chat_bodies logs every chat request body; chat_seconds the server's own
    handling time of each.
    """

    def __init__(
        self,
        dimension: int = 64,
        chat_reply: ChatReply = '{"summary": "test analysis", "severity": "medium"}',
        timeout_delay_seconds: float = 30.0,
    ) -> None:
        self.dimension = dimension
        self.chat_reply = chat_reply
        self.timeout_delay_seconds = timeout_delay_seconds
        self.fail_mode: FailMode | None = None
        self.fail_status: int | None = None
        self.rate_limited = 0
        self.retry_after = "0"
        self.reject_json_object = False
        self.reject_json_schema = False
        self.omit_usage = False
        self.finish_reason = "stop"
        self.chat_delay_seconds = 0.0
        self.error_message = "test failure"  # what fail_mode "error" says in its body
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset_counts()

    def reset_counts(self) -> None:
        """Zero every counter and forget the logged inputs."""
        with self._lock:
            self.requests = 0
            self.embedding_requests = 0
            self.chat_requests = 0
            self.embedding_tokens = 0
            self.chat_prompt_tokens = 0
            self.chat_completion_tokens = 0
            self.embedded_texts: list[str] = []
            self.request_ids: list[str] = []
            self.chat_bodies: list[dict[str, Any]] = []
            self.chat_seconds: list[float] = []
            self.concurrent_chats = 0
            self.max_concurrent_chats = 0

    @property
    def tokens_served(self) -> int:
        """Every token reported in a successful response's usage (embedding and chat)."""
        return self.embedding_tokens + self.chat_prompt_tokens + self.chat_completion_tokens

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client, e.g. http://127.0.0.1:PORT/v1."""
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def vector_for(self, text: str) -> np.ndarray:
        """The unit vector this server returns for text."""
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self.dimension)
        return vector / np.linalg.norm(vector)

    def start(self) -> OpenAIServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release any delayed answer, stop serving and close the socket."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _next_request(self) -> tuple[str, FailMode | None]:
        """Count a request; return its id and the failure mode in force."""
        with self._lock:
            self.requests += 1
            request_id = f"req-{self.requests:06d}"
            self.request_ids.append(request_id)
            return request_id, self.fail_mode

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """The response to one /v1/embeddings request."""
        raw_input = body.get("input", [])
        inputs = [raw_input] if isinstance(raw_input, str) else list(raw_input)
        texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in inputs]
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = self.vector_for(text)
            embedding: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                if as_base64
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(count_tokens(text) for text in texts)
        with self._lock:
            self.embedding_requests += 1
            self.embedding_tokens += tokens
            self.embedded_texts.extend(texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "test-embedding"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _chat_refusal(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]
                                                            ] | None:
        """The error status, body and headers a chat request gets instead of a reply, if any."""
        response_format = (body.get("response_format") or {}).get("type")
        with self._lock:
            self.chat_bodies.append(body)
            if self.rate_limited > 0:
                self.rate_limited -= 1
                return (429, {"error": {"message": "rate limit reached", "type": "requests"}},
                        {"Retry-After": self.retry_after})
        if self.fail_status is not None:
            return self.fail_status, {"error": {"message": f"test status {self.fail_status}"}}, {}
        if self.reject_json_object and response_format == "json_object":
            return 400, {"error": {"message": "'response_format.type' must be 'json_schema' "
                                              "or 'text'"}}, {}
        if self.reject_json_schema and response_format == "json_schema":
            return 400, {"error": {"message": "response_format json_schema is not supported"}}, {}
        return None

    def _chat(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        """The response to one non-streaming /v1/chat/completions request."""
        messages = list(body.get("messages", []))
        reply = self.chat_reply(messages) if callable(self.chat_reply) else self.chat_reply
        prompt = sum(count_tokens(str(message.get("content") or "")) for message in messages)
        completion = count_tokens(reply)
        with self._lock:
            self.chat_requests += 1
            if not self.omit_usage:
                self.chat_prompt_tokens += prompt
                self.chat_completion_tokens += completion
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        tool = ((body.get("tool_choice") or {}).get("function") or {}).get("name") \
            if isinstance(body.get("tool_choice"), dict) else None
        if body.get("tools") and tool:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call-{request_id}", "type": "function",
                "function": {"name": tool, "arguments": reply}}]}
        response: dict[str, Any] = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body.get("model", "test-chat"),
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        }
        if not self.omit_usage:
            response["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return response


def _stream_events(response: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The server-sent chunks of a streamed chat completion built from a whole response."""
    base = {key: response[key] for key in ("id", "created", "model")}
    base["object"] = "chat.completion.chunk"
    content = response["choices"][0]["message"]["content"]
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    if include_usage and "usage" in response:
        events.append({**base, "choices": [], "usage": response["usage"]})
    return events


def _make_handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one OpenAIServer."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the client's delayed
        # ACK holds the body back about 40 ms on every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Keep test output quiet."""

        def do_POST(self) -> None:
            """Answer an OpenAI API call, or fail the way the server is told to."""
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length)
            request_id, fail_mode = server._next_request()
            if fail_mode == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fail_mode == "timeout" and server._stopping.wait(server.timeout_delay_seconds):
                return
            if fail_mode == "error":
                error = {"error": {"message": server.error_message, "type": "server_error"}}
                self._send_json(500, error, request_id)
                return
            if fail_mode == "malformed":
                self._send_json(200, {"unexpected": True}, request_id)
                return
            if fail_mode == "not_json":
                self._send_raw(200, b"<html>gateway says hello</html>", "text/html", request_id)
                return
            self._route(json.loads(payload or b"{}"), request_id)

        def do_GET(self) -> None:
            """List the models, as some clients ask first."""
            models = [{"id": "test-embedding", "object": "model"}]
            self._send_json(200, {"object": "list", "data": models}, "req-models")

        def _route(self, body: dict[str, Any], request_id: str) -> None:
            path = self.path.rstrip("/")
            if path.endswith("/embeddings"):
                self._send_json(200, server._embeddings(body), request_id)
            elif path.endswith("/chat/completions"):
                self._chat_route(body, request_id)
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}}, request_id)

        def _chat_route(self, body: dict[str, Any], request_id: str) -> None:
            started = time.perf_counter()
            with server._lock:
                server.concurrent_chats += 1
                server.max_concurrent_chats = max(server.max_concurrent_chats,
                                                  server.concurrent_chats)
            try:
                if server.chat_delay_seconds:
                    server._stopping.wait(server.chat_delay_seconds)
                refusal = server._chat_refusal(body)
                if refusal is not None:
                    status, error, headers = refusal
                    self._send_json(status, error, request_id, headers)
                    return
                response = server._chat(body, request_id)
                if body.get("stream"):
                    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                    self._send_stream(_stream_events(response, include_usage), request_id)
                else:
                    self._send_json(200, response, request_id)
            finally:
                with server._lock:
                    server.concurrent_chats -= 1
                    server.chat_seconds.append(time.perf_counter() - started
                                               - server.chat_delay_seconds)

        def _send_json(self, status: int, body: dict[str, Any], request_id: str,
                       headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode("utf-8")
            self._send_raw(status, data, "application/json", request_id, headers)

        def _send_raw(self, status: int, data: bytes, content_type: str, request_id: str,
                      headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", request_id)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(self, events: list[dict[str, Any]], request_id: str) -> None:
            lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
            data = "".join(lines).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", request_id)
            self.end_headers()
            self.wfile.write(data)

    return Handler
