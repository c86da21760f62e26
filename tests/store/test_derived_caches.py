"""Caches derived from installed packages (word table, census names): a cache file is used
only when whole, current and private, anything else is rebuilt; the frequencies, stems and names
are exactly those of wordfreq, Snowball and the census lists, so vectors and findings stay."""

from __future__ import annotations

import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import wordfreq
from hypothesis import given, settings
from hypothesis import strategies as st

from store.vectors.offline import HashedConceptEmbedder
from store.vectors.word_table import (
    WORD_BYTES,
    WordTable,
    cache_file,
    load_word_table,
    source_key,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frequencies() -> dict[str, float]:
    return wordfreq.get_frequency_dict("en", "large")


@pytest.fixture(scope="module")
def table(frequencies: dict[str, float]) -> WordTable:
    return WordTable.from_frequencies(frequencies)


def test_every_listed_word_gets_wordfreqs_exact_frequency(
    table: WordTable, frequencies: dict[str, float]
) -> None:
    words = list(frequencies)
    long_words = [word for word in words if len(word.encode()) > WORD_BYTES]
    assert long_words  # the header path is exercised too
    assert table.frequencies(words) == [frequencies[word] for word in words]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), max_size=20))
def test_any_word_gets_its_frequency_or_zero(
    table: WordTable, frequencies: dict[str, float], words: list[str]
) -> None:
    assert table.frequencies(words) == [frequencies.get(word, 0.0) for word in words]


def test_near_misses_are_not_found(table: WordTable, frequencies: dict[str, float]) -> None:
    # a NUL-padded word, a prefix, a longer word, one over the width: no false hits
    words = ["the\0", "th", "incidentx", "a" * (WORD_BYTES + 1), ""]
    assert table.frequencies(words) == [frequencies.get(word, 0.0) for word in words]
    assert table.frequencies(["the\0"]) == [0.0] and frequencies["the"] > 0


def test_the_cache_file_is_written_once_privately(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    load_word_table(directory)
    path = cache_file(directory)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    written = path.stat().st_mtime_ns
    load_word_table(directory)
    assert path.stat().st_mtime_ns == written
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temp file left


def test_a_cached_table_is_read_without_wordfreq(tmp_path: Path) -> None:
    load_word_table(tmp_path)
    probe = ("import sys\nfrom pathlib import Path\n"
             "from store.vectors.word_table import load_word_table\n"
             f"table = load_word_table(Path({str(tmp_path)!r}))\n"
             "print(table.frequencies(['the'])[0] > 0, 'wordfreq' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=REPO_ROOT, check=True)
    assert result.stdout.split() == ["True", "False"]


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty", "garbage header",
                                    "stale source", "other format"])
def test_a_damaged_or_stale_cache_is_rebuilt(tmp_path: Path, damage: str,
                                             frequencies: dict[str, float]) -> None:
    load_word_table(tmp_path)
    path = cache_file(tmp_path)
    data = bytearray(path.read_bytes())
    header_end = data.index(b"\n")
    if damage == "flip a byte":
        data[header_end + 1 + 1000] ^= 0x01
    elif damage == "truncate":
        del data[-100:]
    elif damage == "empty":
        data = bytearray()
    elif damage == "garbage header":
        data[:header_end] = b"{not json"
    elif damage == "stale source":
        data[:header_end] = data[:header_end].replace(b"wordfreq ", b"wordfreq 0.0.1-")
        assert b"wordfreq 0.0.1-" in data
    else:
        data[:header_end] = data[:header_end].replace(b"incidex-word-table/1",
                                                      b"incidex-word-table/0")
        assert b"incidex-word-table/0" in data
    path.write_bytes(bytes(data))
    assert WordTable.from_bytes(bytes(data), source_key()) is None
    table = load_word_table(tmp_path)
    assert table.frequencies(["breach", "ransomware"]) == [frequencies["breach"],
                                                          frequencies["ransomware"]]
    assert WordTable.from_bytes(path.read_bytes(), source_key()) is not None  # rewritten


def test_a_cache_file_others_may_write_is_not_trusted(tmp_path: Path) -> None:
    load_word_table(tmp_path)
    path = cache_file(tmp_path)
    forged = WordTable(np.array([b"breach"], dtype=f"S{WORD_BYTES}"), np.array([0.5]), {})
    path.write_bytes(forged.to_bytes(source_key()))  # well formed, checksum and all
    path.chmod(0o666)
    assert load_word_table(tmp_path).frequencies(["breach"])[0] != 0.5
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # replaced by a private one


def test_a_cache_path_that_is_a_file_still_embeds(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    assert load_word_table(blocker).frequencies(["breach"])[0] > 0


def test_vectors_are_the_same_from_a_fresh_or_a_cached_table(tmp_path: Path) -> None:
    texts = ["Ransomware encrypted the file server after a phishing e-mail.",
             "The attacker's C2 beacons every 60s; naïve users' creds were phished."]
    fresh = HashedConceptEmbedder(word_table_directory=tmp_path).embed(texts).vectors
    cached = HashedConceptEmbedder(word_table_directory=tmp_path).embed(texts).vectors
    assert np.array_equal(fresh, cached)


def test_the_c_stemmer_gives_snowballs_stems(frequencies: dict[str, float]) -> None:
    """PyStemmer (C) replaces the pure-Python Snowball stemmer only because they agree."""
    import Stemmer
    from snowballstemmer.english_stemmer import EnglishStemmer

    words = list(frequencies)[::7] + ["naïve", "café", "o'neil", "straße", "x" * 300]
    c_stems = Stemmer.Stemmer("english").stemWords(words)
    python = EnglishStemmer()
    assert c_stems == [python.stemWord(word) for word in words]


def test_census_names_come_back_the_same_from_the_cache(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from store.derived_cache import cache_path
    from store.privacy import names

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parsed = names._parse_name_lists()
    names._name_lists.cache_clear()
    try:
        assert names._name_lists() == parsed  # built and written
        files = list((tmp_path / "incidex").iterdir())
        assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
        names._name_lists.cache_clear()
        assert names._name_lists() == parsed  # read back
        data = bytearray(files[0].read_bytes())
        data[-3] ^= 0x02  # a flipped bit in a surname
        files[0].write_bytes(bytes(data))
        names._name_lists.cache_clear()
        assert names._name_lists() == parsed  # damaged: parsed again, and rewritten
        assert files[0].read_bytes() != bytes(data)
        assert cache_path(tmp_path / "incidex", "census-names", names.NAME_LISTS_FORMAT,
                          f"names {metadata.version('names')}") == files[0]
    finally:
        names._name_lists.cache_clear()


def test_threads_embedding_at_once_get_the_vectors_of_one_thread(tmp_path: Path) -> None:
    """The vocabulary grows in steps (ids, then arrays): threads must not see it half-grown."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Incident {n}: the attacker{n} used tool{n} and beacon{n % 7} to exfiltrate "
             f"file{n} after phishing user{n}" for n in range(400)]
    alone = HashedConceptEmbedder(word_table_directory=tmp_path).embed(texts).vectors
    shared = HashedConceptEmbedder(word_table_directory=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(lambda text: shared.embed([text]).vectors[0], texts))
    assert np.array_equal(np.vstack(rows), alone)
