"""The journal: the logical log of saved analyses, one JSON Lines file per UTC day.

Besides analyses it holds other writes as record lines of their own (`entry`: see
entries.py), and a forget line per purged incident (the keyed hash of its id as its tombstone
has it, the purge's time and reason, nothing else): a restore replays them in time order.

Order of a save (Store.save_batch): the batch's record lines are appended and fsynced
*before* its database transaction; after the commit a commit line names the batch (and any
record that did not land), written but not fsynced: the next batch's fsync, Store.close() or
`resolve_unfinished` makes it durable. So a record reported saved always has its line on disk
before its commit, a batch that rolled back never replays (it has no commit line, or an abort
line), and one fsync per batch is the whole cost. A writer killed between its fsync and its
commit line leaves an unfinished batch: `resolve_unfinished` settles it from the database
(its analyses are there or not), so kill -9 never turns a rolled-back batch into a replayed one.

Invariants: every line carries its own checksum (blake2b over the line without it), so a
torn or altered line is found and named, never replayed; record bodies are sealed with their
incident's data key when the store seals (ids, times and the checksum stay clear), else they
pass the store-wide codec; a sealed body is opened only when it is read (replay, drill), so
scanning needs no key, and one whose key was deleted (a forgotten incident) raises
BodyForgotten, which a replay counts and skips; files and folders are owner-only; appends of
one batch are one write under an exclusive lock, after a torn tail left by a killed writer has
been cut off with a newline;
the first line of a day file names the previous day file, so a missing day is detected.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from store.backup.codec import (
    SEALED_BODY,
    BodyForgotten,
    BodySealer,
    Codec,
    PlainCodec,
    codec_named,
)
from store.fileio import PRIVATE_FILE_MODE, fsync_path, pid_alive, private_directory

JOURNAL_FOLDER = "journal"
PRUNED_MARKER = "PRUNED-BEFORE"
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_SUM_FIELD = b',"sum":"'
FORMAT = 1
log = logging.getLogger("incidex.store")
_BATCH_FIELD = re.compile(rb'"batch":"([0-9]+-[0-9a-f]+)"')
ANALYSIS_ENTRY = "analysis"
SEALED_ENTRIES = frozenset({ANALYSIS_ENTRY, "incident"})


class LineDamaged(ValueError):
    """A journal line whose checksum is missing or does not match."""


def journal_directory(backups: Path) -> Path:
    """The folder of the daily journal files."""
    return backups / JOURNAL_FOLDER


def day_path(directory: Path, day: date) -> Path:
    """The journal file of one UTC day."""
    return directory / f"{day.isoformat()}.jsonl"


def journal_days(directory: Path) -> list[date]:
    """The days that have a journal file, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    days = [date.fromisoformat(found.group(1)) for name in names
            if (found := _DAY_FILE.match(name))]
    return sorted(days)


def encode_line(fields: dict[str, Any]) -> bytes:
    """One journal line: the fields as JSON with a checksum of that JSON as its last field."""
    body = orjson.dumps(fields)
    digest = hashlib.blake2b(body, digest_size=16).hexdigest().encode()
    return body[:-1] + _SUM_FIELD + digest + b'"}\n'


def decode_line(raw: bytes) -> dict[str, Any]:
    """The fields of one journal line; LineDamaged when it is torn or altered."""
    line = raw.rstrip(b"\n")
    head, separator, tail = line.rpartition(_SUM_FIELD)
    if not separator or not tail.endswith(b'"}') or not head.startswith(b"{"):
        raise LineDamaged("no checksum at its end (a torn or truncated line)")
    body = head + b"}"
    expected = hashlib.blake2b(body, digest_size=16).hexdigest().encode()
    if tail[:-2] != expected:
        raise LineDamaged("its checksum does not match (altered or corrupted bytes)")
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise LineDamaged(f"not JSON ({error})") from None
    if not isinstance(fields, dict):
        raise LineDamaged("not a JSON object")
    return fields


