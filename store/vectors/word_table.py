"""English word frequencies for the offline embedder, read from a checked cache file.

wordfreq builds its frequency dict in about 0.7 s (importing it and its language tables, then
321,000 dict entries), which every `incidex --save` of one record paid. The table is the same
for a given wordfreq version, so it is built once into a cache file and read back as two numpy
arrays: the words sorted (UTF-8, fixed width) and their frequencies, looked up by binary search
for the words a batch needs, never turned into a dict.

Invariants: a frequency read from the cache is exactly the float wordfreq gives for that word
(the vectors do not change); the cache file is keyed by the format and the wordfreq version
and carries a SHA-256 of its contents, so a stale, truncated or corrupted file is rebuilt, never
used; a file that is not ours or that others may write is never read; it is written to a temp
file and renamed (readers see no file or a whole one), 0600 in a 0700 folder; when the cache
folder cannot be written the table is built in memory and the embedder works the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

log = logging.getLogger("incidex.vectors")

FORMAT = "incidex-word-table/1"
LANGUAGE, WORDLIST = "en", "large"
# Every word but a handful fits in 24 UTF-8 bytes; the longer ones live in the header.
WORD_BYTES = 24
_HEADER_LIMIT = 64 * 1024


def cache_root() -> Path:
    """Where per-user caches derived from installed packages live ($XDG_CACHE_HOME/incidex)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "incidex"


def source_key() -> str:
    """What the table is built from: it must match for a cached table to be used."""
    return f"wordfreq {metadata.version('wordfreq')} {LANGUAGE} {WORDLIST}"


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
        # NUL-free by construction (the tokens are letters); a NUL would alias a shorter word.
        positions = [i for i, raw in enumerate(encoded) if len(raw) <= WORD_BYTES
                     and b"\0" not in raw]
        if positions and len(self._words):
            queries = np.array([encoded[i] for i in positions], dtype=f"S{WORD_BYTES}")
            slots = np.searchsorted(self._words, queries)
            slots = np.minimum(slots, len(self._words) - 1)
            hits = self._words[slots] == queries
            values = self._frequencies[slots]
            for position, hit, value in zip(positions, hits.tolist(), values.tolist(),
                                            strict=True):
                if hit:
                    found[position] = value
        return found

    def to_bytes(self, key: str) -> bytes:
        """The cache file's contents: a JSON header line (with a digest of the rest), arrays."""
        payload = self._words.tobytes() + self._frequencies.astype("<f8").tobytes()
        header = {"format": FORMAT, "source": key, "count": len(self._words),
                  "width": WORD_BYTES, "long": self._long_words,
                  "sha256": hashlib.sha256(payload).hexdigest()}
        return json.dumps(header, sort_keys=True).encode("utf-8") + b"\n" + payload

    @classmethod
    def from_bytes(cls, data: bytes, key: str) -> WordTable | None:
        """The table in a cache file's contents, or None when they are stale or damaged."""
        end = data.find(b"\n", 0, _HEADER_LIMIT)
        if end < 0:
            return None
        try:
            header = json.loads(data[:end])
            count, digest = int(header["count"]), str(header["sha256"])
            long_words = {str(word): float(value) for word, value in header["long"].items()}
            if header["format"] != FORMAT or header["source"] != key or (
                    header["width"] != WORD_BYTES):
                return None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        payload = memoryview(data)[end + 1 :]
        if count < 0 or len(payload) != count * (WORD_BYTES + 8):
            return None
        if hashlib.sha256(payload).hexdigest() != digest:
            return None
        words = np.frombuffer(payload, dtype=f"S{WORD_BYTES}", count=count)
        frequencies = np.frombuffer(payload, dtype="<f8", offset=count * WORD_BYTES)
        return cls(words, frequencies, long_words)


def load_word_table(directory: Path | None = None) -> WordTable:
    """The word table from its cache file in `directory` (default cache_root()), built and
    written there first when it is missing, stale, damaged or not safely ours."""
    directory = cache_root() if directory is None else directory
    key = source_key()
    path = directory / cache_file_name(key)
    cached = _read_cache(path, key)
    if cached is not None:
        return cached
    import wordfreq

    table = WordTable.from_frequencies(wordfreq.get_frequency_dict(LANGUAGE, WORDLIST))
    try:
        _write_cache(path, table.to_bytes(key))
    except OSError as error:
        log.info("word table not cached in %s: %s", directory, error.strerror or error)
    return table


def cache_file_name(key: str) -> str:
    """The cache file's name: readable, and distinct for each source and format."""
    digest = hashlib.sha256(f"{FORMAT}\0{key}".encode()).hexdigest()[:16]
    return f"word-table-{LANGUAGE}-{WORDLIST}-{digest}.bin"


def _read_cache(path: Path, key: str) -> WordTable | None:
    try:
        with path.open("rb") as stream:
            status = os.fstat(stream.fileno())
            if os.name == "posix" and (status.st_uid != os.geteuid() or status.st_mode & 0o022):
                log.info("word table cache %s is not private to this user: rebuilt", path)
                return None
            data = stream.read()
    except OSError:
        return None
    table = WordTable.from_bytes(data, key)
    if table is None:
        log.info("word table cache %s is stale or damaged: rebuilt", path)
    return table


def _write_cache(path: Path, contents: bytes) -> None:
    """Write the cache file whole: a private temp file, flushed, then renamed over the old."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix" and directory.stat().st_mode & 0o077:
        directory.chmod(0o700)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".word-table-")  # mode 0600
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(contents)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
