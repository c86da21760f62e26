"""Journal lines: any JSON round-trips, any changed or cut byte is caught; the codec seam."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from store.backup.journal import LineDamaged, decode_line, encode_line, journal_directory
from store.backup.restore import drop_postgres_database
from store.backup.service import Backups
from store.errors import BackupFailed
from store.schemas import AnalysisIn
from store.settings import Settings
from store.store import Store
from tests.conftest import make_record

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
FIELDS = st.dictionaries(st.text(min_size=1), JSON, min_size=1, max_size=6)


@given(FIELDS)
def test_any_fields_round_trip(fields: dict[str, Any]) -> None:
    line = encode_line(fields)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_line(line) == fields


@given(FIELDS, st.data())
@hypothesis_settings(max_examples=300)
def test_any_changed_or_cut_byte_is_caught(fields: dict[str, Any], data: st.DataObject) -> None:
    line = encode_line(fields)[:-1]
    position = data.draw(st.integers(0, len(line) - 1))
    changed = bytearray(line)
    changed[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(LineDamaged):
        decode_line(bytes(changed))
    with pytest.raises(LineDamaged):
        decode_line(line[:position])


class XorCodec:
    """A stand-in for the encryption codec: reversible, and not the plain bytes."""

    name = "xor-test"

    def encode(self, data: bytes) -> bytes:
        return bytes(byte ^ 0x5A for byte in data)

    def decode(self, data: bytes) -> bytes:
        return bytes(byte ^ 0x5A for byte in data)

    def key_ids(self) -> list[str]:
        return ["test-key-1"]


def test_journal_and_snapshots_go_through_the_codec(settings: Settings) -> None:
    """A store that does not seal passes journal bodies through the store-wide codec too (a
    sealing one seals them with their incidents' keys: tests/store/test_encryption.py)."""
    with Store.open(settings.model_copy(update={"encrypt_at_rest": False})) as store:
        _through_the_codec(store)


def _through_the_codec(store: Store) -> None:
    backups = Backups(store, codec=XorCodec())
    store.save_batch([("a", AnalysisIn.model_validate(make_record("SECRET-1")))])
    snapshot = backups.now()
    store.save_batch([("b", AnalysisIn.model_validate(make_record("SECRET-2")))])
    journal = b"".join(p.read_bytes() for p in journal_directory(store.backups).iterdir())
    assert b"Phishing wave" not in journal and b'"codec":"xor-test"' in journal
    for path in snapshot.path.glob("*.zst"):
        assert b"Phishing wave" not in path.read_bytes()
    assert snapshot.manifest["codec"] == "xor-test"
    assert snapshot.manifest["key_ids"] == ["test-key-1"]
    report = backups.restore(datetime.now(UTC))
    try:
        with Store.open(report.settings, create=False) as restored:
            assert restored.summary().analyses == 2
    finally:
        if report.settings.database_url:
            drop_postgres_database(report.settings)
    with pytest.raises(BackupFailed, match="written with codec 'xor-test', but only 'plain'"):
        Backups(store).restore(datetime.now(UTC))


def test_one_journal_fsync_per_batch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.backup.journal as journal

    synced: list[str] = []
    real = journal.fsync_path

    def counting(path: Any) -> None:
        synced.append("folder" if path.is_dir() else "file")
        real(path)

    monkeypatch.setattr(journal, "fsync_path", counting)
    for batch in range(3):
        store.save_batch([(f"{batch}-{n}", AnalysisIn.model_validate(
            make_record(f"FS-{batch}-{n}"))) for n in range(50)])
    # One fsync of the day file per batch (its first also syncs the new file's folder);
    # commit lines ride on the next batch's fsync, or close().
    assert synced.count("file") == 3 and synced.count("folder") <= 1
