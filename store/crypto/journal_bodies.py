"""Journal bodies sealed with their incident's data key (the backup journal's BodySealer).

A sealed body is bound to its analysis id (aad b"journal\\x00" + id), so a body moved to
another line does not open. Forgetting an incident deletes its data keys: its bodies in every
journal file and every mirror then stay unreadable, while other incidents' bodies still open.
"""

from __future__ import annotations

from collections.abc import Sequence

from store.crypto.cipher import StoreCipher
from store.crypto.envelope import KeyUnavailable, open_value, read_header, seal_value
from store.errors import BodyForgotten


def _binding(analysis_id: str) -> bytes:
    return b"journal\x00" + analysis_id.encode("utf-8", "surrogatepass")


class JournalSealer:
    """Seals journal bodies when the store encrypts at rest; opens them whenever asked."""

    def __init__(self, cipher: StoreCipher) -> None:
        self.cipher = cipher

    @property
    def sealing(self) -> bool:
        """Whether the store seals (new bodies are sealed only then)."""
        return self.cipher.sealing

    def seal_bodies(self, bodies: Sequence[tuple[str, str, bytes]]) -> list[tuple[str, bytes]]:
        """(key id, sealed bytes) per (incident id, analysis id, plain bytes): one key lookup
        for the whole batch (the keys are cached since the rows were sealed with them)."""
        keys = self.cipher.write_keys(list(dict.fromkeys(b[0] for b in bodies)))
        sealed = []
        for incident_id, analysis_id, plain in bodies:
            key_id, aead = keys[incident_id]
            sealed.append((key_id.hex(), seal_value(aead, key_id, plain, _binding(analysis_id))))
        return sealed

    def open_body(self, incident_id: str, analysis_id: str, sealed: bytes) -> bytes:
        """The plain body; BodyForgotten when its data key is no longer in the key database,
        ValueError naming the key id when it does not open (another keyring, altered bytes)."""
        where = f"body of {analysis_id} (incident {incident_id})"
        try:
            header = read_header(sealed, where)
            aead = self.cipher.read_key(header.key_id, where)
            return open_value(aead, sealed, _binding(analysis_id), where)
        except KeyUnavailable as error:
            if self._key_deleted(sealed):
                raise BodyForgotten(f"{where}: its incident's data key was deleted "
                                    "(forgotten or purged)") from None
            raise ValueError(str(error)) from None

    def _key_deleted(self, sealed: bytes) -> bool:
        try:
            key_id = read_header(sealed, "body").key_id
        except KeyUnavailable:
            return False
        return not self.cipher.datakeys.keys_by_id([bytes.fromhex(key_id)])
