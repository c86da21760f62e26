"""The pattern recognisers behind scrubber.py: secrets, user folders, e-mails, cards, IBANs.

Each recogniser yields `_Candidate`s that scrubber.py resolves into findings; patterns are compiled
on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import NamedTuple

_AWS_SECRET = r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
_EMAIL_DOMAIN = r"(?:@|%40)(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])"
_HEX_RUN = r"[0-9a-fA-F]{32,}"  # hashes: never a card or a phone number
# IPs, dates, times, versions, CVE and ATT&CK numbers. Never starting inside a digit run, and
# possessive, so that a long run of digits costs one pass, not one pass per digit.
_DIGIT_TOKEN = r"(?<!\d)\d++(?:[.:/-]\d++)+"
_DATE = r"\d{4}[-/.]\d\d?[-/.]\d\d?|\d\d?/\d\d?/\d{2,4}"
_PHONE_HINT = r"\d(?:[\s().-]{0,3}\d){6}"
_CARD = (
    r"(?<![\w.+-])(?:[2-6]\d{3}(?P<s>[ -]?)\d{4}(?P=s)\d{4}(?P=s)\d{1,4}(?:(?P=s)\d{1,3})?"
    r"|3[47]\d\d(?P<a>[ -]?)\d{6}(?P=a)\d{5})(?!\w|[.-]\d)"
)
_IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"


def _words(spaced: str, separator: str | None = None) -> frozenset[str]:
    return frozenset(spaced.split(separator))


_SYSTEM_USERS = frozenset({"public", "default", "all users", "default user", "administrator"})

# Lower numbers win overlaps: explicit secrets beat e-mails, which beat heuristic recognisers.
_P_EXISTING, _P_PEM, _P_VENDOR, _P_KEYED, _P_EMAIL = 0, 1, 2, 3, 4
_P_CARD, _P_NET, _P_PHONE, _P_USER, _P_PERSON, _P_SURNAME = 5, 6, 7, 8, 9, 10


class _Rule(NamedTuple):
    kind: str
    priority: int
    pattern: str  # starts with a literal where it can: re then skips ahead fast
    hints: str  # blank-separated; the rule runs only when one occurs in the lower-cased text
    lowered: bool = False  # match the lower-cased text (case-insensitive, but fast)


_NOT_AFTER_WORD = r"(?<![\w-].{%d})"  # after a literal prefix of that length: not mid-word
_RULES = (
    _Rule(
        "PRIVATE_KEY",
        _P_PEM,
        # The body never runs past the next BEGIN line, so many headers without an END cost
        # one pass in all, not one pass each.
        r"(?s)-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:(?:(?!-----BEGIN ).)*?"
        r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|(?:\s*+[A-Za-z0-9+/=]{16,}+)*+)",
        "private key",
    ),
    _Rule(
        "AWS_KEY",
        _P_VENDOR,
        r"A(?:KIA|SIA|BIA|CCA)(?<![A-Z0-9].{4})[A-Z0-9]{16}(?![A-Z0-9])",
        "akia asia abia acca",
    ),
    _Rule(
        "TOKEN",
        _P_VENDOR,
        r"gh[pousr]_" + _NOT_AFTER_WORD % 4 + r"[A-Za-z0-9]{36,255}",
        "ghp_ gho_ ghu_ ghs_ ghr_",
    ),
    _Rule("TOKEN", _P_VENDOR, r"github_pat_\w{22,255}", "github_pat_"),
    _Rule("TOKEN", _P_VENDOR, r"xox[abposr]-" + _NOT_AFTER_WORD % 5 + r"[A-Za-z0-9-]{10,}", "xox"),
    _Rule("TOKEN", _P_VENDOR, r"glpat-[\w-]{20,}", "glpat-"),
    _Rule("TOKEN", _P_VENDOR, r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}", "k_live_ k_test_"),
    _Rule("TOKEN", _P_VENDOR, r"AIza" + _NOT_AFTER_WORD % 4 + r"[\w-]{35}", "aiza"),
    _Rule("TOKEN", _P_VENDOR, r"sk-" + _NOT_AFTER_WORD % 3 + r"(?:proj-|ant-)?[\w-]{20,}", "sk-"),
    _Rule("TOKEN", _P_VENDOR, r"npm_" + _NOT_AFTER_WORD % 4 + r"[A-Za-z0-9]{36}", "npm_"),
    _Rule("TOKEN", _P_VENDOR, r"hooks\.slack\.com/services/(?P<v>T\w+/B\w+/\w+)", "hooks.slack"),
    _Rule(
        "JWT", _P_VENDOR, r"eyJ" + _NOT_AFTER_WORD % 3 + r"[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*", "eyj"
    ),
    _Rule("PASSWORD", _P_VENDOR, r"://[^\s/:@]{1,64}:(?P<v>[^\s/@]{1,128})@", "://"),
    _Rule(
        "TOKEN",
        _P_KEYED,
        r"(?:bearer|basic|token)[ \t]+(?P<v>[\w.~+/-]{16,}=*)",
        "bearer basic token",
        lowered=True,
    ),
    _Rule(
        "USER",
        _P_USER,
        r"(?:\\users\\|/home/|/users/)(?P<v>[^\\/\s:*?\"<>|]{1,64})",
        "\\users\\ /home/ /users/",
        lowered=True,
    ),
)
# A key ending like this, then ':' or '=', introduces a secret.
_PASSWORD_KEYS = ("password", "passwd", "passphrase", "pwd", "pass", "pin")
_SECRET_KEYS = _words(
    "secret token apikey accesskey privatekey sessionid cookie credential authorization authkey"
)
_KEYED_HINTS = ("pass", "pwd", "pin", "secret", "token", "key", "auth", "session", "cookie", "cred")
_SEPARATOR = r"[:=]"
_VALUE = r"[ \t]*(?:\"(?P<dq>[^\"\n]{1,200})\"|'(?P<sq>[^'\n]{1,200})'|(?P<v>[^\s\"',;]{1,200}))"


class _Candidate(NamedTuple):
    priority: int
    start: int
    end: int
    kind: str
    value: str  # normalised; never leaves the privacy package


_rx = cache(re.compile)  # compiled on first use, so importing these modules stays cheap


def _value_span(match: re.Match[str]) -> tuple[int, int]:
    for group in ("dq", "sq", "v"):
        if group in match.re.groupindex and match.group(group) is not None:
            start, end = match.span(group)
            while group == "v" and end - start > 1 and match.string[end - 1] in ".)]":
                end -= 1  # sentence punctuation after an unquoted value
            return start, end
    return match.span()


def _lower_finditer(pattern: str, text: str, lowered: str) -> Iterator[re.Match[str]]:
    """Case-insensitive matches, run on the lower-cased text when its offsets are the same."""
    if len(lowered) == len(text):  # lower() lengthens a few non-ASCII letters
        return _rx(pattern).finditer(lowered)
    return _rx(pattern, re.I).finditer(text)


_RULE_HINTS = tuple((rule, tuple(rule.hints.split())) for rule in _RULES)


def _rule_candidates(text: str, lowered: str) -> Iterator[_Candidate]:
    for rule, hints in _RULE_HINTS:
        if not any(map(lowered.__contains__, hints)):
            continue
        if rule.lowered:
            matches = _lower_finditer(rule.pattern, text, lowered)
        else:
            matches = _rx(rule.pattern).finditer(text)
        for m in matches:
            start, end = _value_span(m)
            value = text[start:end]
            if rule.kind == "PRIVATE_KEY":
                value = "".join(value.split())
            elif rule.kind == "USER":
                if value.casefold() in _SYSTEM_USERS:
                    continue
                value = value.casefold()
            yield _Candidate(rule.priority, start, end, rule.kind, value)
            if rule.kind == "AWS_KEY":
                yield from _aws_secret_after(text, end)


def _keyed(text: str) -> Iterator[_Candidate]:
    """Values after a password or secret key: `password: x`, `api_key="x"`, `"token": "x"`."""
    for separator in _rx(_SEPARATOR).finditer(text):
        position = separator.start()
        key = _key_before(text, position).lower()
        if not key or text.startswith("://", position):
            continue
        last = re.split(r"[_.-]", key)[-1]
        compact = key.replace("_", "").replace("-", "").replace(".", "")
        kind = "PASSWORD" if last in _PASSWORD_KEYS else None
        if kind is None and (last == "auth" or any(word in compact for word in _SECRET_KEYS)):
            kind = "SECRET"
        value = _rx(_VALUE).match(text, position + 1) if kind else None
        if kind is None or value is None:
            continue
        start, end = _value_span(value)
        secret = text[start:end]
        if (
            kind == "SECRET"
            and len(secret) < 16
            and not (len(secret) >= 8 and any(char.isdigit() for char in secret))
        ):
            continue  # "authorization: Bearer" or "token_type: refresh" name no secret
        if last == "pwd" and secret.startswith(("/", "~")):
            continue  # a shell's working directory
        yield _Candidate(_P_KEYED, start, end, kind, secret)


def _key_before(text: str, position: int) -> str:
    """The key name just before a separator, skipping blanks and a closing quote."""
    end = position
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    if end > 0 and text[end - 1] in "\"'":
        end -= 1
    start = end
    while (
        start > 0 and end - start < 60 and (text[start - 1].isalnum() or text[start - 1] in "_.-")
    ):
        start -= 1
    return text[start:end]


def _aws_secret_after(text: str, position: int) -> Iterator[_Candidate]:
    """The 40-character secret that usually follows an access key id (never a pure-hex hash)."""
    m = _rx(_AWS_SECRET).search(text, position, position + 200)
    if m and not all(char in "0123456789abcdefABCDEF" for char in m.group()):
        yield _Candidate(_P_VENDOR, m.start(), m.end(), "AWS_SECRET", m.group())


def _emails(text: str) -> Iterator[_Candidate]:
    if "@" not in text and "%40" not in text:
        return
    for m in _rx(_EMAIL_DOMAIN).finditer(text):
        start = m.start()
        while (
            start > 0
            and m.start() - start < 64
            and (text[start - 1].isalnum() or text[start - 1] in "._%+-_")
        ):
            start -= 1
        if start < m.start():
            address = text[start : m.end()].replace("%40", "@").lower()
            yield _Candidate(_P_EMAIL, start, m.end(), "EMAIL", address)


def _not_pii_digits(text: str) -> list[tuple[int, int]]:
    """Spans of hashes, IPs, versions, dates, times, CVE and ATT&CK ids."""
    spans = [m.span() for m in _rx(_HEX_RUN).finditer(text)]
    for m in _rx(_DIGIT_TOKEN).finditer(text):
        token, start = m.group(), m.start()
        parts = token.split(".")
        if (
            (start and text[start - 1].isalpha())
            or text[max(0, start - 4) : start].upper() == "CVE-"
            or ":" in token
            or (len(parts) == 4 and all(len(part) <= 3 for part in parts))
            or _rx(_DATE).match(token)
        ):
            spans.append(m.span())
    return spans


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        if end > position:
            start = max(start, position)
            pieces += (text[position:start], "x" * (end - start))
            position = end
    return "".join(pieces) + text[position:]


def _cards(text: str) -> Iterator[_Candidate]:
    for m in _rx(_CARD).finditer(text):
        digits = "".join(char for char in m.group() if char.isdigit())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            yield _Candidate(_P_CARD, m.start(), m.end(), "CARD", digits)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _ibans(text: str) -> Iterator[_Candidate]:
    for m in _rx(_IBAN).finditer(text):
        raw = m.group()
        while raw:  # a greedy match may have swallowed a following word: drop groups until valid
            compact = raw.replace(" ", "")
            if 15 <= len(compact) <= 34 and _mod97(compact[4:] + compact[:4]) == 1:
                yield _Candidate(_P_CARD, m.start(), m.start() + len(raw), "IBAN", compact)
                break
            raw = raw.rpartition(" ")[0]


def _mod97(alphanumeric: str) -> int:
    return int("".join(str(int(char, 36)) for char in alphanumeric)) % 97
