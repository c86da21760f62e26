"""An S3-compatible bucket as a backups mirror (`s3://bucket/prefix` in INCIDEX_BACKUP_MIRRORS).

The bucket holds the layout of a backups folder under its prefix (`journal/<day>.jsonl`,
`snapshots/<id>/<file>`), written through boto3 (the optional extra `incidex[s3]`); the
endpoint is INCIDEX_BACKUP_S3_ENDPOINT or boto3's own (AWS_ENDPOINT_URL), the keys boto3's
usual AWS_* variables. Objects are immutable, so journal lines are not streamed to a bucket
as to a folder: every `backup now`, `backup sync` and `run-due` uploads the snapshots and the
journal days the bucket lacks or holds differently.

Invariants: every object is sent with its SHA-256 (the server refuses a body that does not
match) and checked after the upload (its size and the server's checksum), a snapshot's
manifest is uploaded last, so a snapshot without its manifest is never taken for one; what
is fetched back is checked against the manifest's checksums (snapshot files) or the object's
(journal days) before a restore reads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from store.backup.journal import (
    JOURNAL_FOLDER,
    PRUNED_MARKER,
    day_path,
    journal_days,
    journal_directory,
    locked_day_file,
    parse_time,
)
from store.backup.snapshots import MANIFEST, SNAPSHOTS_FOLDER, Snapshot, list_snapshots
from store.errors import BackupFailed
from store.fileio import private_directory, write_private_file

SCHEME = "s3://"
SHA_META = "sha256"


def is_s3(location: str | os.PathLike[str]) -> bool:
    """Whether a mirror or `--from` names a bucket rather than a folder."""
    return str(location).startswith(SCHEME)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing says of one object."""

    size: int


