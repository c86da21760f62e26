"""Indicators of compromise found in free text: IPs, domains, URLs, e-mails, hashes, CVE and
ATT&CK ids, in one canonical form each so that equal indicators compare equal.

Why regular expressions of our own: the maintained extractors measured here on ~950-character
VCDB texts cost far more than the save path allows (iocsearcher 12 ms, ioc-finder 2.4 ms,
iocextract 40 ms a record, against a budget well under 0.1 ms) and each missed or mangled a
case below (reserved .test domains, a sender glued to the word before it, T-ids).

What is deliberately NOT an indicator:
- file names (report.pdf, invoice.docx, cmd.exe): the last label is a file extension;
- abbreviations (e.g., i.e., U.S.): a top-level label needs two letters or more;
- a sentence run together ("the server.The"): a capitalised top-level label;
- version numbers (version 10.0.19041.1, v1.2.3.4, build 6.1.7601.2): a dotted quad right
  after a version word is a version, and a dotted run of five or more numbers is never an IP;
- numbers with separators (1,248) and hex runs of other lengths than 32, 40 or 64;
- T-numbers without exactly four digits (T12, T12345).
Defanged forms are read as the real ones: hxxp://, [.], (.), [dot], [@], [at].
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

KINDS = ("ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "cve", "technique",
         "other")
MAX_TEXT_CHARS = 200_000  # a longer text is read up to here: indicators sit in the first pages

_DOT = r"(?:\.|\[\.\]|\(\.\)|\[dot\])"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[a-z]{{2,24}}"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PATTERN = re.compile(
    rf"(?P<url>\b(?:https?|hxxps?|ftp|fxp)(?::|\[:\])//[^\s<>\"'`]+)"
    rf"|(?P<email>(?<![\w.+-])[a-z0-9][a-z0-9._%+-]{{0,63}}(?:@|\[@\]|\[at\])(?P<mail_domain>{_DOMAIN})\b)"
    rf"|(?P<ipv4>(?<![\w.])(?:{_OCTET}{_DOT}){{3}}{_OCTET}(?![\w]|\.\d))"
    rf"|(?P<cve>\bCVE-\d{{4}}-\d{{4,7}}\b)"
    rf"|(?P<technique>\bT\d{{4}}(?:\.\d{{3}})?(?![\w.]|\.\d))"
    rf"|(?P<hash>\b(?:[a-f0-9]{{64}}|[a-f0-9]{{40}}|[a-f0-9]{{32}})\b)"
    rf"|(?P<ipv6>(?<![\w:.])(?:[a-f0-9]{{1,4}}:|:){{2,7}}(?:[a-f0-9]{{1,4}}|:)(?![\w:]))"
    rf"|(?P<domain>(?<![\w.@-]){_DOMAIN}\b(?![-@]|\.\w))",
    re.IGNORECASE,
)
_HOTSPOT = re.compile(r"[.:@\[](?=[^\s\"'])|\d")
_SPACE = re.compile(r"\s")
# The words after which a dotted quad is a version number, not an address.
_VERSION_WORD = re.compile(r"(?:\bv|\bversions?|\bver\.?|\bbuild|\brelease|\bfirmware)\s*$",
                           re.IGNORECASE)
# The last label of a file name, never of a domain an analyst means.
FILE_EXTENSIONS = frozenset("""
    exe dll sys bat cmd ps1 psm1 vbs vbe js jse wsf hta msi lnk scr cpl jar py sh pl rb php
    asp aspx jsp cgi txt log csv tsv json xml yml yaml ini cfg conf toml md rtf pdf doc docx docm
    xls xlsx xlsm ppt pptx pptm odt ods odp eml msg pst ost zip rar gz tgz bz2 xz 7z tar iso img
    vhd vhdx dmg apk ipa bin dat db sqlite bak tmp old png jpg jpeg gif bmp svg ico tif tiff
    mp3 mp4 wav avi mov mkv htm html css lock key pem crt cer pfx der p12 ova vmdk elf so dylib
    pyc class war ear dit evtx etl plist reg inf cab msu
