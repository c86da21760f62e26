"""The offline default embedder: stemmed words weighted by rarity, hashed, with concepts."""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter
from itertools import chain
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


class _Vocabulary:
    """Every word seen so far, by id: its stem's hashed column and sign, its weight, concepts.

    Kept as growing numpy arrays, so that a batch's texts are turned into vectors by array
    operations over (text, word) pairs instead of a Python loop per word of every text.
    """

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.stem_ids: dict[str, int] = {}
        self.word_stem = _Column(np.int64)  # -1: the word has no term ("'" alone)
        self.word_weight = _Column(np.float64)
        self.word_has_concepts = _Column(np.bool_)
        self.stem_column = _Column(np.int64)
        self.stem_sign = _Column(np.float64)
        self.concepts: dict[int, tuple[int, ...]] = {}


class _Column:
    """A numpy array that grows at the end (capacity doubles), viewed up to its length."""

    def __init__(self, dtype: Any) -> None:
        self._array = np.zeros(1024, dtype)
        self._length = 0

    def extend(self, values: list[Any]) -> None:
        """Append values."""
        end = self._length + len(values)
        if end > len(self._array):
            grown = np.zeros(max(end, 2 * len(self._array)), self._array.dtype)
            grown[: self._length] = self._array[: self._length]
            self._array = grown
        self._array[self._length : end] = values
        self._length = end

    @property
    def values(self) -> np.ndarray:
        """The values appended so far."""
        return self._array[: self._length]


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
        self._vocabulary = _Vocabulary()
        # The vocabulary's dict and arrays grow together: one batch at a time (the app embeds
        # from several worker threads).
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> EmbedResult:
        """Embed texts in batches; no remote calls are made."""
        with self._lock:
            blocks = [
                self._embed_batch(texts[start : start + OFFLINE_BATCH_SIZE])
                for start in range(0, len(texts), OFFLINE_BATCH_SIZE)
            ]
        if not blocks:
            return EmbedResult(np.zeros((0, self.dimension), np.float32), [])
        return EmbedResult(np.vstack(blocks), [])

    def _learn(self, words: list[str]) -> None:
        """Give words not seen before an id, a stem, a weight and concepts (one table look-up
        and one stemmer call for all of them)."""
        if self._word_table is None:
            import snowballstemmer  # the C stemmer (PyStemmer) when installed: the same stems

            self._word_table = load_word_table(self._word_table_directory)
            self._stemmer = snowballstemmer.stemmer("english")
        vocabulary = self._vocabulary
        bare_words = [word.strip("'").removesuffix("'s") for word in words]
        known = [bare for bare in bare_words if bare]
        frequencies = dict(zip(known, self._word_table.frequencies(known), strict=True))
        stems = dict(zip(known, self._stemmer.stemWords(known), strict=True))
        word_stems: list[int] = []
        weights: list[float] = []
        with_concepts: list[bool] = []
        for word, bare in zip(words, bare_words, strict=True):
            word_id = vocabulary.ids[word] = len(vocabulary.ids)
            concepts = self._word_concepts.get(bare, ()) if bare else ()
            if concepts:
                vocabulary.concepts[word_id] = concepts
            with_concepts.append(bool(concepts))
            if not bare:
                word_stems.append(-1)
                weights.append(0.0)
                continue
            rarity = -math.log10(max(frequencies[bare], 1e-12))
            weights.append(min(self._rarity_cap, rarity) ** self._rarity_power)
            word_stems.append(self._stem_id(stems[bare]))
        vocabulary.word_stem.extend(word_stems)
        vocabulary.word_weight.extend(weights)
        vocabulary.word_has_concepts.extend(with_concepts)

    def _stem_id(self, stem: str) -> int:
        """The id of a stem, hashing it to its column and sign when it is new."""
        vocabulary = self._vocabulary
        stem_id = vocabulary.stem_ids.get(stem)
        if stem_id is None:
            stem_id = vocabulary.stem_ids[stem] = len(vocabulary.stem_ids)
            digest = _stable_hash(stem)
            vocabulary.stem_column.extend([digest % self._hashed_dimension])
            vocabulary.stem_sign.extend([1.0 if digest >> 63 else -1.0])
        return stem_id

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch into a float32 matrix of unit rows."""
        counted = [Counter(_WORD.findall(text.lower().replace("\u2019", "'"))) for text in texts]
        words = {word for counts in counted for word in counts}
        if len(self._vocabulary.ids) + len(words) > MAX_CACHED_WORDS:
            self._vocabulary = _Vocabulary()  # bounds memory on endless input
        unseen = [word for word in words if word not in self._vocabulary.ids]
        if unseen:
            self._learn(unseen)
        # One entry per distinct word of each text, texts in order, words in first-seen order.
        ids = self._vocabulary.ids
        word_ids = np.fromiter(chain.from_iterable(map(ids.__getitem__, c) for c in counted),
                               np.int64)
        counts = np.fromiter(chain.from_iterable(c.values() for c in counted), np.int64)
        rows = np.repeat(np.arange(len(texts)), [len(c) for c in counted])
        hashed = self._hashed_part(len(texts), rows, word_ids, counts)
        concept = self._concept_part(len(texts), rows, word_ids, counts)
        parts = [normalise_rows(hashed), self._concept_weight * normalise_rows(concept)]
        return normalise_rows(np.hstack(parts)).astype(np.float32)

    def _hashed_part(self, size: int, rows: np.ndarray, word_ids: np.ndarray,
                     counts: np.ndarray) -> np.ndarray:
        """Per text, each stem's (1 + log total count) * largest weight, signed, summed into its
        hashed column; stems are added in the order they first occur in the text, so that
        colliding stems sum in the same order (and to the same float) every time."""
        vocabulary = self._vocabulary
        stems = vocabulary.word_stem.values[word_ids]
        keep = stems >= 0
        rows, stems, counts = rows[keep], stems[keep], counts[keep]
        weights = vocabulary.word_weight.values[word_ids[keep]]
        hashed = np.zeros((size, self._hashed_dimension), np.float64)
        if not len(stems):
            return hashed
        keys = rows * (int(stems.max()) + 1) + stems
        _unique, first, group = np.unique(keys, return_index=True, return_inverse=True)
        totals = np.bincount(group, weights=counts)
        largest = np.zeros(len(first), np.float64)
        np.maximum.at(largest, group, weights)
        order = np.argsort(first, kind="stable")
        group_stems = stems[first[order]]
        values = (vocabulary.stem_sign.values[group_stems] * _one_plus_log(totals[order])
                  * largest[order])
        np.add.at(hashed, (rows[first[order]], vocabulary.stem_column.values[group_stems]),
                  values)
        return hashed

    def _concept_part(self, size: int, rows: np.ndarray, word_ids: np.ndarray,
                      counts: np.ndarray) -> np.ndarray:
        """Per text, 1 + log of how often each concept's words occur (0 where none do)."""
        concept = np.zeros((size, len(self._concept_names)), np.float64)
        vocabulary = self._vocabulary
        pairs = np.flatnonzero(vocabulary.word_has_concepts.values[word_ids])
        totals: dict[tuple[int, int], int] = {}
        for row, word_id, count in zip(rows[pairs].tolist(), word_ids[pairs].tolist(),
                                       counts[pairs].tolist(), strict=True):
            for index in vocabulary.concepts[word_id]:
                totals[row, index] = totals.get((row, index), 0) + count
        if totals:
            cells = np.array(list(totals), np.int64)
            concept[cells[:, 0], cells[:, 1]] = _one_plus_log(
                np.array(list(totals.values()), np.float64))
        return concept


_LOG_TABLE = np.array([0.0] + [1.0 + math.log(count) for count in range(1, 4096)])


def _one_plus_log(totals: np.ndarray) -> np.ndarray:
    """1 + math.log(total) for whole-number totals, exactly as math.log rounds it (numpy's
    own log may differ in the last bit, which would change the vectors)."""
    whole = totals.astype(np.int64)
    inside = whole < len(_LOG_TABLE)
    values = _LOG_TABLE[np.where(inside, whole, 0)]
    for position in np.flatnonzero(~inside).tolist():
        values[position] = 1.0 + math.log(int(whole[position]))
    return values
