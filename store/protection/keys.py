"""Keys over the rows: which KEK protects how many rows, rotation, checks, and sealing a
clear-text store in place."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from store.crypto import KeyUnavailable, StoreCipher, is_sealed
from store.db.engine import read_connection, write_transaction
from store.db.models import Analysis, Incident, IncidentIndicator, table_of
from store.db.queries import open_stored
from store.errors import StoreError
from store.fileio import write_private_file
from store.indicators import indicators_of_incident
from store.protection.purge import compact, secure_delete

Progress = Callable[[int, int], None]
CHUNK = 200
CHECKPOINT_FILE = "reencrypt.checkpoint"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key-encryption key: is it primary, present, and what does it protect."""

    key_id: str
    primary: bool
    present: bool
    data_keys: int
    rows: int


@dataclass(frozen=True, slots=True)
class KeysStatus:
    """The keyring against the store."""

    keyring: str
    key_database: str
    keys: list[KeyInfo]
    clear_rows: int
    sealing: bool


@dataclass(slots=True)
class CheckReport:
    """What `keys check` found."""

    rows_checked: int = 0
    problems: list[str] = field(default_factory=list)


def keys_status(engine: Engine, cipher: StoreCipher) -> KeysStatus:
    """Key ids, which is primary, how many data keys and rows each protects."""
    datakeys = cipher.datakeys
    kek_of = {key_id.hex(): kek for key_id, kek in datakeys.kek_of_keys().items()}
    rows: Counter[str] = Counter()
    clear = 0
    with read_connection(engine) as connection:
        for table in (table_of(Incident), table_of(Analysis)):
            for key_id, count in connection.execute(
                    select(table.c.key_id, func.count()).group_by(table.c.key_id)):
                if key_id is None:
                    clear += count
                else:
                    rows[kek_of.get(key_id, "?")] += count
    counts = datakeys.counts_by_kek()
    present = set(cipher.keyring.key_ids())
    primary = cipher.keyring.primary_id()
    listed = sorted(present | set(counts) | {k for k in rows if k != "?"})
    keys = [KeyInfo(key_id, key_id == primary, key_id in present, counts.get(key_id, 0),
                    rows.get(key_id, 0)) for key_id in listed]
    return KeysStatus(str(cipher.keyring.directory), str(cipher.datakeys_path), keys, clear,
                      cipher.sealing)


def rotate_keys(engine: Engine, cipher: StoreCipher) -> str:
    """A new primary KEK, and every data key rewrapped with it; the new key's id."""
    cipher.keyring.ensure()
    new_key = cipher.keyring.create_key()
    cipher.keyring.set_primary(new_key)
    cipher.datakeys.rewrap_all()
    cipher.forget_keys()
    return new_key


def reencrypt_rows(engine: Engine, cipher: StoreCipher, progress: Progress | None = None
                   ) -> int:
    """Give every incident a new data key and reseal its rows with it, chunk by chunk;
    resumes after a kill from the checkpoint in the keyring. Retired data keys stay (wrapped
    by the primary) so that older backups remain readable; a purge deletes them all."""
    checkpoint = cipher.keyring.directory / CHECKPOINT_FILE
    after = _read_checkpoint(checkpoint)
    incidents = table_of(Incident).c
    with read_connection(engine) as connection:
        total = connection.execute(select(func.count()).select_from(table_of(Incident))
                                   ).scalar_one()
        done = connection.execute(select(func.count()).where(incidents.id <= after)
                                  ).scalar_one()
    while True:
        with read_connection(engine) as connection:
            chunk = connection.execute(
                select(incidents.id, incidents.incident_id).where(incidents.id > after)
                .order_by(incidents.id).limit(CHUNK)).all()
        if not chunk:
            checkpoint.unlink(missing_ok=True)
            return done
        ids = [row.incident_id for row in chunk]
        cipher.datakeys.replace_active(ids)
        _reseal(engine, cipher, ids)
        after = chunk[-1].id
        write_private_file(checkpoint, json.dumps({"after": after}).encode())
        done += len(chunk)
        if progress is not None:
            progress(done, total)


def encrypt_store(engine: Engine, cipher: StoreCipher, progress: Progress | None = None) -> int:
    """Seal every clear-text row in place, chunk by chunk (resumable: a run finds what is
    left); readers open clear and sealed rows alike meanwhile. How many incidents."""
    if not cipher.sealing:
        raise StoreError("keys encrypt-store: INCIDEX_ENCRYPT_AT_REST is off")
    incidents = table_of(Incident).c
    analyses = table_of(Analysis).c
    clear_incident = or_(incidents.key_id.is_(None), incidents.incident_id.in_(
        select(analyses.incident_id).where(analyses.key_id.is_(None))))
    with read_connection(engine) as connection:
        total = connection.execute(select(func.count()).where(clear_incident)).scalar_one()
    done = 0
    while True:
        with read_connection(engine) as connection:
            ids = list(connection.execute(select(incidents.incident_id).where(clear_incident)
                                          .order_by(incidents.id).limit(CHUNK)).scalars())
        if not ids:
            if done:
                compact(engine, rewrite_file=True)
            return done
        _reseal(engine, cipher, ids)
        done += len(ids)
        if progress is not None:
            progress(done, total)