def encode_body(body: dict[str, Any], codec: Codec) -> Any:
    """A record body as stored: the object itself (plain), else its codec bytes in base64."""
    if codec.name == PlainCodec.name:
        return body
    return base64.b64encode(codec.encode(orjson.dumps(body))).decode("ascii")


def entry_of(body: dict[str, Any]) -> str:
    """What a record body stands for: an analysis (the default), or another write (see
    entries.py: an incident added without an analysis, usage rows, a restriction)."""
    return str(body.get("entry", ANALYSIS_ENTRY))


def _sealable(body: dict[str, Any]) -> bool:
    """Bodies holding incident text are sealed with their incident's key; the others (usage
    numbers, restrictions) hold ids and numbers only, kept readable after a forget."""
    return entry_of(body) in SEALED_ENTRIES


def record_lines(bodies: list[dict[str, Any]], head: dict[str, Any], codec: Codec,
                 sealer: BodySealer | None) -> list[bytes]:
    """The record lines of a batch: each body holding incident text sealed with its
    incident's key when the sealer seals, else passed through the codec; `head` holds the
    batch's fields. A body's `analysis_id` is its record id (`entry:<uuid>` for entries
    other than analyses)."""
    sealing = sealer is not None and sealer.sealing
    chosen = [n for n, body in enumerate(bodies) if sealing and _sealable(body)]
    sealed: dict[int, tuple[str, bytes]] = {}
    if chosen and sealer is not None:
        sealed = dict(zip(chosen, sealer.seal_bodies(
            [(str(bodies[n]["incident"]["incident_id"]), bodies[n]["analysis_id"],
              orjson.dumps(bodies[n])) for n in chosen]), strict=True))
    lines = []
    for number, body in enumerate(bodies):
        fields: dict[str, Any] = {**head, "n": number, "analysis_id": body["analysis_id"]}
        if entry_of(body) != ANALYSIS_ENTRY:
            fields["entry"] = entry_of(body)
        if number in sealed:
            key_id, blob = sealed[number]
            fields.update({"incident_id": str(body["incident"]["incident_id"]),
                           "codec": SEALED_BODY, "key_id": key_id,
                           "body": base64.b64encode(blob).decode("ascii")})
        else:
            fields.update({"codec": codec.name, "body": encode_body(body, codec)})
        lines.append(encode_line(fields))
    return lines


def open_record_body(fields: dict[str, Any], codec: Codec, sealer: BodySealer | None
                     ) -> dict[str, Any]:
    """The body of a record line; BodyForgotten when its incident's key was deleted,
    ValueError (naming the key id) when it cannot be read otherwise."""
    if fields["codec"] != SEALED_BODY:
        return decode_body(fields["body"], fields["codec"], codec)
    if sealer is None:
        raise ValueError(f"body sealed with data key {fields.get('key_id')}, but no keyring "
                         "is at hand")
    plain = sealer.open_body(str(fields["incident_id"]), str(fields["analysis_id"]),
                             base64.b64decode(fields["body"], validate=True))
    body = orjson.loads(plain)
    if not isinstance(body, dict):
        raise ValueError("a body that is not an object")
    return body


def decode_body(stored: Any, codec_name: str, codec: Codec) -> dict[str, Any]:
    """A record body back as an object; ValueError when the codec cannot read it."""
    if codec_name == PlainCodec.name:
        if not isinstance(stored, dict):
            raise ValueError("a plain body that is not an object")
        return stored
    plain = codec_named(codec_name, codec).decode(base64.b64decode(stored))
    body = orjson.loads(plain)
    if not isinstance(body, dict):
        raise ValueError("a body that is not an object")
    return body


