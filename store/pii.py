"""Replace PII in incident text with keyed pseudonyms before it is embedded.

Why not Presidio: with NoOpNlpEngine and its predefined pattern recognizers (no model) it handled
571 texts per CPU-second of 1,500-character VCDB summaries and 74 of dense SOC notes for e-mail,
phone, card, IBAN and IP alone (191 and 47 with every recognizer), against 3,704 and 966 here in
the same run of bench/pii_speed.py; it brings spaCy (about 400 MB), tagged the public IP
185.220.101.4 as a phone number, and has no recogniser for secrets, internal hosts or, without a
model, names. So phone numbers come from `phonenumbers` (libphonenumber's metadata, offline),
personal names partly from the US census lists shipped in `names`, and the rest from regular
expressions with Luhn and mod-97 checks, each gated by a cheap substring test. Hashes, IPs, CVE
and ATT&CK ids, dates and times are masked before the number recognisers run, and public IOCs are
never replaced: analysts search by them.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import hmac
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from store.errors import StoreError

if TYPE_CHECKING:
    import ipaddress

    from store.settings import Settings

KEY_FILE_NAME = "pii.key"
KEY_ENV_VAR = "INCIDEX_PII_KEY"
MIN_KEY_CHARS = 32
TAG_HEX_CHARS = 8
PHONE_REGION = "US"
INTERNAL_SUFFIXES = ("corp", "local", "internal", "lan", "intranet", "localdomain", "home.arpa")
PRIVATE_NETWORKS = (
    *("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16"),
    *("fc00::/7", "fe80::/10", "::1/128"),
)

_UP, _LO = "A-ZÀ-ÖØ-ÞĀ-Ž", "a-zß-öø-ÿĀ-ž"
_EXISTING = r"<[A-Z][A-Z_]*_[0-9a-f]{%d}>" % TAG_HEX_CHARS  # noqa: UP031
_CAPWORD = rf"[{_UP}](?:['’][{_UP}])?[{_LO}]+(?:[-{_UP}][{_LO}]+)?"
_AWS_SECRET = r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
_EMAIL_DOMAIN = r"(?:@|%40)(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])"
_HEX_RUN = r"[0-9a-fA-F]{32,}"  # hashes: never a card or a phone number
_DIGIT_TOKEN = r"\d+(?:[.:/-]\d+)+"  # IPs, dates, times, versions, CVE and ATT&CK numbers
_DATE = r"\d{4}[-/.]\d\d?[-/.]\d\d?|\d\d?/\d\d?/\d{2,4}"
_PHONE_HINT = r"\d(?:[\s().-]{0,3}\d){6}"
_CARD = (
    r"(?<![\w.+-])(?:[2-6]\d{3}(?P<s>[ -]?)\d{4}(?P=s)\d{4}(?P=s)\d{1,4}(?:(?P=s)\d{1,3})?"
    r"|3[47]\d\d(?P<a>[ -]?)\d{6}(?P=a)\d{5})(?!\w|[.-]\d)"
)
_IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"
_IPV4 = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
_IPV6 = r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"
_UNC = r"\\\\(?P<v>[A-Za-z0-9][\w-]{0,62})(?=\\)"
_ANGLE_EMAIL = r"[ \t]*<[^<>\s@]+(?:@|%40)"
_QUOTED_NAME = r"\"(?P<v>[^\"<>@\n]{2,60})\"[ \t]*<[^<>\s@]+(?:@|%40)"


def _words(spaced: str, separator: str | None = None) -> frozenset[str]:
    return frozenset(spaced.split(separator))


_HONORIFICS = _words("mr mrs ms miss mx dr prof sir dame mme herr frau")
_GREETINGS = _words("dear hi hello hey attn")
_NAME_LABELS = _words("name fullname full_name employee contact")
_PAIR_LABELS = _words("from to cc by owner author analyst user assignee")
_SIGNOFFS = _words("regards best thanks cheers sincerely respectfully -- br") | _words(
    "best regards|kind regards|warm regards|many thanks|thank you|yours sincerely", "|"
)
_ROLES = _words(
    "spokesman spokeswoman spokesperson president ceo cfo cto ciso cio director manager officer "
    "employee analyst engineer administrator nurse doctor physician attorney lawyer detective "
    "agent sheriff professor teacher student patient customer contractor intern secretary clerk "
    "technician supervisor founder researcher reporter colleague user victim suspect"
)
# Census first names and surnames that, capitalised in incident prose, are mostly not people.
_NOT_FIRST = _words(
    "AN IN AL OK SO DO MAY JUNE APRIL AUGUST MARCH WILL MARK GRANT CHASE HOPE FAITH JOY ROSE DAWN "
    "SUMMER WINTER EASTER CHRISTMAS SUNDAY MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY SATURDAY "
    "LONG YOUNG ROYAL KING PRINCE GOLDEN EARLY PRICE PAGE LANE CASE GUY ART SKY LINCOLN SYDNEY "
    "AUGUSTA JEFFERSON ALBERT SHERWOOD MAPLE DEAR SIR MADAM TEAM ALL CUSTOMER SUPPORT MR MRS MS DR "
    "SANTA SAN SAINT MERCY"
)
_NOT_LAST = _words(
    "BANK POLICE BEACH HILLS FOREST PARISH COUNTY CITY STREET ROAD PARK HOSPITAL UNIVERSITY "
    "COLLEGE SCHOOL CENTER CENTRE HEALTH MEDICAL GROUP COMPANY DEPARTMENT CREDIT UNION CHURCH "
    "VALLEY LAKE RIVER ISLAND SPRINGS HEIGHTS CREST BRANCH COURT MUSEUM LIBRARY AIRPORT STATION "
    "BAY HARBOR VILLAGE TOWN STATE NATIONAL MEMORIAL FOUNDATION INSTITUTE TRUST INSURANCE CLINIC "
    "PHARMACY SQUARE AVENUE DRIVE CREEK FALLS MOUNTAIN RIDGE POINT PORT SECURITY SERVICES SERVICE "
    "TEAM SUPPORT HELPDESK DESK ADMIN ALERTS BILLING ACCOUNTS NOTIFICATIONS OFFICE HOME COMMISSION "
    "AGENCY BUREAU ADMINISTRATION COUNCIL BOARD COMMITTEE MINISTRY DIVISION INC LLC CORP "
    "CORPORATION SYSTEMS NETWORKS TECHNOLOGIES SOLUTIONS PARTNERS ASSOCIATES HOLDINGS"
)
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
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----"
        r"END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?:\s*[A-Za-z0-9+/=]{16,})*)",
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


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """One PII value found in a text: its kind, span and pseudonym, never the raw value."""

    kind: str
    start: int
    end: int
    pseudonym: str


class _Candidate(NamedTuple):
    priority: int
    start: int
    end: int
    kind: str
    value: str  # normalised; never leaves this module


_rx = cache(re.compile)  # compiled on first use, so importing this module stays cheap


class PiiScrubber:
    """Finds PII in text and replaces each value with a keyed, deterministic pseudonym."""

    def __init__(
        self,
        key: bytes,
        *,
        strip_internal_hosts: bool = False,
        internal_domains: tuple[str, ...] = (),
    ) -> None:
        if not key:
            raise ValueError("the PII pseudonym key is empty")
        self._key = key
        self._strip_internal = strip_internal_hosts
        domains = tuple(d.strip(".").lower() for d in internal_domains if d.strip("."))
        self._host_hints = tuple("." + s for s in INTERNAL_SUFFIXES) + domains
        # Anchored on the suffix (fast to find); the host's labels are walked back from it.
        suffixes = [r"\." + re.escape(s) for s in INTERNAL_SUFFIXES] + list(map(re.escape, domains))
        self._host_pattern = rf"(?:{'|'.join(suffixes)})(?![\w-]|\.[a-z0-9])"

    def scrub(self, text: str) -> str:
        """The text with every PII value replaced by its pseudonym."""
        pieces: list[str] = []
        position = 0
        for found in self.findings(text):
            pieces += (text[position : found.start], found.pseudonym)
            position = found.end
        pieces.append(text[position:])
        return "".join(pieces)

    def findings(self, text: str) -> list[PiiFinding]:
        """The PII values in text, in order, without overlaps."""
        chosen = _resolve(self._candidates(text))
        tag = self._pseudonym
        return [PiiFinding(c.kind, c.start, c.end, tag(c.kind, c.value)) for c in chosen]

    def _pseudonym(self, kind: str, normalised_value: str) -> str:
        """The tag standing for one normalised value: `<KIND_` + truncated HMAC-SHA256 + `>`."""
        digest = hmac.new(self._key, normalised_value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"<{kind}_{digest[:TAG_HEX_CHARS]}>"

    def _candidates(self, text: str) -> list[_Candidate]:
        lowered = text.lower()
        found = [_Candidate(_P_EXISTING, *m.span(), "", "") for m in _rx(_EXISTING).finditer(text)]
        found += _rule_candidates(text, lowered)
        if any(hint in lowered for hint in _KEYED_HINTS):
            found += _keyed(text)
        found += _emails(text)
        if _rx(_PHONE_HINT).search(text):
            found += _numbers(text, [(c.start, c.end) for c in found])
        if self._strip_internal:
            found += _private_ips(text, lowered)
            if any(hint in lowered for hint in self._host_hints):
                found += _hosts(text, lowered, self._host_pattern)
            if "\\\\" in text:
                found += (
                    _Candidate(_P_NET, *m.span("v"), "HOST", m.group("v").lower())
                    for m in _rx(_UNC).finditer(text)
                )
        people = list(_people(text))
        return found + people + list(_surnames(text, people))


def _resolve(candidates: list[_Candidate]) -> list[_Candidate]:
    """The best candidate of each overlapping group, in text order, without existing tags."""
    starts: list[int] = []
    chosen: list[_Candidate] = []
    for cand in sorted(candidates, key=lambda c: (c.priority, c.start - c.end, c.start)):
        index = bisect.bisect_left(starts, cand.start)
        if (index > 0 and chosen[index - 1].end > cand.start) or (
            index < len(chosen) and chosen[index].start < cand.end
        ):
            continue
        starts.insert(index, cand.start)
        chosen.insert(index, cand)
    return [c for c in chosen if c.priority != _P_EXISTING]


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


def _rule_candidates(text: str, lowered: str) -> Iterator[_Candidate]:
    for rule in _RULES:
        if not any(hint in lowered for hint in rule.hints.split()):
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


def _numbers(text: str, taken: list[tuple[int, int]]) -> list[_Candidate]:
    """Cards, IBANs and phone numbers outside IOCs, dates, times and spans already `taken`."""
    # Masking with letters keeps offsets and spares the phone matcher from parsing every IP,
    # hash, timestamp and token (its slowest path).
    masked = _mask(text, sorted(taken + _not_pii_digits(text)))
    numbers = [*_cards(masked), *_ibans(masked)]
    masked = _mask(masked, [(c.start, c.end) for c in numbers])
    return numbers + list(_phones(masked))


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


def _phones(masked: str) -> Iterator[_Candidate]:
    """Phone numbers, looked for only around runs of seven or more digits (the matcher is slow)."""
    import phonenumbers

    windows: list[list[int]] = []
    for m in _rx(_PHONE_HINT).finditer(masked):
        start, end = max(0, m.start() - 6), m.end() + 12
        if windows and start <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([start, end])
    for start, end in windows:
        for match in phonenumbers.PhoneNumberMatcher(masked[start:end], PHONE_REGION):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            yield _Candidate(_P_PHONE, start + match.start, start + match.end, "PHONE", e164)


def _hosts(text: str, lowered: str, suffix_pattern: str) -> Iterator[_Candidate]:
    """Host names ending in an internal suffix or domain, labels and all."""
    for m in _lower_finditer(suffix_pattern, text, lowered):
        begin = start = m.start()
        if text[begin] != "." and begin and (text[begin - 1].isalnum() or text[begin - 1] in "-_"):
            continue  # "notacme.com" is not under the internal domain "acme.com"
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in ".-"):
            start -= 1
        while start < begin and text[start] in ".-":
            start += 1
        if start < begin or text[begin] != ".":
            yield _Candidate(_P_NET, start, m.end(), "HOST", text[start : m.end()].lower())


@cache
def _private_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    import ipaddress

    return [ipaddress.ip_network(net) for net in PRIVATE_NETWORKS]


def _private_ips(text: str, lowered: str) -> Iterator[_Candidate]:
    import ipaddress

    networks = _private_networks()
    found: list[re.Match[str]] = []
    if any(hint in text for hint in ("10.", "172.", "192.168.", "127.", "169.254.")):
        found += _rx(_IPV4).finditer(text)
    if "::" in text or any(hint in lowered for hint in ("fe8", "fe9", "fea", "feb", "fc", "fd")):
        found += _rx(_IPV6).finditer(text)
    for m in found:
        before, after = text[m.start() - 1 : m.start()], text[m.end() : m.end() + 2]
        if (before and (before.isalnum() or before == ".")) or (
            after[:1].isalnum() or (after[:1] == "." and after[1:].isdigit())
        ):
            continue
        try:
            address = ipaddress.ip_address(m.group())
        except ValueError:
            continue
        if any(address in net for net in networks if net.version == address.version):
            yield _Candidate(_P_NET, m.start(), m.end(), "IP", address.compressed)


@cache
def _name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """First names and surnames (upper case) from the US census lists of the `names` package."""
    from importlib import resources

    root = resources.files("names")

    def read(file_name: str) -> frozenset[str]:
        return frozenset(re.findall(r"(?m)^[A-Z]+", (root / file_name).read_text(encoding="ascii")))

    return read("dist.male.first") | read("dist.female.first"), read("dist.all.last")


def _people(text: str) -> Iterator[_Candidate]:
    """Names after a title, greeting, label or role, before an <address>, or in the census lists."""
    first_names, surnames = _name_lists()
    for run in _capital_runs(text):
        for first, stop in _names_in_run(text, run, first_names, surnames):
            start, end = run[first][0], run[stop - 1][1]
            yield _Candidate(_P_PERSON, start, end, "PERSON", _normalise_person(text[start:end]))
    if '"' in text and "@" in text:
        for m in _rx(_QUOTED_NAME).finditer(text):
            yield _Candidate(_P_PERSON, *m.span("v"), "PERSON", _normalise_person(m.group("v")))


def _capital_runs(text: str) -> list[list[tuple[int, int]]]:
    """Spans of capitalised words, grouped while only blanks or a middle initial separate them."""
    runs: list[list[tuple[int, int]]] = []
    for m in _rx(_CAPWORD).finditer(text):
        start, end = m.span()
        if (start and (text[start - 1].isalnum() or text[start - 1] in "_-./\\@")) or (
            end < len(text) and (text[end].isalnum() or text[end] in "_@")
        ):
            continue  # part of an identifier, path or address, not a word
        gap = text[runs[-1][-1][1] : start] if runs else ""
        initial = gap.strip(" \t")
        joined = (
            gap[:1] in (" ", "\t")
            and gap[-1:] in (" ", "\t")
            and (not initial or (len(initial) == 2 and initial[0].isupper() and initial[1] == "."))
        )
        if joined:
            runs[-1].append((start, end))
        else:
            runs.append([(start, end)])
    return runs


def _names_in_run(
    text: str, run: list[tuple[int, int]], first_names: frozenset[str], surnames: frozenset[str]
) -> Iterator[tuple[int, int]]:
    upper = [text[start:end].upper() for start, end in run]
    mode = _context_before(text, run[0][0], run[-1][1])
    if mode:
        yield from _introduced(mode, upper, 0, first_names, surnames)
    elif (
        _rx(_ANGLE_EMAIL).match(text, run[-1][1])
        and upper[max(0, len(run) - 3)] not in _NOT_FIRST
        and _NOT_LAST.isdisjoint(upper)
    ):
        yield max(0, len(run) - 3), len(run)
    for index in range(len(run) - 1):
        word, following = upper[index].lower(), upper[index + 1]
        if word in _ROLES or word in _GREETINGS or word in _HONORIFICS:
            mode = "role" if word in _ROLES else "title"
            yield from _introduced(mode, upper, index + 1, first_names, surnames)
        elif _census_pair(upper[index], following, first_names, surnames):
            yield index, index + 2


def _introduced(
    mode: str, upper: list[str], at: int, first_names: frozenset[str], surnames: frozenset[str]
) -> Iterator[tuple[int, int]]:
    """The name that a title, label or role introduces at word `at`, if it looks like one."""
    size = len(upper) - at
    stop = at + min(size, 2 if mode == "role" else 3)
    if size < (1 if mode == "title" else 2) or upper[at] in _NOT_FIRST:
        return
    if not _NOT_LAST.isdisjoint(upper[at:stop]):
        return  # "to: Federal Trade Commission"
    if mode == "title" or upper[at] in first_names or upper[at + 1] in surnames:
        yield at, stop


def _census_pair(
    first: str, last: str, first_names: frozenset[str], surnames: frozenset[str]
) -> bool:
    if first not in first_names or last not in surnames:
        return False
    return first not in _NOT_FIRST and first not in _NOT_LAST and last not in _NOT_LAST


def _context_before(text: str, start: int, end: int) -> str | None:
    """How the words before a run introduce a name: 'title', 'pair', 'role' or not at all."""
    before = text[max(0, start - 60) : start].rstrip(" \t")
    if not before:
        return None
    if before[-1] in ":：":
        label = before[:-1].rstrip().rsplit(None, 1)[-1:]
        word = label[0].lower().strip("*-•") if label else ""
        return "title" if word in _NAME_LABELS else "pair" if word in _PAIR_LABELS else None
    if before[-1] == "\n":
        line = before.rstrip("\r\n").rsplit("\n", 1)[-1].strip().rstrip(",!.").lower()
        after = text[end : end + 40].lstrip(" \t")
        return "title" if line in _SIGNOFFS and after[:1] in ("", "\n", "\r", ",") else None
    words = before.rsplit(None, 1)  # empty when only other blanks (\x1f, \u2028) came before
    word = words[-1].rstrip(".,").lower() if words else ""
    if word in _HONORIFICS or word in _GREETINGS:
        return "title"
    return "role" if word in _ROLES else None


def _normalise_person(name: str) -> str:
    words = [word for word in name.replace(".", " ").split() if len(word) > 1]
    return " ".join(words).casefold()


def _surnames(text: str, people: list[_Candidate]) -> Iterator[_Candidate]:
    """Later mentions of a found person's surname alone ("Engel said"), under the same pseudonym."""
    by_surname: dict[str, str] = {}
    for person in people:
        words = text[person.start : person.end].split()
        if len(words) > 1 and len(words[-1]) > 2 and words[-1].upper() not in _NOT_LAST:
            by_surname.setdefault(words[-1], person.value)
    if by_surname:
        pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, by_surname)) + r")\b")
        for m in pattern.finditer(text):
            yield _Candidate(_P_SURNAME, m.start(), m.end(), "PERSON", by_surname[m.group()])


