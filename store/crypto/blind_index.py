"""The blind index: keyed hashes of the normalised words of sealed text, for exact search.

A word is a run of letters and digits (as the list filter reads them), NFKC-normalised and
lower-cased; an IOC such as 185.220.101.4 or evil.example.com is found as all of its words.
Each word becomes a short token, keyed BLAKE2b (a MAC) under the index key, 64 bits in hex
with a letter in front; the store keeps the tokens of an incident's description, findings and
analyses, space-separated, in `incidents.search_terms`, which the text index reads instead of
the text. What this gives away: which incidents share a word, and how often a token occurs
(frequency analysis of common words); not the word itself without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"\w+", re.UNICODE)
# ASCII text (most of it) splits at C speed: every byte that is not a word character (\w in
# ASCII: letters, digits, '_') becomes a space, then bytes.split().
_ASCII_WORD_CHARACTERS = frozenset((string.ascii_letters + string.digits + "_").encode())
_ASCII_SEPARATE = bytes(byte if byte in _ASCII_WORD_CHARACTERS else 32 for byte in range(256))
TOKEN_PREFIX = "h"
TOKEN_BYTES = 8
# Whole indicators get longer tokens: the indicator table's values must not collide.
INDICATOR_TOKEN_PREFIX = "i"
INDICATOR_TOKEN_BYTES = 16
# Words repeat across records; remembering their tokens keeps a save from hashing each again.
MAX_REMEMBERED_TOKENS = 200_000
# A cap keeps one huge analysis from making the incident's token list unbounded.
MAX_WORDS_PER_TEXT = 4000


def normalised_words(text: str) -> list[str]:
    """The distinct normalised words of a text, in order of first appearance."""
    return [word.decode("utf-8", "surrogatepass") for word in _word_bytes(text)]


def _word_bytes(text: str) -> list[bytes]:
    """The distinct normalised words of a text as UTF-8, in order of first appearance."""
    if text.isascii():
        words = text.lower().encode("ascii").translate(_ASCII_SEPARATE).split()
        return list(dict.fromkeys(words))[:MAX_WORDS_PER_TEXT]
    folded = unicodedata.normalize("NFKC", text).casefold()
    return list(dict.fromkeys(word.encode("utf-8", "surrogatepass")
                              for word in _WORD.findall(folded)))[:MAX_WORDS_PER_TEXT]


def index_key_fingerprint(key: bytes) -> str:
    """A digest that tells one blind-index key from another and reveals nothing of it."""
    return hashlib.blake2b(b"which key", key=key[:64], digest_size=16,
                           person=b"incidex-keyfp").hexdigest()


class BlindIndex:
    """Word tokens under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._remembered: dict[bytes, str] = {}

    def token(self, word: str) -> str:
        """The token of one typed word (normalised first)."""
        words = _word_bytes(word)
        return self._token_of(words[0] if words else b"")

    def tokens(self, texts: Iterable[str]) -> str:
        """The distinct tokens of the words of these texts, space-separated."""
        remembered = self._remembered
        found = []
        for word in _word_bytes("\n".join(texts)):
            token = remembered.get(word)
            found.append(token if token is not None else self._token_of(word))
        return " ".join(found)

    def indicator_token(self, value: str) -> str:
        """The token of one whole indicator in its canonical form (an IP, a domain, a hash):
        what the indicator table stores instead of the value, so that the value stays as
        secret as the sealed text it came from while exact lookups still work."""
        digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=self._key[:64],
                                 digest_size=INDICATOR_TOKEN_BYTES, person=b"incidex-iocs")
        return INDICATOR_TOKEN_PREFIX + digest.hexdigest()

    def _token_of(self, word: bytes) -> str:
        found = self._remembered.get(word)
        if found is None:
            digest = hashlib.blake2b(word, key=self._key[:64], digest_size=TOKEN_BYTES,
                                     person=b"incidex-words")
            found = TOKEN_PREFIX + digest.hexdigest()
            if len(self._remembered) >= MAX_REMEMBERED_TOKENS:
                self._remembered.clear()
            self._remembered[word] = found
        return found

    def keyed_hash(self, label: str, payload: str) -> str:
        """HMAC-SHA256 of a labelled payload under the index key, in hex (content hashes)."""
        message = label.encode() + b"\x00" + payload.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
