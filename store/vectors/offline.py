"""The offline default embedder: stemmed words weighted by rarity, hashed, with concepts."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from store.vectors.embedder import DEFAULT_EMBEDDER, OFFLINE_BATCH_SIZE, EmbedResult, normalise_rows
from store.vectors.word_table import WordTable, load_word_table

SECURITY_CONCEPTS = """
theft: stole stolen steal steals stealing theft thefts thief thieves burglar burglars burglary
    burglarized robbery robbed robber snatched
loss: lost lose losing loss misplaced missing
computer: laptop laptops notebook computer computers desktop desktops
media: usb thumb flash drive drives disk disks cd cds dvd tape tapes backup backups hard
paper: paper papers documents document files folder folders records boxes box binder
mobile: phone phones smartphone smartphones iphone tablet ipad mobile
vehicle: car vehicle truck van trunk parked
mail: mail mailed mailing mailings envelope envelopes letter letters postal postcard postcards
misdelivery: misdelivered misdirected misaddressed wrong incorrect inadvertently mistakenly
    accidentally erroneously error
email: email emails emailed inbox attachment attachments
fax: fax faxed faxes faxing
publish: posted posting published publicly public online website web internet accessible
    viewable searchable google indexed
disposal: dumpster dumpsters trash garbage discarded dispose disposed disposal shred shredded
    shredding recycling recycle landfill bin bins thrown
misconfiguration: misconfigured misconfiguration configuration configured unsecured unprotected
    exposed open bucket buckets s3 elasticsearch mongodb cloud server servers database databases
insider: employee employees former worker staff insider nurse clerk contractor
snooping: snooping snooped curiosity viewed accessed looked unauthorized improperly
    inappropriately without authorization
privilege: privileges privilege access abused abuse misuse misused
fraud: fraud fraudulent fraudulently embezzle embezzled embezzlement embezzling scheme identity
sale: sold sell selling sale buyer bribe bribes bribery paid
competitor: competitor competitors trade secrets proprietary new job resigned
phishing: phishing phish phished spoofed spoof spear impersonating impersonated clicked link
    fake bogus
credentials: credentials password passwords username usernames login logins credential
ransomware: ransomware ransom encrypted encrypt encryption decrypt decryption bitcoin
    cryptolocker
malware: malware virus viruses trojan keylogger keyloggers spyware infected infection botnet
    rootkit backdoor
point_of_sale: pos register registers payment terminal terminals
card: card cards credit debit
skimmer: skimmer skimmers skimming skimmed atm atms pump pumps gas reader readers pin
tampering: tampered tampering tamper installed device devices hidden camera
denial_of_service: ddos dos denial flood flooded traffic outage offline downtime disrupted
hacktivism: hacktivist hacktivists anonymous defaced defacement deface protest
hacking: hacker hackers hacked hack hacking breached intrusion attacker attackers compromised
exploit: sql injection sqli vulnerability vulnerabilities exploit exploited flaw
pretexting: scam scammer scammers scheme pretending posing pretext pretexting impersonation
    caller phone call called