""".split())
_TRAILING = ".,;:!?)]}>'\""
_DEFANGS = (("[.]", "."), ("(.)", "."), ("[dot]", "."), ("[@]", "@"), ("[at]", "@"),
            ("[:]", ":"), ("hxxp", "http"), ("fxp", "ftp"))


@dataclass(frozen=True, slots=True, order=True)
class Indicator:
    """One indicator in its canonical form (lower-case; CVE and ATT&CK ids upper-case)."""

    kind: str
    value: str


def indicators_in(text: str) -> set[Indicator]:
    """Every indicator in a text, canonical and deduplicated."""
    found: set[Indicator] = set()
    text = text[:MAX_TEXT_CHARS]
    for start, end in _candidate_tokens(text):
        _read_token(found, text, start, end)
    return found


def _candidate_tokens(text: str) -> Iterator[tuple[int, int]]:
    """The (start, end) of every whitespace-delimited token holding a dot, colon, at sign,
    bracket or digit, found by scanning for those characters only (prose words are skipped
    without being looked at: the full pattern costs ten times more run over all the text)."""
    position = 0
    while (hotspot := _HOTSPOT.search(text, position)) is not None:
        spot = hotspot.start()
        start = max(text.rfind(" ", 0, spot), text.rfind("\n", 0, spot),
                    text.rfind("\t", 0, spot)) + 1
        space = _SPACE.search(text, spot)
        end = len(text) if space is None else space.start()
        position = end
        token = text[start:end].rstrip(_TRAILING)
        if token.count(".") > 1 or not token.replace(",", "").replace(".", "").replace(
                "-", "").isdigit():
            yield start, end  # plain numbers (1,248, 2018, 1-877, 3.5) hold no indicator


def _read_token(found: set[Indicator], text: str, start: int, end: int) -> None:
    """Add the indicators matched inside one token."""
    for match in _PATTERN.finditer(text, start, end):
        kind = match.lastgroup
        if kind == "mail_domain":
            kind = "email"
        raw = match.group(0)
        if kind == "url":
            _add_url(found, raw)
        elif kind == "email":
            _add_email(found, raw)
        elif kind == "ipv4":
            if not _VERSION_WORD.search(text, max(0, match.start() - 12), match.start()):
                found.add(Indicator("ipv4", _refang(raw)))
        elif kind == "ipv6":
            _add_ipv6(found, raw)
        elif kind == "domain":
            _add_domain(found, raw)
        elif kind == "hash":
            _add_hash(found, raw)
        elif kind == "cve":
            found.add(Indicator("cve", raw.upper()))
        elif kind == "technique":
            found.add(Indicator("technique", raw.upper()))


def indicators_in_all(texts: Iterable[str]) -> set[Indicator]:
    """The union of the indicators of several texts."""
    found: set[Indicator] = set()
    for text in texts:
        if text:
            found |= indicators_in(text)
    return found


def _refang(value: str) -> str:
    lowered = value.lower()
    for defanged, real in _DEFANGS:
        lowered = lowered.replace(defanged, real)
    return lowered


def _add_url(found: set[Indicator], raw: str) -> None:
    url = _refang(raw).rstrip(_TRAILING)
    found.add(Indicator("url", url))
    host = url.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = host.rsplit("@", 1)[-1]
    if host.startswith("["):
        return  # a bracketed IPv6 literal
    host = host.split(":", 1)[0]
    if re.fullmatch(rf"(?:{_OCTET}\.){{3}}{_OCTET}", host):
        found.add(Indicator("ipv4", host))
    else:
        _add_domain(found, host)


def _add_email(found: set[Indicator], raw: str) -> None:
    address = _refang(raw)
    local, _, domain = address.rpartition("@")
    if _domain_is_plausible(domain):
        found.add(Indicator("email", f"{local}@{domain}"))
        found.add(Indicator("domain", domain))


def _add_domain(found: set[Indicator], raw: str) -> None:
    last_label = re.split(r"\.|\[\.\]|\(\.\)|\[dot\]", raw)[-1]
    if last_label[:1].isupper() and not last_label.isupper():
        return  # "server.The": a sentence run together, not a domain
    domain = _refang(raw)
    if _domain_is_plausible(domain):
        found.add(Indicator("domain", domain))


def _domain_is_plausible(domain: str) -> bool:
    labels = domain.split(".")
    return (len(labels) >= 2 and len(domain) <= 253 and labels[-1].isalpha()
            and len(labels[-1]) >= 2 and labels[-1] not in FILE_EXTENSIONS)


def _add_ipv6(found: set[Indicator], raw: str) -> None:
    if raw.count(":") < 2 or not any(character.isalnum() for character in raw):
        return
    try:
        address = ipaddress.IPv6Address(raw)
    except ValueError:
        return  # times (10:30:00), MAC addresses and ratios look alike
    found.add(Indicator("ipv6", address.compressed))


def _add_hash(found: set[Indicator], raw: str) -> None:
    value = raw.lower()
    if not (any(character.isdigit() for character in value)
            and any(character.isalpha() for character in value)):
        return  # all digits is a number; all letters a-f is no digest in practice
    found.add(Indicator({32: "md5", 40: "sha1", 64: "sha256"}[len(value)], value))


# The analysis fields whose values an analyst or model listed as indicators: a value there
# that no pattern above recognises (a file name, a registry key) is still kept, as "other".
IOC_FIELDS = ("iocs", "indicators", "indicators_of_compromise", "observables")
MAX_VALUE_CHARS = 512


def indicators_of_incident(title: str, description: str, initial_findings: str,
                           analyses: Iterable[Any]) -> set[Indicator]:
    """The indicators of an incident and its analyses: found in the incident's text, in every
    string of each analysis, and listed verbatim in the analyses' IOC fields."""
    analyses = list(analyses)
    found = indicators_in_all((title, description, initial_findings, *json_strings(analyses)))
    recognised = {indicator.value for indicator in found}
    for analysis in analyses:
        if not isinstance(analysis, dict):
            continue
        for key in IOC_FIELDS:
            for value in json_strings(analysis.get(key)):
                listed = value.strip().lower()
                if len(listed) >= 4 and listed not in recognised:
                    found.add(Indicator("other", listed))
    return {indicator for indicator in found if len(indicator.value) <= MAX_VALUE_CHARS}


def json_strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (dict values, list items), depth-first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


def indicator_of(term: str) -> Indicator | None:
    """The indicator a whole typed term is (192.0.2.9, evil[.]com, T1486), or None when the
    term is a word or only holds an indicator inside it (a filter matches those as words)."""
    term = term.strip().rstrip(_TRAILING)
    match = _PATTERN.fullmatch(term)
    if match is None:
        return None
    found: set[Indicator] = set()
    _read_token(found, term, 0, len(term))
    kind = "email" if match.lastgroup == "mail_domain" else match.lastgroup
    if kind == "hash":
        kind = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(term), "")
    return next((indicator for indicator in found if indicator.kind == kind), None)
