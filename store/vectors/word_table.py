"""English word frequencies for the offline embedder, read from a checked cache file.

wordfreq builds its frequency dict in about 0.7 s (importing it and its language tables, then
321,000 dict entries), which every `incidex --save` of one record paid. The table is the same
for a given wordfreq version, so it is built once into a cache file and read back as two numpy
arrays: the words sorted (UTF-8, fixed width) and their frequencies, looked up by binary search
for the words a batch needs, never turned into a dict.

Invariants: a frequency read from the cache is exactly the float wordfreq gives for that word
(the vectors do not change); the cache file (store/derived_cache.py) is keyed by the format and
the wordfreq version and checked whole before use, so a stale, truncated, corrupted or foreign
file is rebuilt, never used; when the cache folder cannot be written the table is built in
memory and the embedder works the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from store.derived_cache import cache_path, cache_root, pack, read_private, unpack, write_private

FORMAT = "incidex-word-table/1"
LANGUAGE, WORDLIST = "en", "large"
# Every word but a handful fits in 24 UTF-8 bytes; the longer ones live in the header.
WORD_BYTES = 24


def source_key() -> str:
    """What the table is built from: it must match for a cached table to be used."""
    return f"wordfreq {metadata.version('wordfreq')} {LANGUAGE} {WORDLIST}"


def cache_file(directory: Path) -> Path:
    """The word table's cache file in a cache folder."""
    return cache_path(directory, f"word-table-{LANGUAGE}-{WORDLIST}", FORMAT, source_key())


class WordTable:
    """Word -> frequency in general English (0.0 for unknown words), from sorted arrays."""

    def __init__(self, words: np.ndarray, frequencies: np.ndarray,
                 long_words: dict[str, float]) -> None:
        self._words = words
        self._frequencies = frequencies
        self._long_words = long_words

    @classmethod
    def from_frequencies(cls, table: dict[str, float]) -> WordTable:
        """The table of a {word: frequency} dict."""
        short = sorted(word.encode("utf-8") for word in table
                       if len(word.encode("utf-8")) <= WORD_BYTES)
        words = np.array(short, dtype=f"S{WORD_BYTES}")
        frequencies = np.array([table[word.decode("utf-8")] for word in short], dtype="<f8")
        long_words = {word: value for word, value in table.items()
                      if len(word.encode("utf-8")) > WORD_BYTES}
        return cls(words, frequencies, long_words)

    def frequencies(self, words: Sequence[str]) -> list[float]:
        """The frequency of each word, in order; 0.0 for a word wordfreq does not list."""
        found = [self._long_words.get(word, 0.0) for word in words]
        encoded = [word.encode("utf-8") for word in words]
        # numpy drops trailing NULs of fixed-width bytes: a word with a NUL is never listed.
        positions = [i for i, raw in enumerate(encoded) if len(raw) <= WORD_BYTES
                     and b"\0" not in raw]
        if positions and len(self._words):
            queries = np.array([encoded[i] for i in positions], dtype=f"S{WORD_BYTES}")
            slots = np.minimum(np.searchsorted(self._words, queries), len(self._words) - 1)
            hits = self._words[slots] == queries
            values = self._frequencies[slots]
            for position, hit, value in zip(positions, hits.tolist(), values.tolist(),
                                            strict=True):
                if hit:
                    found[position] = value
        return found

    def to_bytes(self, source: str) -> bytes:
        """The cache file's contents."""
        payload = self._words.tobytes() + self._frequencies.astype("<f8").tobytes()
        return pack(FORMAT, source, payload, {"count": len(self._words), "width": WORD_BYTES,
                                              "long": self._long_words})

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> WordTable | None:
        """The table in a cache file's contents, or None when they are stale or damaged."""
        unpacked = unpack(data, FORMAT, source)
        if unpacked is None:
            return None
        payload, extra = unpacked
        try:
            count = int(extra["count"])
            long_words = {str(word): float(value) for word, value in extra["long"].items()}
            if extra["width"] != WORD_BYTES or len(payload) != count * (WORD_BYTES + 8):
                return None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        words = np.frombuffer(payload, dtype=f"S{WORD_BYTES}", count=count)
        frequencies = np.frombuffer(payload, dtype="<f8", offset=count * WORD_BYTES)
        return cls(words, frequencies, long_words)


def load_word_table(directory: Path | None = None) -> WordTable:
    """The word table from its cache file in `directory` (default cache_root()), built and
    written there first when it is missing, stale, damaged or not safely ours."""
    path = cache_file(cache_root() if directory is None else directory)
    source = source_key()
    data = read_private(path)
    cached = WordTable.from_bytes(data, source) if data is not None else None
    if cached is not None:
        return cached
    import wordfreq

    table = WordTable.from_frequencies(wordfreq.get_frequency_dict(LANGUAGE, WORDLIST))
    write_private(path, table.to_bytes(source))
    return table
