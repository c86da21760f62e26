"""Keeping secrets and untrusted text out of messages: masked URLs, bounded reasons.

Invariants: redact_url() never returns a URL's password or a secret-looking query value;
safe_reason() returns one line of at most `limit` characters with no control, format or
line-separator characters, in which no given secret and no URL password appears.
Every error that carries a configured URL or a remote server's words goes through here.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlencode

MASK = "***"
DEFAULT_REASON_CHARS = 160
# Shorter "secrets" would mask ordinary words; URL passwords are masked by position anyway.
MIN_SECRET_CHARS = 4
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# user:password@ inside free text (an error message quoting a URL).
_USERINFO_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):[^\s@]*@")
_SECRET_PARAMETER = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential", re.I)
_SECRET_PARAMETER_IN_TEXT = re.compile(
    r"([?&][^\s=&#]*(?:key|token|secret|passw|pwd|auth|sig|credential)[^\s=&#]*=)[^\s&#]*",
    re.I,
)
# Control (Cc), format (Cf: bidi overrides, zero-width), surrogate, private-use and
# unassigned characters, and line or paragraph separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def redact_url(url: str) -> str:
    """The URL with its password (user:***@) and secret-looking query values masked."""
    parts = _split(url)
    if parts is None:
        # Not a URL we can parse: whatever precedes an '@' may be a password.
        return f"{MASK}@{url.rpartition('@')[2]}" if "@" in url else url
    scheme, userinfo, location, query, fragment = parts
    if userinfo is not None:
        user, colon, _password = userinfo.partition(":")
        location = f"{user}:{MASK}@{location}" if colon else f"{userinfo}@{location}"
    if query is not None:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [(name, MASK if _SECRET_PARAMETER.search(name) else value)
                  for name, value in pairs]
        location += "?" + urlencode(masked, safe="*", quote_via=quote)
    return scheme + location + (f"#{fragment}" if fragment is not None else "")


def secrets_of_url(url: str | None) -> list[str]:
    """The secret parts of a URL (password, secret-looking query values), as written and
    decoded, to mask wherever a message quotes them."""
    parts = _split(url or "")
    if parts is None:
        head = (url or "").rpartition("@")[0]
        return [head, head.rpartition(":")[2]] if head else []
    _scheme, userinfo, _location, query, _fragment = parts
    found: list[str] = []
    if userinfo is not None:
        _user, _colon, password = userinfo.partition(":")
        found += [password, unquote(password)]
    if query is not None:
        found += [value for name, value in parse_qsl(query, keep_blank_values=True)
                  if _SECRET_PARAMETER.search(name)]
    return [secret for secret in found if secret]


def _split(url: str) -> tuple[str, str | None, str, str | None, str | None] | None:
    """scheme://, user info, host and path, query, fragment; None if url has no scheme."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest, fragment = url[match.end() :], None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
    query = None
    # The last '@' before the query ends the user info: a password may hold '@' or '/'.
    at = rest.rfind("@", 0, rest.find("?") if "?" in rest else len(rest))
    userinfo = None
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
    if "?" in rest:
        rest, query = rest.split("?", 1)
    return match.group(0), userinfo, rest, query, fragment


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """text with every given secret, every URL password and secret query value masked."""
    # Longest first, so that a secret containing another is masked whole.
    wanted = {secret for secret in secrets if secret and len(secret) >= MIN_SECRET_CHARS}
    for secret in sorted(wanted, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USERINFO_IN_TEXT.sub(rf"\1:{MASK}@", text)
    return _SECRET_PARAMETER_IN_TEXT.sub(rf"\1{MASK}", text)


def safe_reason(text: object, limit: int = DEFAULT_REASON_CHARS,
                secrets: Iterable[str | None] = ()) -> str:
    """One printable line of at most limit characters, secrets masked: fit to quote a remote
    server's or a library's words in an error message."""
    secrets = list(secrets)
    cleaned = "".join(
        " " if unicodedata.category(character) in _DROPPED_CATEGORIES else character
        for character in redact_text(str(text), secrets)
    )
    # Collapsing whitespace can join a secret split by a control character: mask again.
    flat = redact_text(" ".join(redact_text(cleaned, secrets).split()), secrets)
    if len(flat) <= limit:
        return flat
    if limit < 4:
        return flat[:limit]
    return flat[: limit - 3].rstrip() + "..."


# HTTP client libraries log request URLs (httpx at INFO), user:password@ included.
LIBRARY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "openai._base_client",
                   "langchain_openai")
_registered_secrets: set[str] = set()
_filter_lock = threading.Lock()


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message with URL passwords and registered secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask, never drop."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact_text(message, _registered_secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def guard_library_logs(secrets: Iterable[str | None] = ()) -> None:
    """Mask URL passwords and these secrets in what the HTTP and OpenAI client libraries log."""
    with _filter_lock:
        _registered_secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_CHARS)
        for name in LIBRARY_LOGGERS:
            library_logger = logging.getLogger(name)
            if _FILTER not in library_logger.filters:
                library_logger.addFilter(_FILTER)