def _reseal(engine: Engine, cipher: StoreCipher, incident_ids: Sequence[str]) -> None:
    """Open and seal again (with each incident's active data key) the text of these incidents
    and their analyses, and recompute their blind-index tokens and content hashes."""
    keys = cipher.write_keys(list(incident_ids))
    index = cipher.index
    with write_transaction(engine) as connection:
        secure_delete(connection)  # the clear text a row held is zeroed, not left in the page
        analyses_by_incident = _analysis_texts(connection, incident_ids)
        incidents = table_of(Incident)
        rows = connection.execute(select(incidents.c.incident_id, incidents.c.title,
                                         incidents.c.description,
                                         incidents.c.initial_findings, incidents.c.key_id)
                                  .where(incidents.c.incident_id.in_(incident_ids))).all()
        for row in rows:
            key = keys[row.incident_id]
            description = open_stored(connection, "incidents", "description", row.incident_id,
                                      row.description, row.key_id)
            findings = open_stored(connection, "incidents", "initial_findings",
                                   row.incident_id, row.initial_findings, row.key_id)
            texts = [description, findings]
            for analysis_id, text in analyses_by_incident.get(row.incident_id, []):
                texts.append(text)
                connection.execute(update(table_of(Analysis))
                                   .where(table_of(Analysis).c.analysis_id == analysis_id)
                                   .values(analysis_json=cipher.seal_field(
                                       key, "analyses", "analysis_json", analysis_id, text),
                                       content_hash=index.keyed_hash("analysis", text),
                                       key_id=key[0].hex()))
            connection.execute(update(incidents).where(
                incidents.c.incident_id == row.incident_id).values(
                description=cipher.seal_field(key, "incidents", "description",
                                              row.incident_id, description),
                initial_findings=cipher.seal_field(key, "incidents", "initial_findings",
                                                   row.incident_id, findings),
                key_id=key[0].hex(), search_terms=index.tokens(texts)))
            _store_indicators_as_tokens(connection, cipher, row.incident_id, row.title,
                                        description, findings, texts[2:])


def _store_indicators_as_tokens(connection: Connection, cipher: StoreCipher, incident_id: str,
                                title: str, description: str, findings: str,
                                analysis_texts: Sequence[str]) -> None:
    """The incident's indicator rows written again from its opened text, as keyed tokens: a
    clear-text store's rows held the values themselves."""
    table = table_of(IncidentIndicator)
    connection.execute(delete(table).where(table.c.incident_id == incident_id))
    found = indicators_of_incident(title, description, findings,
                                   [json.loads(text) for text in analysis_texts])
    if found:
        connection.execute(insert(table), [
            {"value": cipher.index.indicator_token(indicator.value),
             "incident_id": incident_id, "kind": indicator.kind} for indicator in found])


def _analysis_texts(connection: Connection, incident_ids: Sequence[str]
                    ) -> dict[str, list[tuple[str, str]]]:
    analyses = table_of(Analysis).c
    found: dict[str, list[tuple[str, str]]] = {}
    for row in connection.execute(select(analyses.incident_id, analyses.analysis_id,
                                         analyses.analysis_json, analyses.key_id)
                                  .where(analyses.incident_id.in_(incident_ids))):
        text = open_stored(connection, "analyses", "analysis_json", row.analysis_id,
                           row.analysis_json, row.key_id)
        found.setdefault(row.incident_id, []).append((row.analysis_id, text))
    return found


def check_keys(engine: Engine, cipher: StoreCipher, progress: Progress | None = None
               ) -> CheckReport:
    """Open every sealed value of the store and unwrap every data key; the problems found."""
    report = CheckReport()
    datakeys = cipher.datakeys
    for key_id in datakeys.kek_of_keys():
        try:
            datakeys.unwrap(next(iter(datakeys.keys_by_id([key_id]).values())))
        except KeyUnavailable as error:
            report.problems.append(str(error))
    cipher.forget_keys()
    for table, key_column, columns in (
            ("incidents", "incident_id", ("description", "initial_findings")),
            ("analyses", "analysis_id", ("analysis_json",))):
        _check_table(engine, cipher, table, key_column, columns, report, progress)
    return report


def _check_table(engine: Engine, cipher: StoreCipher, name: str, key_column: str,
                 columns: tuple[str, ...], report: CheckReport, progress: Progress | None
                 ) -> None:
    table = table_of(Incident if name == "incidents" else Analysis)
    after = 0
    while True:
        with read_connection(engine) as connection:
            rows = connection.execute(
                select(table.c.id, table.c[key_column], *(table.c[c] for c in columns))
                .where(table.c.id > after).order_by(table.c.id).limit(1000)).all()
        if not rows:
            return
        for row in rows:
            report.rows_checked += 1
            for column in columns:
                _check_value(cipher, name, column, row, key_column, report)
        after = rows[-1].id
        if progress is not None:
            progress(report.rows_checked, 0)


def _check_value(cipher: StoreCipher, table: str, column: str, row: Any, key_column: str,
                 report: CheckReport) -> None:
    stored = getattr(row, column)
    if not is_sealed(stored):
        return
    try:
        cipher.open_text(table, column, getattr(row, key_column), stored)
    except KeyUnavailable as error:
        report.problems.append(str(error))


def retire_key(cipher: StoreCipher, key_id: str) -> str:
    """Move a KEK that wraps no data key out of the keyring (into retired/); where to."""
    still = cipher.datakeys.counts_by_kek().get(key_id, 0)
    if still:
        raise StoreError(f"key {key_id}: still wraps {still:,} data keys (run `incidex keys "
                         "rotate` first)")
    return str(cipher.keyring.retire(key_id))


def _read_checkpoint(path: Any) -> int:
    try:
        return int(json.loads(path.read_text())["after"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0
