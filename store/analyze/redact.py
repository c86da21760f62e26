"""PII out of a prompt and back into the reply: pseudonyms for the model, real values for us."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.privacy.scrubber import PiiScrubber

_PSEUDONYM = re.compile(r"<[A-Z][A-Z_]*_[0-9a-f]{12}>")


class Redaction:
    """Scrubs texts with the embedding scrubber and remembers each pseudonym's value.

    The map lives only in memory for one run: the model (and the cache, which keeps the
    model's reply) see pseudonyms; the analysis saved in the store gets the real values
    back, as the store already holds the incident's raw text.
    """

    def __init__(self, scrubber: PiiScrubber | None) -> None:
        self._scrubber = scrubber
        self._values: dict[str, str] = {}

    @property
    def active(self) -> bool:
        """Whether texts are scrubbed at all."""
        return self._scrubber is not None

    def scrub(self, text: str) -> str:
        """The text with PII replaced (unchanged when stripping is off)."""
        if self._scrubber is None or not text:
            return text
        pieces: list[str] = []
        position = 0
        for found in self._scrubber.findings(text):
            original = text[found.start:found.end]
            if found.pseudonym != original:
                self._values.setdefault(found.pseudonym, original)
            pieces += (text[position:found.start], found.pseudonym)
            position = found.end
        pieces.append(text[position:])
        return "".join(pieces)

    def restore(self, document: Any) -> Any:
        """A copy of a JSON value with every known pseudonym put back to its value."""
        if not self._values:
            return document
        if isinstance(document, str):
            return _PSEUDONYM.sub(lambda m: self._values.get(m.group(0), m.group(0)), document)
        if isinstance(document, list):
            return [self.restore(item) for item in document]
        if isinstance(document, dict):
            return {key: self.restore(value) for key, value in document.items()}
        return document
