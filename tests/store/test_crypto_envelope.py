"""The sealed value format and the blind index, on any input (no database)."""

from __future__ import annotations

import os
import re
import unicodedata

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from store.crypto import BlindIndex, KeyUnavailable, open_value, seal_value
from store.crypto.envelope import binding

KEY = AESGCM(bytes(range(32)))
KEY_ID = bytes(16)


@given(st.binary(max_size=4096), st.text(max_size=40))
def test_any_plaintext_round_trips_bound_to_its_row(plaintext: bytes, row: str) -> None:
    aad = binding("incidents", "description", row)
    sealed = seal_value(KEY, KEY_ID, plaintext, aad)
    assert open_value(KEY, sealed, aad, "here") == plaintext
    with pytest.raises(KeyUnavailable, match="does not decrypt with data key 0000"):
        open_value(KEY, sealed, binding("incidents", "description", row + "x"), "here")


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=512), st.data())
def test_a_changed_or_truncated_value_never_opens(plaintext: bytes, data: st.DataObject
                                                  ) -> None:
    aad = b"a"
    sealed = bytearray(seal_value(KEY, KEY_ID, plaintext, aad))
    position = data.draw(st.integers(0, len(sealed) - 1))
    changed = bytearray(sealed)
    changed[position] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(sealed) - 1))
    for broken in (bytes(changed), bytes(sealed[:cut])):
        with pytest.raises(KeyUnavailable) as raised:
            open_value(KEY, broken, aad, "analyses.analysis_json of an-1")
        assert str(raised.value).startswith("analyses.analysis_json of an-1: ")
        assert "\n" not in str(raised.value)


def test_a_wrong_key_names_the_data_key() -> None:
    sealed = seal_value(KEY, bytes.fromhex("ab" * 16), b"secret", b"a")
    with pytest.raises(KeyUnavailable, match="data key " + "ab" * 16):
        open_value(AESGCM(os.urandom(32)), sealed, b"a", "here")


@given(st.text(max_size=300))
def test_every_word_a_filter_can_type_is_found_by_its_token(text: str) -> None:
    index = BlindIndex(b"k" * 32)
    tokens = set(index.tokens([text]).split())
    # Words as the index reads them: after NFKC, which may join characters into one word
    # ("0" and a circled C become "0C"); a filter's typed word is normalised the same way.
    for word in re.findall(r"\w+", unicodedata.normalize("NFKC", text)):
        if len(tokens) < 4000:
            assert index.token(word) in tokens, word


def test_tokens_depend_on_the_key_and_hide_the_word() -> None:
    first, second = BlindIndex(b"a" * 32), BlindIndex(b"b" * 32)
    assert first.token("lockbit") != second.token("lockbit")
    assert "lockbit" not in first.tokens(["lockbit"])
    assert first.token("LockBit") == first.token("lockbit")
