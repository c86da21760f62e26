"""Secrets stay out of reprs, logs and errors; a server's words reach a message only trimmed."""

from __future__ import annotations

import logging
import string
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.errors import StoreUnavailable
from store.ingest.records import validate_record
from store.redact import MASK, redact_url, safe_reason, secrets_of_url
from store.settings import Settings
from store.store import Store
from store.vectors.embedder import EmbedderUnavailable
from store.vectors.remote import SERVER_REASON_CHARS, OpenAIEmbedder
from tests.conftest import make_record
from tests.support.openai_server import OpenAIServer

API_KEY = "sk-test-9f8e7d6c5b4a39281706"
PASSWORD = "pa:ss@w/rd-42"
HOSTILE_BODY = ("\x1b]0;pwned\x07\x1b[31mquota exceeded\x1b[0m\r\nfake: line\u202e" + "A" * 10_000
                + f" key={API_KEY} url=http://bob:{PASSWORD}@proxy")
DROPPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def printable_one_line(message: str) -> bool:
    return all(unicodedata.category(character) not in DROPPED for character in message)


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://alice:s3cret@db.example:5432/incidex",
     "postgresql://alice:***@db.example:5432/incidex"),
    (f"https://bob:{quote(PASSWORD, safe='')}@llm.example/v1", "https://bob:***@llm.example/v1"),
    (f"https://bob:{PASSWORD}@llm.example/v1", "https://bob:***@llm.example/v1"),
    ("https://llm.example/v1?api_key=abc123&model=x#top",
     "https://llm.example/v1?api_key=***&model=x#top"),
    ("redis://:hunter22@cache:6379/0", "redis://:***@cache:6379/0"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("postgresql://postgres@127.0.0.1/test", "postgresql://postgres@127.0.0.1/test"),
    ("nonsense:://u:s3cretpw@x", "***@x"),
])
def test_redact_url_masks_passwords_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


passwords = st.text(string.ascii_letters + string.digits + "!$%&'()+,;=:@/?#[]~.-_",
                    min_size=4, max_size=30)


@given(passwords, st.sampled_from(["https", "postgresql+psycopg", "redis"]))
def test_no_url_password_survives_redaction(password: str, scheme: str) -> None:
    encoded = quote(password, safe="")
    url = f"{scheme}://user:{encoded}@host.example:1234/path?key={encoded}"
    for secret in (password, encoded):
        if secret not in f"{scheme}://user:@host.example:1234/path?key=":
            assert secret not in redact_url(url)
    message = safe_reason(f"failed at {url}; raw {password}", secrets=secrets_of_url(url))
    assert password not in message


secret_text = st.text(string.ascii_letters + string.digits + "-_.:/@", min_size=4, max_size=40)


@given(st.text(max_size=400), secret_text, st.integers(min_value=4, max_value=200))
def test_safe_reason_is_one_short_printable_line_without_the_secret(
    text: str, secret: str, limit: int
) -> None:
    message = safe_reason(text + secret + text, limit, [secret])
    assert len(message) <= limit
    assert printable_one_line(message) and "\n" not in message
    assert secret not in message


def test_settings_keep_the_api_key_and_url_passwords_out_of_repr() -> None:
    settings = Settings(openai_api_key=API_KEY,
                        openai_base_url=f"https://bob:{PASSWORD}@llm.example/v1",
                        database_url="postgresql://alice:s3cret@db/incidex",
                        redis_url="redis://:hunter22@cache:6379/0")
    shown = repr(settings) + str(settings)
    for secret in (API_KEY, PASSWORD, "s3cret", "hunter22"):
        assert secret not in shown
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == API_KEY


def test_a_hostile_server_error_is_trimmed_and_scrubbed(openai_server: OpenAIServer) -> None:
    base_url = openai_server.base_url.replace("http://", f"http://bob:{quote(PASSWORD, safe='')}@")
    embedder = OpenAIEmbedder("test-embedding", base_url=base_url, api_key=API_KEY,
                              max_retries=0)
    openai_server.fail_mode = "error"
    openai_server.error_message = HOSTILE_BODY
    with pytest.raises(EmbedderUnavailable) as raised:
        embedder.embed(["some text"])
    message = str(raised.value)
    assert message.startswith("openai:test-embedding: HTTP 500 from http://bob:***@127.0.0.1:")
    assert "quota exceeded" in message
    assert printable_one_line(message)
    assert len(message) <= 300
    assert message.count("A") <= SERVER_REASON_CHARS
    for secret in (API_KEY, PASSWORD, quote(PASSWORD, safe=""), "pwned\x07"):
        assert secret not in message


def test_an_unreachable_server_error_hides_the_url_password(free_port: int) -> None:
    embedder = OpenAIEmbedder("test-embedding", api_key=API_KEY, max_retries=0,
                              base_url=f"http://bob:{quote(PASSWORD, safe='')}@127.0.0.1:"
                                       f"{free_port}/v1", timeout_seconds=2)
    with pytest.raises(EmbedderUnavailable) as raised:
        embedder.embed(["some text"])
    message = str(raised.value)
    assert "cannot reach http://bob:***@127.0.0.1:" in message
    assert quote(PASSWORD, safe="") not in message and PASSWORD not in message


def test_saving_while_the_embedder_fails_logs_no_secret(
    openai_server: OpenAIServer, isolated_directories: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base_url = openai_server.base_url.replace("http://", f"http://bob:{quote(PASSWORD, safe='')}@")
    settings = Settings(data_dir=isolated_directories, embedder="openai:test-embedding",
                        openai_base_url=base_url, openai_api_key=API_KEY)
    openai_server.fail_mode = "error"
    openai_server.error_message = HOSTILE_BODY
    caplog.set_level(logging.DEBUG)
    with Store.open(settings) as store:
        result = store.save_analysis(validate_record(make_record(), "line 1"), "line 1")
    assert result.status == "saved"
    logged = caplog.text
    assert "HTTP 500" in logged
    for secret in (API_KEY, PASSWORD, quote(PASSWORD, safe="")):
        assert secret not in logged
    assert MASK in logged


def test_a_bad_database_url_is_reported_without_its_password(
    isolated_directories: Path,
) -> None:
    for url in ("postgresql://alice:s3cretpw@db:notaport/x", "nonsense:://alice:s3cretpw@db"):
        with pytest.raises(StoreUnavailable) as raised:
            Store.open(Settings(data_dir=isolated_directories, database_url=url))
        assert "s3cretpw" not in str(raised.value)
        assert "bad database URL" in str(raised.value)


@pytest.fixture
def free_port() -> Any:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
