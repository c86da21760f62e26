"""Sealed JSON backups: the backup document of an analysis, sealed under its incident's key.

The file stays JSON (store/backup writes it as before) but holds only the format, the ids
and the sealed document: {"format": "incidex-sealed-backup-1", "incident_id", "analysis_id",
"sealed": base64}. The sealed bytes are bound to the analysis id.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson

from store.backup.json_files import INCOMING
from store.crypto.cipher import IncidentCodec, StoreCipher
from store.crypto.envelope import KeyUnavailable
from store.fileio import write_private_file

SEALED_BACKUP_FORMAT = "incidex-sealed-backup-1"


def _binding(analysis_id: str) -> bytes:
    return b"backup\x00" + analysis_id.encode("utf-8", "surrogatepass")


def sealed_backup_document(codec: IncidentCodec, analysis_id: str,
                           document: dict[str, Any]) -> dict[str, Any]:
    """The sealed form of a backup document."""
    sealed = codec.seal(orjson.dumps(document), _binding(analysis_id))
    return {"format": SEALED_BACKUP_FORMAT, "incident_id": codec.incident_id,
            "analysis_id": analysis_id, "sealed": base64.b64encode(sealed).decode("ascii")}


def open_backup_document(codec: IncidentCodec, stored: dict[str, Any]) -> dict[str, Any]:
    """The backup document inside a sealed one; KeyUnavailable when it cannot be opened."""
    if stored.get("format") != SEALED_BACKUP_FORMAT:
        return stored
    analysis_id = str(stored.get("analysis_id"))
    try:
        blob = base64.b64decode(str(stored.get("sealed")), validate=True)
    except ValueError:
        raise KeyUnavailable(f"backup of {analysis_id}: sealed value damaged") from None
    document = orjson.loads(codec.open_sealed(blob, _binding(analysis_id)))
    return dict(document)


def seal_backup_files(directory: Path, cipher: StoreCipher) -> int:
    """Seal every clear JSON backup under directory in place (atomically, file by file; a
    second run finds nothing left); how many."""
    codecs: dict[str, IncidentCodec] = {}
    sealed = 0
    for path in sorted(directory.rglob("*.json")):
        if INCOMING in path.parts:
            continue
        stored = orjson.loads(path.read_bytes())
        if not isinstance(stored, dict) or stored.get("format") == SEALED_BACKUP_FORMAT:
            continue
        incident_id = str((stored.get("incident") or {}).get("incident_id", ""))
        analysis_id = str(stored.get("analysis_id", ""))
        if not incident_id or not analysis_id:
            continue
        codec = codecs.get(incident_id) or codecs.setdefault(incident_id,
                                                             cipher.codec(incident_id))
        document = sealed_backup_document(codec, analysis_id, stored)
        write_private_file(path, orjson.dumps(document, option=orjson.OPT_INDENT_2))
        sealed += 1
    return sealed