extortion: extortion extort threatened threat threats demand demanded
health: patient patients medical health hospital clinic healthcare hipaa
physical_access: door doors lock locked unlocked office building facility broke broken
sabotage: sabotage sabotaged deleted destroyed wiped revenge disgruntled terminated fired
gaffe: verbal disclosed told conversation overheard
spreadsheet: spreadsheet spreadsheets attached excel
environmental: fire flood storm hurricane tornado earthquake power outage water leak
programming: bug glitch software update coding programming
brute_force: brute guessing guessed lockout lockouts
command_and_control: c2 beacon beacons beaconing callback callbacks
lateral_movement: lateral psexec rdp smb pivoted pivot wmi
privilege_escalation: escalation escalate escalated elevated elevation
exfiltration: exfiltration exfiltrated exfiltrate uploaded transferred copied downloaded
scripting: powershell script scripts macro macros cmd javascript
supplier: vendor vendors supplier suppliers
cryptomining: cryptocurrency mining miner miners cryptojacking monero
"""

MAX_CACHED_WORDS = 500_000
_WORD = re.compile(r"[^\W\d_][\w']*")


def parse_concepts(table: str) -> dict[str, list[str]]:
    """The concept table as {concept: words}; indented lines continue the concept above."""
    concepts: dict[str, list[str]] = {}
    name = ""
    for line in table.strip().splitlines():
        if not line[0].isspace():
            name, _, line = line.partition(":")
            concepts[name] = []
        concepts[name].extend(line.split())
    return concepts


def _stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike hash())."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True, slots=True)
class _Term:
    stem: str
    weight: float
    concepts: tuple[int, ...]


class HashedConceptEmbedder:
    """Offline, fixed embedder: hashed word stems weighted by rarity in English, plus concepts.

    Each word is stemmed (Snowball English) and weighted by how rare it is in general English
    (wordfreq's fixed table: min(cap, -log10 frequency) ** power), with sublinear term
    frequency; stems are hashed with a signed blake2b hash into the first dimensions, and the
    SECURITY_CONCEPTS counts fill the last ones.  Nothing is fitted on stored data, so a text's
    vector never changes as the store grows.  A text with no words embeds as a zero row.

    Building one is cheap: the word table (a cache file, see word_table.py) and the stemmer
    load on the first embed(); the words of a batch not seen before are looked up together.
    """

    def __init__(
        self,
        dimension: int = 512,
        concept_weight: float = 0.7,
        rarity_cap: float = 6.0,
        rarity_power: float = 1.5,
        name: str | None = None,
        word_table_directory: Path | None = None,
    ) -> None:
        self.remote = False
        self.dimension = dimension
        self.name = name or (
            DEFAULT_EMBEDDER
            if (dimension, concept_weight, rarity_cap, rarity_power) == (512, 0.7, 6.0, 1.5)
            else f"hashed-concepts-v1/d{dimension}-c{concept_weight}-r{rarity_cap}-p{rarity_power}"
        )
        concepts = parse_concepts(SECURITY_CONCEPTS) if concept_weight > 0 else {}
        self._concept_names = list(concepts)
        self._hashed_dimension = dimension - len(self._concept_names)
        self._concept_weight = concept_weight
        self._rarity_cap = rarity_cap
        self._rarity_power = rarity_power
        self._word_table_directory = word_table_directory
        self._word_table: WordTable | None = None
        self._stemmer: Any = None
        self._word_concepts: dict[str, tuple[int, ...]] = {}
        for index, concept in enumerate(self._concept_names):
            for word in concepts[concept]:
                self._word_concepts[word] = (*self._word_concepts.get(word, ()), index)
        self._terms: dict[str, _Term | None] = {}
        self._slots: dict[str, tuple[int, float]] = {}

    def embed(self, texts: list[str]) -> EmbedResult:
        """Embed texts in batches; no remote calls are made."""
        blocks = [
            self._embed_batch(texts[start : start + OFFLINE_BATCH_SIZE])
            for start in range(0, len(texts), OFFLINE_BATCH_SIZE)
        ]
        if not blocks:
            return EmbedResult(np.zeros((0, self.dimension), np.float32), [])
        return EmbedResult(np.vstack(blocks), [])

    def _learn(self, words: list[str]) -> None:
        """Compute and cache the terms of words not seen before (one table look-up for all)."""
        if self._word_table is None:
            import snowballstemmer  # the C stemmer (PyStemmer) when installed: the same stems

            self._word_table = load_word_table(self._word_table_directory)
            self._stemmer = snowballstemmer.stemmer("english")
        bare_words = [word.strip("'").removesuffix("'s") for word in words]
        known = [bare for bare in bare_words if bare]
        frequencies = dict(zip(known, self._word_table.frequencies(known), strict=True))
        stems = dict(zip(known, self._stemmer.stemWords(known), strict=True))
        for word, bare in zip(words, bare_words, strict=True):
            term = None
            if bare:
                rarity = -math.log10(max(frequencies[bare], 1e-12))
                weight = min(self._rarity_cap, rarity) ** self._rarity_power
                term = _Term(stems[bare], weight, self._word_concepts.get(bare, ()))
            self._terms[word] = term

    def _slot(self, stem: str) -> tuple[int, float]:
        """The hashed column and sign of one stem (cached; pure function)."""
        slot = self._slots.get(stem)
        if slot is None:
            digest = _stable_hash(stem)
            slot = (digest % self._hashed_dimension, 1.0 if digest >> 63 else -1.0)
            if len(self._slots) > MAX_CACHED_WORDS:
                self._slots.clear()
            self._slots[stem] = slot
        return slot

    def _text_features(self, counts: Counter[str]) -> tuple[dict[int, float], dict[int, int]]:
        """Hashed stem values by column, and concept counts, of one text's word counts."""
        stems: dict[str, list[float]] = {}
        concepts: dict[int, int] = {}
        terms = self._terms
        for word, count in counts.items():
            term = terms[word]
            if term is None:
                continue
            entry = stems.get(term.stem)
            if entry is None:
                stems[term.stem] = [count, term.weight]
            else:
                entry[0] += count
                entry[1] = max(entry[1], term.weight)
            for concept in term.concepts:
                concepts[concept] = concepts.get(concept, 0) + count
        columns: dict[int, float] = {}
        slot = self._slot
        for stem, (total, weight) in stems.items():
            column, sign = slot(stem)
            columns[column] = columns.get(column, 0.0) + sign * (1.0 + math.log(total)) * weight
        return columns, concepts

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch into a float32 matrix of unit rows."""
        counted = [Counter(_WORD.findall(text.lower().replace("\u2019", "'"))) for text in texts]
        words = {word for counts in counted for word in counts}
        if len(self._terms) + len(words) > MAX_CACHED_WORDS:
            self._terms.clear()  # bounds memory on endless input; the terms are recomputed
        unseen = [word for word in words if word not in self._terms]
        if unseen:
            self._learn(unseen)
        hashed = np.zeros((len(texts), self._hashed_dimension), np.float64)
        concept = np.zeros((len(texts), len(self._concept_names)), np.float64)
        for row, counts in enumerate(counted):
            columns, concepts = self._text_features(counts)
            if columns:
                hashed[row, list(columns)] = list(columns.values())
            for index, count in concepts.items():
                concept[row, index] = 1.0 + math.log(count)
        parts = [normalise_rows(hashed), self._concept_weight * normalise_rows(concept)]
        return normalise_rows(np.hstack(parts)).astype(np.float32)
