"""Personal names and phone numbers for scrubber.py: the recognisers whose data loads lazily.

The census name lists of `names` and the metadata of `phonenumbers` are read on the first text that
needs them, never on import.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from functools import cache

from store.privacy.rules import (
    _P_PERSON,
    _P_PHONE,
    _P_SURNAME,
    _PHONE_HINT,
    _Candidate,
    _rx,
    _words,
)

PHONE_REGION = "US"
# How far back from a surname's occurrence its chain's blank is looked for.
MAX_WORD_CHARS = 200
# Past this many surnames in one text, one pass over all its words beats a search for each.
MAX_SURNAMES_LOOKED_UP = 16

_UP, _LO = "A-ZÀ-ÖØ-ÞĀ-Ž", "a-zß-öø-ÿĀ-ž"
_CAPWORD = rf"[{_UP}](?:['’][{_UP}])?[{_LO}]+(?:[-{_UP}][{_LO}]+)?"
_WORD_CHAIN = r"\w++(?:['’-]\w++)*+"  # words joined by apostrophes or hyphens
_ANGLE_EMAIL = r"[ \t]*<[^<>\s@]+(?:@|%40)"
_QUOTED_NAME = r"\"(?P<v>[^\"<>@\n]{2,60})\"[ \t]*<[^<>\s@]+(?:@|%40)"

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


def _phones(masked: str) -> Iterator[_Candidate]:
    """Phone numbers, looked for only around runs of seven or more digits (the matcher is slow,
    and its import too: a text whose digit runs were all masked never loads it)."""
    windows: list[list[int]] = []
    for m in _rx(_PHONE_HINT).finditer(masked):
        start, end = max(0, m.start() - 6), m.end() + 12
        if windows and start <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([start, end])
    if not windows:
        return
    import phonenumbers

    for start, end in windows:
        for match in phonenumbers.PhoneNumberMatcher(masked[start:end], PHONE_REGION):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            yield _Candidate(_P_PHONE, start + match.start, start + match.end, "PHONE", e164)


NAME_LISTS_FORMAT = "incidex-census-names/1"


@cache
def _name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """First names and surnames (upper case) from the US census lists of the `names` package,
    through a cache file (parsing the lists took about 0.1 s of each process's start-up)."""
    from importlib import metadata

    from store.derived_cache import (
        cache_path,
        cache_root,
        pack,
        read_private,
        unpack,
        write_private,
    )

    source = f"names {metadata.version('names')}"
    path = cache_path(cache_root(), "census-names", NAME_LISTS_FORMAT, source)
    data = read_private(path)
    unpacked = unpack(data, NAME_LISTS_FORMAT, source) if data is not None else None
    if unpacked is not None:
        first, _, last = bytes(unpacked[0]).decode("ascii").partition("\n\n")
        return frozenset(first.split("\n")), frozenset(last.split("\n"))
    first_names, surnames = _parse_name_lists()
    payload = "\n".join(sorted(first_names)) + "\n\n" + "\n".join(sorted(surnames))
    write_private(path, pack(NAME_LISTS_FORMAT, source, payload.encode("ascii")))
    return first_names, surnames


def _parse_name_lists() -> tuple[frozenset[str], frozenset[str]]:
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
    length = len(text)
    for m in _rx(_CAPWORD).finditer(text):
        start, end = m.span()
        if start and ((before := text[start - 1]).isalnum() or before in "_-./\\@"):
            continue  # part of an identifier, path or address, not a word
        if end < length and ((after := text[end]).isalnum() or after in "_@"):
            continue
        if runs:
            gap = text[runs[-1][-1][1] : start]
            if gap == " " or (gap[:1] in (" ", "\t") and _joins(gap)):  # " ": the usual gap
                runs[-1].append((start, end))
                continue
        runs.append([(start, end)])
    return runs


def _joins(gap: str) -> bool:
    """Whether the text between two capitalised words keeps them in one run: blanks only, or
    blanks around a middle initial ("J.")."""
    initial = gap.strip(" \t")
    return (
        gap[:1] in (" ", "\t")
        and gap[-1:] in (" ", "\t")
        and (not initial or (len(initial) == 2 and initial[0].isupper() and initial[1] == "."))
    )


def _names_in_run(
    text: str, run: list[tuple[int, int]], first_names: frozenset[str], surnames: frozenset[str]
) -> Iterator[tuple[int, int]]:
    mode = _context_before(text, run[0][0], run[-1][1])
    if len(run) == 1 and mode != "title" and not _rx(_ANGLE_EMAIL).match(text, run[0][1]):
        return  # one word alone is a name only after a title or before an <address>
    upper = [text[start:end].upper() for start, end in run]
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
    if not by_surname:
        return
    if all(text.count(surname) == 1 for surname in by_surname):
        # Each surname occurs once, as the last word of its person (after a blank, so a word
        # chain starts there): only the chains that start there need looking at.
        for surname in by_surname:
            chain = _rx(_WORD_CHAIN).match(text, text.index(surname))
            if chain is not None:
                yield from _surname_chain(chain, by_surname)
        return
    # Words looked up in a dict, not one alternation of every surname: that costs a pass per
    # surname, so a text naming many people took quadratic time.
    chains = _chains_holding(text, by_surname)
    for chain in chains if chains is not None else _rx(_WORD_CHAIN).finditer(text):
        yield from _surname_chain(chain, by_surname)


def _chains_holding(text: str, surnames: Collection[str]) -> list[re.Match[str]] | None:
    """The word chains holding an occurrence of one of these strings, in text order: the only
    chains that can name a surname. Each is read from the blank before its occurrence (no chain
    spans a blank, so they are the very chains a scan of the whole text meets); None when an
    occurrence has no blank close before it, or there are too many strings to look for one
    by one (the caller scans the whole text instead)."""
    if len(surnames) > MAX_SURNAMES_LOOKED_UP:
        return None
    chains: dict[int, re.Match[str]] = {}
    pattern = _rx(_WORD_CHAIN)
    for surname in surnames:
        at = text.find(surname)
        while at >= 0:
            near = max(0, at - MAX_WORD_CHARS)
            blank = max(text.rfind(" ", near, at), text.rfind("\n", near, at),
                        text.rfind("\t", near, at))
            if blank < 0 and near > 0:
                return None
            for chain in pattern.finditer(text, blank + 1):
                if chain.end() > at:
                    chains.setdefault(chain.start(), chain)
                    break
            at = text.find(surname, at + 1)
    return [chains[start] for start in sorted(chains)]


def _surname_chain(chain: re.Match[str], by_surname: dict[str, str]) -> Iterator[_Candidate]:
    """The surnames in one chain of words: the whole chain, or one of its parts."""
    word = chain.group()
    if word in by_surname:
        yield _Candidate(_P_SURNAME, chain.start(), chain.end(), "PERSON", by_surname[word])
    elif not word.isalnum():  # "Engel's", "Engel-led": the surname is one of the parts
        for part in _rx(r"\w+").finditer(word):
            if part.group() in by_surname:
                start = chain.start() + part.start()
                yield _Candidate(_P_SURNAME, start, start + len(part.group()), "PERSON",
                                 by_surname[part.group()])