def iso(moment: datetime) -> str:
    """A UTC instant as ISO 8601 text with microseconds (sortable, exact)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """An ISO 8601 instant as a UTC datetime (naive text is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class BatchTicket:
    """A batch whose record lines are on disk and whose commit line is still to come."""

    batch_id: str
    path: Path
    analysis_ids: tuple[str, ...]


class Journal:
    """Appends batches to the day's journal file; one instance per store, thread-safe."""

    def __init__(self, directory: Path, codec: Codec | None = None,
                 clock: Callable[[], datetime] | None = None,
                 mirrors: Iterable[Path] = ()) -> None:
        self.directory = directory
        # Journal folders of the mirrors: every line goes there too, best effort (a mirror
        # that fails is caught up by the next `backup now`, from this folder).
        self.mirrors = list(mirrors)
        self.mirror_faults: list[str] = []
        self.codec: Codec = codec or PlainCodec()
        # Seals each body with its incident's data key (set by the store; None: no keyring).
        self.sealer: BodySealer | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._unsynced: set[Path] = set()
        self._lock = threading.Lock()

    def begin(self, bodies: list[dict[str, Any]], at: datetime | None = None) -> BatchTicket:
        """Append one record line per body to the day file of `at` (now) and fsync: the lines
        are durable on return.

        OSError (a full disk, no permission) means nothing of the batch may be committed."""
        now = at or self._clock()
        batch_id = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
        lines = record_lines(bodies, {"kind": "record", "batch": batch_id, "at": iso(now)},
                             self.codec, self.sealer)
        path = day_path(self.directory, now.date())
        self._append(path, b"".join(lines), now)
        with self._lock:
            self._unsynced.discard(path)
        fsync_path(path)
        self._sync_mirrors(path)
        return BatchTicket(batch_id, path, tuple(body["analysis_id"] for body in bodies))

    def commit(self, ticket: BatchTicket, saved: Iterable[str], at: datetime | None = None
               ) -> None:
        """Record that the batch committed with these analyses (the others did not land)."""
        landed = set(saved)
        failed = [n for n, analysis_id in enumerate(ticket.analysis_ids)
                  if analysis_id not in landed]
        self._mark(ticket, {"kind": "commit", "batch": ticket.batch_id,
                            "records": len(ticket.analysis_ids), "failed": failed,
                            "at": iso(at or self._clock())})

    def abort(self, ticket: BatchTicket) -> None:
        """Record that the batch's transaction did not commit: its lines never replay."""
        self._mark(ticket, {"kind": "abort", "batch": ticket.batch_id,
                            "at": iso(self._clock())})

    def _mark(self, ticket: BatchTicket, fields: dict[str, Any]) -> None:
        # Into the batch's own file, even past midnight: a missing day loses whole batches.
        self._append(ticket.path, encode_line(fields), self._clock())
        with self._lock:
            self._unsynced.add(ticket.path)

    def sync(self) -> None:
        """Make commit lines written since the last fsync durable (at close)."""
        with self._lock:
            pending, self._unsynced = self._unsynced, set()
        for path in pending:
            try:
                fsync_path(path)
            except FileNotFoundError:
                continue
            self._sync_mirrors(path)

    def _sync_mirrors(self, path: Path) -> None:
        for mirror in self.mirrors:
            try:
                fsync_path(mirror / path.name)
            except OSError as error:
                self._mirror_fault(mirror, error)

    def _mirror_fault(self, mirror: Path, error: OSError) -> None:
        fault = f"mirror {mirror}: {error.strerror or error}"
        if fault not in self.mirror_faults:
            self.mirror_faults.append(fault)
            log.warning("journal %s (it is caught up at the next backup)", fault)

    def forgotten(self, marks: Iterable[ForgetMark]) -> None:
        """Append a forget line per purged incident (its keyed hash, as its tombstone has it,
        and the purge's time, nothing else) to the day file of its time; durable on return."""
        by_path: dict[Path, list[bytes]] = {}
        for mark in marks:
            by_path.setdefault(day_path(self.directory, mark.at.date()), []).append(
                encode_line({"kind": "forget", "incident_hash": mark.incident_hash,
                             "reason": mark.reason, "at": iso(mark.at)}))
        for path, lines in sorted(by_path.items()):
            self._append(path, b"".join(lines), self._clock())
            fsync_path(path)
            self._sync_mirrors(path)

    def append_settled(self, bodies: list[dict[str, Any]], committed_at: datetime) -> None:
        """Append a batch known to be committed (folded legacy files), durable on return."""
        ticket = self.begin(bodies, at=committed_at)
        self.commit(ticket, ticket.analysis_ids, at=committed_at)
        self.sync()

    def _append(self, path: Path, payload: bytes, now: datetime) -> None:
        """One write of payload at the end of path (and of each mirror's copy), under an
        exclusive lock on path; a new day file starts with a line naming the previous one."""
        with locked_day_file(path) as descriptor:
            _write_at_end(descriptor, path, payload, now)
            for mirror in self.mirrors:
                try:
                    with locked_day_file(mirror / path.name) as copy:
                        _write_at_end(copy, mirror / path.name, payload, now)
                except OSError as error:
                    self._mirror_fault(mirror, error)


@contextmanager
def locked_day_file(path: Path) -> Iterator[int]:
    """A day file opened for appending (created owner-only), under an exclusive lock."""
    if not path.parent.is_dir():
        private_directory(path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield descriptor
    finally:
        os.close(descriptor)


def _write_at_end(descriptor: int, path: Path, payload: bytes, now: datetime) -> None:
    size = os.fstat(descriptor).st_size
    if size == 0:
        payload = _opening_line(path, now) + payload
        fsync_path(path.parent)
    elif os.pread(descriptor, 1, size - 1) != b"\n":
        # A killed writer's torn line: end it here, so ours starts on a line of its own.
        payload = b"\n" + payload
    view = memoryview(payload)
    while view:
        view = view[os.write(descriptor, view):]


def _opening_line(path: Path, now: datetime) -> bytes:
    day = date.fromisoformat(path.name.removesuffix(".jsonl"))
    earlier = [d for d in journal_days(path.parent) if d < day]
    return encode_line({"kind": "open", "day": day.isoformat(),
                        "previous": earlier[-1].isoformat() if earlier else None,
                        "format": FORMAT, "at": iso(now)})


# Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Damage:
    """Something wrong in the journal, precise enough to act on."""

    where: str
    problem: str
    # Damage only matters to a restore reaching past this instant (None: any restore).
    after: datetime | None
    # The batch a damaged line names in its readable part, if it does.
    batch_id: str | None = None
    # Whether `after` is the damaged batch's own commit time (else a lower bound of it).
    exact: bool = False

    def __str__(self) -> str:
        return f"journal {self.where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ForgetMark:
    """A purged incident as the journal has it: the keyed hash of its id, when, and why."""

    incident_hash: str
    at: datetime
    reason: str = "forget"


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One record line, readable; a sealed body is opened each time `body` is read."""

    number: int
    analysis_id: str
    # The body itself, or the fields of a line whose body is sealed with its incident's key.
    stored: dict[str, Any]
    where: str
    sealed: bool = False
    sealer: BodySealer | None = None
    entry: str = ANALYSIS_ENTRY

    @property
    def body(self) -> dict[str, Any]:
        """The body; BodyForgotten when its incident's key was deleted, ValueError naming
        the line and the key id when it cannot be opened otherwise."""
        if not self.sealed:
            return self.stored
        try:
            return open_record_body(self.stored, PlainCodec(), self.sealer)
        except BodyForgotten:
            raise
        except ValueError as error:
            raise ValueError(f"journal {self.where}: {error}") from None


@dataclass(slots=True)
class JournalBatch:
    """The lines of one batch and how it ended."""

    batch_id: str
    intent_at: datetime
    path: Path
    records: list[JournalRecord] = field(default_factory=list)
    committed_at: datetime | None = None
    aborted: bool = False
    failed: tuple[int, ...] = ()
    expected_records: int | None = None

    def landed(self) -> list[JournalRecord]:
        """The records the database committed."""
        return [r for r in self.records if r.number not in self.failed]


@dataclass(slots=True)
class JournalScan:
    """Every batch found in a range of days, and what could not be read."""

    batches: dict[str, JournalBatch] = field(default_factory=dict)
    damage: list[Damage] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    lines: int = 0
    # Damaged lines that cost nothing (named in warnings, never blocking a restore).
    notes: list[str] = field(default_factory=list)
    damaged_lines: dict[str, list[str]] = field(default_factory=dict)
    sealer: BodySealer | None = None
    # Purged incidents (forget lines), in file order.
    forgets: list[ForgetMark] = field(default_factory=list)

    def committed(self, after: datetime | None = None, until: datetime | None = None
                  ) -> list[JournalBatch]:
        """Committed batches with after < commit time <= until, in commit order."""
        chosen = [b for b in self.batches.values() if b.committed_at is not None
                  and (after is None or b.committed_at > after)
                  and (until is None or b.committed_at <= until)]
        return sorted(chosen, key=lambda b: (b.committed_at, b.batch_id))

    def forgets_between(self, after: datetime | None, until: datetime | None
                        ) -> list[ForgetMark]:
        """Forget lines with after < time <= until, oldest first."""
        return sorted((m for m in self.forgets if (after is None or m.at > after)
                       and (until is None or m.at <= until)), key=lambda m: m.at)

    def unfinished(self) -> list[JournalBatch]:
        """Batches with record lines but neither a commit nor an abort line."""
        return [b for b in self.batches.values() if b.committed_at is None and not b.aborted]

    def damage_between(self, after: datetime | None, until: datetime | None) -> list[Damage]:
        """The damage a replay of the batches committed in (after, until] runs into."""
        return [d for d in self.damage
                if (until is None or d.after is None or d.after <= until)
                and not (d.exact and after is not None and d.after is not None
                         and d.after < after)]


def scan(directory: Path, codec: Codec | None = None, since: date | None = None,
         until: date | None = None, sealer: BodySealer | None = None) -> JournalScan:
    """Read every day file in [since, until], checking each line, the batches' record counts
    and the chain of days; sealed bodies are opened with `sealer` when they are read."""
    codec = codec or PlainCodec()
    result = JournalScan(sealer=sealer)
    days = [d for d in journal_days(directory)
            if (since is None or d >= since) and (until is None or d <= until)]
    for day in days:
        path = day_path(directory, day)
        result.files.append(path)
        _scan_file(path, codec, result)
    _date_line_damage(result)
    _check_counts(result)
    _check_chain(directory, days, result)
    return result


def _date_line_damage(result: JournalScan) -> None:
    """A damaged line whose readable part names its batch is explained by that batch: if
    the batch committed, the record count check below says what was lost (with the batch's
    commit time); if it never committed (a writer killed mid-append, whose lines are never
    replayed), nothing was lost. Only lines naming no batch stay damage dated from the last
    good line before them."""
    kept = []
    for damage in result.damage:
        if damage.batch_id is None:
            kept.append(damage)
            continue
        batch = result.batches.get(damage.batch_id)
        result.damaged_lines.setdefault(damage.batch_id, []).append(
            f"{damage.where}: {damage.problem}")
        state = ("committed: its record count is checked" if batch and batch.committed_at
                 else "never committed: nothing of it is replayed")
        result.notes.append(f"{damage}; batch {damage.batch_id} {state}")
    result.damage = kept


def _scan_file(path: Path, codec: Codec, result: JournalScan) -> None:
    last_good: datetime | None = None
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            result.lines += 1
            where = f"{path.name} line {number}"
            try:
                fields = decode_line(raw)
                last_good = _take_line(fields, path, where, codec, result) or last_good
            except (LineDamaged, ValueError, KeyError, TypeError) as error:
                found = _BATCH_FIELD.search(raw)
                batch_id = found.group(1).decode() if found else None
                result.damage.append(Damage(where, str(error), last_good, batch_id))


def _take_line(fields: dict[str, Any], path: Path, where: str, codec: Codec,
               result: JournalScan) -> datetime | None:
    kind = fields.get("kind")
    at = parse_time(fields["at"])
    if kind == "open":
        return at
    if kind == "forget":
        result.forgets.append(ForgetMark(str(fields["incident_hash"]), at,
                                         str(fields.get("reason", "forget"))))
        return at
    batch = result.batches.get(fields["batch"])
    if batch is None:
        batch = result.batches[fields["batch"]] = JournalBatch(fields["batch"], at, path)
    if kind == "record":
        batch.records.append(_record(fields, where, codec, result.sealer))
    elif kind == "commit":
        batch.committed_at = at
        batch.failed = tuple(int(n) for n in fields.get("failed", ()))
        batch.expected_records = int(fields["records"])
    elif kind == "abort":
        batch.aborted = True
    else:
        raise ValueError(f"unknown line kind {kind!r}")
    return at


def _record(fields: dict[str, Any], where: str, codec: Codec, sealer: BodySealer | None
            ) -> JournalRecord:
    number, analysis_id = int(fields["n"]), str(fields["analysis_id"])
    entry = str(fields.get("entry", ANALYSIS_ENTRY))
    if fields["codec"] == SEALED_BODY:
        for name in ("incident_id", "key_id", "body"):
            if not isinstance(fields.get(name), str):
                raise ValueError(f"a sealed body without its {name}")
        return JournalRecord(number, analysis_id, fields, where, sealed=True, sealer=sealer,
                             entry=entry)
    return JournalRecord(number, analysis_id, decode_body(fields["body"], fields["codec"], codec),
                         where, entry=entry)


def open_all(records: Iterable[JournalRecord]) -> tuple[int, list[str]]:
    """Open every sealed body: how many are forgotten (their key deleted), and a line per
    body that does not open otherwise (another keyring, altered bytes)."""
    forgotten, problems = 0, []
    for record in records:
        if not record.sealed:
            continue
        try:
            record.body  # noqa: B018 - opening it is the check
        except BodyForgotten:
            forgotten += 1
        except ValueError as error:
            problems.append(str(error))
    return forgotten, problems


def _check_counts(result: JournalScan) -> None:
    """A committed batch missing some record lines names them (their lines were damaged)."""
    for batch in result.batches.values():
        if batch.committed_at is None or batch.expected_records is None:
            continue
        present = {r.number for r in batch.records}
        lost = [n for n in range(batch.expected_records)
                if n not in present and n not in batch.failed]
        if lost:
            lines = result.damaged_lines.get(batch.batch_id) or ["lines missing"]
            result.damage.append(Damage(
                "; ".join(lines),
                f"{len(lost)} of {batch.expected_records} records of batch {batch.batch_id} "
                f"committed at {iso(batch.committed_at)} are unreadable",
                batch.committed_at - timedelta(microseconds=1), batch.batch_id, exact=True))


def _check_chain(directory: Path, days: list[date], result: JournalScan) -> None:
    horizon = pruned_before(directory)
    present = set(journal_days(directory))
    for day in days:
        path = day_path(directory, day)
        try:
            with open(path, "rb") as handle:
                opening = decode_line(handle.readline())
        except (OSError, LineDamaged):
            continue  # the damaged line itself is already reported
        previous = opening.get("previous")
        if previous is None:
            continue
        missing = date.fromisoformat(previous)
        if missing not in present and (horizon is None or missing >= horizon):
            start = datetime.combine(missing, datetime.min.time(), UTC)
            result.damage.append(Damage(
                f"{missing.isoformat()}.jsonl",
                f"the day file is missing (named by {path.name} as the day before it)",
                start - timedelta(microseconds=1)))


def resolve_unfinished(journal: Journal, stored_ids: Callable[[list[str]], set[str]],
                       since: date | None = None) -> int:
    """Settle batches whose writer died between its record lines and its commit line: the
    database says which of their analyses committed; how many batches were settled.

    A batch of a writer still running is left alone (its transaction may yet commit)."""
    settled = 0
    for batch in scan(journal.directory, journal.codec, since=since).unfinished():
        if _writer_alive(batch.batch_id):
            continue
        numbered = {r.number: r.analysis_id for r in batch.records}
        ids = tuple(numbered.get(n, "") for n in range(max(numbered, default=-1) + 1))
        present = stored_ids([i for i in ids if i])
        ticket = BatchTicket(batch.batch_id, batch.path, ids)
        if present:
            journal.commit(ticket, present, at=batch.intent_at)
        else:
            journal.abort(ticket)
        settled += 1
    journal.sync()
    return settled


def _writer_alive(batch_id: str) -> bool:
    pid_text = batch_id.split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    return pid_alive(int(pid_text))


@dataclass(slots=True)
class IncidentLines:
    """An incident's record lines in the journal: sealed with its key, or in clear."""

    sealed: int = 0
    clear: int = 0


def incident_lines(directory: Path, incident_ids: Iterable[str] | None
                   ) -> dict[str, IncidentLines]:
    """How many record lines of each incident (None: of every incident) the journal holds,
    sealed and clear (read without opening any body: sealed lines name their incident)."""
    wanted = None if incident_ids is None else set(incident_ids)
    found = {incident_id: IncidentLines() for incident_id in wanted or ()}
    for fields in _lines_of_kind(directory, b'"kind":"record"'):
        _count_line(fields, wanted, found)
    return found


def _lines_of_kind(directory: Path, marker: bytes, since: date | None = None
                   ) -> Iterator[dict[str, Any]]:
    """The decoded lines holding `marker` (their kind) in the day files since `since`;
    damaged ones are left out (the checks that report damage read the journal themselves)."""
    for day in journal_days(directory):
        if since is not None and day < since:
            continue
        with open(day_path(directory, day), "rb") as handle:
            for raw in handle:
                if marker not in raw:
                    continue
                try:
                    yield decode_line(raw)
                except LineDamaged:
                    continue


def _count_line(fields: dict[str, Any], wanted: set[str] | None,
                found: dict[str, IncidentLines]) -> None:
    sealed = fields.get("codec") == SEALED_BODY
    body = fields.get("body")
    if sealed:
        incident_id = fields.get("incident_id")
    elif isinstance(body, dict):
        incident_id = (body.get("incident") or {}).get("incident_id")
    else:
        return  # a body through another store-wide codec: its incident is not readable here
    if not isinstance(incident_id, str) or (wanted is not None and incident_id not in wanted):
        return
    counts = found.setdefault(incident_id, IncidentLines())
    if sealed:
        counts.sealed += 1
    else:
        counts.clear += 1


def forget_marks(directory: Path, since: date | None = None) -> set[tuple[str, datetime]]:
    """(keyed hash, time) of every readable forget line in the day files since `since`."""
    found: set[tuple[str, datetime]] = set()
    for fields in _lines_of_kind(directory, b'"kind":"forget"', since):
        try:
            found.add((str(fields["incident_hash"]), parse_time(fields["at"])))
        except (KeyError, ValueError):
            continue
    return found


def resolve_forgets(journal: Journal, tombstones: Iterable[ForgetMark], since: date) -> int:
    """Journal the tombstones (purged since `since`) that have no forget line: a purge whose
    process died after its commit and before its lines; how many were written."""
    present = forget_marks(journal.directory, since)
    missing = [stone for stone in tombstones
               if (stone.incident_hash, stone.at) not in present]
    if missing:
        journal.forgotten(missing)
    return len(missing)


def pruned_before(directory: Path) -> date | None:
    """The first day retention kept: files of earlier days were removed on purpose."""
    try:
        return date.fromisoformat((directory / PRUNED_MARKER).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def first_line_time(path: Path) -> datetime | None:
    """When a journal file was started (its opening line), None if that line is damaged."""
    try:
        with open(path, "rb") as handle:
            return parse_time(decode_line(handle.readline())["at"])
    except (OSError, LineDamaged, KeyError, ValueError):
        return None
