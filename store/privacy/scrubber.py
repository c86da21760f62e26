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
never replaced: analysts search by them. The recognisers live in rules.py and
names.py; this module resolves overlaps, strips internal hosts and keeps the key.
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
from typing import TYPE_CHECKING

from store.errors import StoreError
from store.privacy.names import _people, _phones, _surnames
from store.privacy.rules import (
    _KEYED_HINTS,
    _P_EXISTING,
    _P_NET,
    _PHONE_HINT,
    _Candidate,
    _cards,
    _emails,
    _ibans,
    _keyed,
    _lower_finditer,
    _mask,
    _not_pii_digits,
    _rule_candidates,
    _rx,
)

if TYPE_CHECKING:
    import ipaddress

    from store.settings import Settings

KEY_FILE_NAME = "pii.key"
KEY_ENV_VAR = "INCIDEX_PII_KEY"
MIN_KEY_CHARS = 32
TAG_HEX_CHARS = 12
FINGERPRINT_LABEL = b"incidex/pii-key-fingerprint/v1"
MAX_HOST_CHARS = 253
INTERNAL_SUFFIXES = ("corp", "local", "internal", "lan", "intranet", "localdomain", "home.arpa")
PRIVATE_NETWORKS = (
    *("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16"),
    *("fc00::/7", "fe80::/10", "::1/128"),
)

_EXISTING = r"<[A-Z][A-Z_]*_[0-9a-f]{%d}>" % TAG_HEX_CHARS  # noqa: UP031
_IPV4 = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
_IPV6 = r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"
_UNC = r"\\\\(?P<v>[A-Za-z0-9][\w-]{0,62})(?=\\)"


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """One PII value found in a text: its kind, span and pseudonym, never the raw value."""

    kind: str
    start: int
    end: int
    pseudonym: str


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

    @property
    def fingerprint(self) -> str:
        """A keyed one-way fingerprint of the key: tells keys apart, never reveals one."""
        return key_fingerprint(self._key)

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
        if any(map(lowered.__contains__, _KEYED_HINTS)):
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


def _numbers(text: str, taken: list[tuple[int, int]]) -> list[_Candidate]:
    """Cards, IBANs and phone numbers outside IOCs, dates, times and spans already `taken`."""
    # Masking with letters keeps offsets and spares the phone matcher from parsing every IP,
    # hash, timestamp and token (its slowest path).
    masked = _mask(text, sorted(taken + _not_pii_digits(text)))
    numbers = [*_cards(masked), *_ibans(masked)]
    masked = _mask(masked, [(c.start, c.end) for c in numbers])
    return numbers + list(_phones(masked))


def _hosts(text: str, lowered: str, suffix_pattern: str) -> Iterator[_Candidate]:
    """Host names ending in an internal suffix or domain, labels and all."""
    floor = 0  # never walk back over the host before: each character is walked once
    for m in _lower_finditer(suffix_pattern, text, lowered):
        begin = start = m.start()
        if text[begin] != "." and begin and (text[begin - 1].isalnum() or text[begin - 1] in "-_"):
            continue  # "notacme.com" is not under the internal domain "acme.com"
        # A DNS name has at most 253 characters: walking back no further keeps a text full
        # of suffixes linear.
        while (start > floor and begin - start < MAX_HOST_CHARS
               and (text[start - 1].isalnum() or text[start - 1] in ".-")):
            start -= 1
        while start < begin and text[start] in ".-":
            start += 1
        floor = m.end()
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


def key_fingerprint(key: bytes) -> str:
    """HMAC-SHA256 of a fixed label under the key, 128 bits in hex (the store records it)."""
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:32]


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