@dataclass(slots=True)
class S3Mirror:
    """One bucket and prefix; the client is made on first use."""

    bucket: str
    prefix: str
    endpoint: str | None = None
    _client: Any = field(default=None, repr=False)
    _inventory: dict[str, ObjectInfo] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, location: str, endpoint: str | None = None) -> S3Mirror:
        """`s3://bucket/prefix` (the prefix may be empty); BackupFailed naming it if not."""
        rest = str(location)[len(SCHEME):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise BackupFailed(f"backup mirror {location!r}: no bucket (s3://bucket/prefix)")
        return cls(bucket, prefix.strip("/"), endpoint)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else \
            f"{SCHEME}{self.bucket}"

    @property
    def client(self) -> Any:
        """The boto3 client (BackupFailed when boto3 is not installed)."""
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise BackupFailed(f"backup mirror {self}: boto3 is not installed "
                                   "(pip install 'incidex[s3]')") from None
            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint,
                region_name=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get(
                    "AWS_REGION") or "us-east-1",
                config=Config(retries={"max_attempts": 2, "mode": "standard"},
                              connect_timeout=5, read_timeout=60))
        return self._client

    def key(self, relative: str) -> str:
        """The object key of a path relative to a backups folder."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    # Listing -------------------------------------------------------------------------------

    def inventory(self, refresh: bool = False) -> dict[str, ObjectInfo]:
        """Every object under the prefix, by path relative to it (one listing, cached)."""
        if self._inventory is not None and not refresh:
            return self._inventory
        found: dict[str, ObjectInfo] = {}
        start = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                found[item["Key"][len(start):]] = ObjectInfo(int(item["Size"]))
        self._inventory = found
        return found

    def has_snapshot(self, snapshot: Snapshot) -> bool:
        """Whether the bucket holds the snapshot's manifest and every file at its size."""
        held = self.inventory()
        base = f"{SNAPSHOTS_FOLDER}/{snapshot.snapshot_id}/"
        if base + MANIFEST not in held:
            return False
        return all(held.get(base + name, ObjectInfo(-1)).size == int(entry["bytes"])
                   for name, entry in snapshot.manifest["files"].items())

    def has_journal_day(self, path: Path) -> bool:
        """Whether the bucket holds this journal day file at its current size."""
        held = self.inventory().get(f"{JOURNAL_FOLDER}/{path.name}")
        return held is not None and held.size == path.stat().st_size

    # Uploading -----------------------------------------------------------------------------

    def push(self, backups: Path) -> None:
        """Upload the snapshots and journal days the bucket lacks or holds differently."""
        self.inventory(refresh=True)
        for snapshot in list_snapshots(backups):
            if snapshot.good and not self.has_snapshot(snapshot):
                self._push_snapshot(snapshot)
        folder = journal_directory(backups)
        for day in journal_days(folder):
            path = day_path(folder, day)
            with locked_day_file(path):  # no line is appended while it is read
                data = path.read_bytes()
            relative = f"{JOURNAL_FOLDER}/{path.name}"
            if self._same(relative, data):
                continue
            self._put(relative, data)
        marker = folder / PRUNED_MARKER
        if marker.exists():
            self._put(f"{JOURNAL_FOLDER}/{PRUNED_MARKER}", marker.read_bytes())
        self._inventory = None

    def _same(self, relative: str, data: bytes) -> bool:
        held = self.inventory().get(relative)
        if held is None or held.size != len(data):
            return False
        head = self.client.head_object(Bucket=self.bucket, Key=self.key(relative))
        return bool(head.get("Metadata", {}).get(SHA_META) == hashlib.sha256(data).hexdigest())

    def _push_snapshot(self, snapshot: Snapshot) -> None:
        for name, entry in snapshot.manifest["files"].items():
            data = (snapshot.path / name).read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise BackupFailed(f"snapshot {snapshot.snapshot_id}: {name} does not match its "
                                   "checksum; not copied to " + str(self))
            self._put(f"{SNAPSHOTS_FOLDER}/{snapshot.snapshot_id}/{name}", data)
        self._put(f"{SNAPSHOTS_FOLDER}/{snapshot.snapshot_id}/{MANIFEST}",
                  (snapshot.path / MANIFEST).read_bytes())

    def _put(self, relative: str, data: bytes) -> None:
        """Upload one object with its SHA-256, then check what the server holds: its own
        SHA-256 when it keeps one, else its ETag (the MD5 of a single-part upload), else the
        bytes read back."""
        digest = hashlib.sha256(data)
        checksum = base64.b64encode(digest.digest()).decode("ascii")
        key = self.key(relative)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                               ChecksumSHA256=checksum, Metadata={SHA_META: digest.hexdigest()})
        head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        held = head.get("ChecksumSHA256")
        if held is not None:
            same = held == checksum
        elif head.get("ETag", "").strip('"') == hashlib.md5(data, usedforsecurity=False
                                                            ).hexdigest():
            same = True
        else:  # an ETag that is no MD5 (server-side encryption with KMS): read it back
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            same = hashlib.sha256(answer["Body"].read()).digest() == digest.digest()
        if int(head["ContentLength"]) != len(data) or not same:
            raise BackupFailed(f"{self}/{relative}: the uploaded copy does not match its "
                               "checksum")

    # Fetching ------------------------------------------------------------------------------

    def fetch(self, target: Path, to: datetime | None = None) -> Path:
        """Download into `target` (a new private folder) what a restore to `to` (None: the
        latest) reads: the journal, every manifest and the files of the newest snapshot taken
        before `to`; each file checked. The folder, laid out as a backups folder."""
        private_directory(target)
        held = self.inventory(refresh=True)
        for relative in sorted(held):
            if relative.startswith(f"{JOURNAL_FOLDER}/"):
                self._get(relative, target, expected=None)
        manifests = {}
        for relative in sorted(r for r in held if r.startswith(f"{SNAPSHOTS_FOLDER}/")
                               and r.endswith(f"/{MANIFEST}")):
            snapshot_id = relative.split("/")[1]
            manifests[snapshot_id] = json.loads(self._get(relative, target, expected=None))
        chosen = _newest_before(manifests, to)
        if chosen is not None:
            for name, entry in manifests[chosen]["files"].items():
                self._get(f"{SNAPSHOTS_FOLDER}/{chosen}/{name}", target, entry["sha256"])
        return target

    def _get(self, relative: str, target: Path, expected: str | None) -> bytes:
        answer = self.client.get_object(Bucket=self.bucket, Key=self.key(relative))
        data = answer["Body"].read()
        digest = hashlib.sha256(data).hexdigest()
        wanted = expected or answer.get("Metadata", {}).get(SHA_META)
        if wanted is not None and digest != wanted:
            raise BackupFailed(f"{self}/{relative}: does not match its checksum (a changed or "
                               "corrupted copy)")
        path = target / relative
        private_directory(path.parent)
        write_private_file(path, data)
        return data


def _newest_before(manifests: dict[str, dict[str, Any]], to: datetime | None) -> str | None:
    usable = sorted((parse_time(m["taken_at"]), snapshot_id)
                    for snapshot_id, m in manifests.items()
                    if to is None or parse_time(m["taken_at"]) <= to)
    return usable[-1][1] if usable else None


def s3_mirrors(locations: Iterable[str], endpoint: str | None) -> list[S3Mirror]:
    """The bucket mirrors among the configured mirror locations."""
    return [S3Mirror.parse(str(location), endpoint) for location in locations
            if is_s3(location)]