def scrubber_from_settings(settings: Settings) -> PiiScrubber:
    """A scrubber keyed by the configured key, else by the key file (created on first use)."""
    return PiiScrubber(
        load_or_create_key(settings),
        strip_internal_hosts=settings.strip_internal_hosts,
        internal_domains=tuple(getattr(settings, "internal_domains", ()) or ()),
    )


def load_or_create_key(settings: Settings) -> bytes:
    """The pseudonym key: a `pii_key` setting, else INCIDEX_PII_KEY, else the key file."""
    configured = getattr(settings, "pii_key", None)
    if configured is not None and hasattr(configured, "get_secret_value"):
        configured = configured.get_secret_value()
    configured = (configured or os.environ.get(KEY_ENV_VAR) or "").strip()
    if configured:
        if len(configured) < MIN_KEY_CHARS:
            raise StoreError(f"{KEY_ENV_VAR}: the PII key needs {MIN_KEY_CHARS} characters or more")
        return configured.encode("utf-8")
    from store.locations import data_directory, secrets_directory

    directory = secrets_directory(settings)
    if directory.is_relative_to(data_directory(settings)):
        raise StoreError(f"{directory}: the secrets directory must be outside the data directory")
    return _read_key_file(directory / KEY_FILE_NAME)


def _read_key_file(path: Path) -> bytes:
    if not path.exists():
        _create_key_file(path)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise StoreError(f"{path}: the PII key file is readable by others; run chmod 600 on it")
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_KEY_CHARS:
        raise StoreError(f"{path}: the PII key needs {MIN_KEY_CHARS} characters or more")
    return key.encode("utf-8")


def _create_key_file(path: Path) -> None:
    """Write a new random key atomically, never replacing a key another process wrote first."""
    import secrets
    import tempfile

    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # mkdir's mode is masked by the umask
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".pii-key-")  # mode 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(secrets.token_hex(32) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, path)  # unlike rename, fails if a concurrent creator won
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(temporary, path)
        if os.name == "posix":
            directory_handle = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(directory_handle)
            finally:
                os.close(directory_handle)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
