"""Further copies of the backups (INCIDEX_BACKUP_MIRRORS): other folders, disks or mounts.

Each mirror is a backups folder of its own (`journal/`, `snapshots/`), readable by
`incidex backup restore --from MIRROR` with nothing else at hand. Journal lines reach every
mirror as they are written (journal.py); snapshots are copied after they are taken, each
file checked against the manifest's checksum before the copy is renamed into place, and
`catch_up` copies whatever a mirror missed while it was away.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from store.backup.frames import file_sha256
from store.backup.journal import (
    Journal,
    day_path,
    journal_days,
    journal_directory,
    locked_day_file,
)
from store.backup.s3 import S3Mirror, is_s3, s3_mirrors
from store.backup.snapshots import (
    INCOMING,
    MANIFEST,
    Snapshot,
    list_snapshots,
    snapshots_directory,
)
from store.fileio import fsync_path, private_directory
from store.locations import backups_directory

if TYPE_CHECKING:
    from store.settings import Settings


def mirror_directories(settings: Settings) -> list[Path]:
    """The mirrors' backups folders, absolute (never the primary itself; buckets aside)."""
    primary = backups_directory(settings)
    mirrors = [Path(m).expanduser().resolve() for m in settings.backup_mirrors
               if not is_s3(m)]
    return [m for m in mirrors if m != primary]


def bucket_mirrors(settings: Settings) -> list[S3Mirror]:
    """The S3-compatible bucket mirrors (s3://bucket/prefix)."""
    return s3_mirrors(settings.backup_mirrors, settings.backup_s3_endpoint)


def journal_of(settings: Settings) -> Journal:
    """The store's journal, writing to the primary folder and every mirror."""
    return Journal(journal_directory(backups_directory(settings)),
                   mirrors=[journal_directory(m) for m in mirror_directories(settings)])


def catch_up(backups: Path, mirrors: list[Path]) -> list[str]:
    """Copy to each mirror the snapshots and journal days it lacks or holds differently;
    a problem per mirror that could not be brought up to date."""
    problems = []
    for mirror in mirrors:
        try:
            for snapshot in list_snapshots(backups):
                if snapshot.good and not has_copy(mirror, snapshot):
                    copy_snapshot(snapshot, mirror)
            _copy_journal(backups, mirror)
        except (OSError, ValueError) as error:
            problems.append(f"mirror {mirror}: {getattr(error, 'strerror', None) or error}")
    return problems


def has_copy(mirror: Path, snapshot: Snapshot) -> bool:
    """Whether the mirror holds this snapshot whole (its manifest and every file's size)."""
    copies = {s.snapshot_id: s for s in list_snapshots(mirror)}
    copy = copies.get(snapshot.snapshot_id)
    return copy is not None and copy.good and copy.manifest == snapshot.manifest


def copy_snapshot(snapshot: Snapshot, mirror: Path) -> None:
    """Copy one snapshot folder, checking each file's checksum, then rename it into place."""
    incoming = private_directory(snapshots_directory(mirror) / INCOMING)
    work = incoming / f".tmp-{os.getpid()}-{snapshot.snapshot_id}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        for name, entry in snapshot.manifest["files"].items():
            shutil.copyfile(snapshot.path / name, work / name)
            os.chmod(work / name, 0o600)
            if file_sha256(work / name) != entry["sha256"]:
                raise ValueError(f"the copy of {snapshot.snapshot_id}/{name} does not match "
                                 "its checksum")
            fsync_path(work / name)
        shutil.copyfile(snapshot.path / MANIFEST, work / MANIFEST)
        os.chmod(work / MANIFEST, 0o600)
        fsync_path(work / MANIFEST)
        final = snapshots_directory(mirror) / snapshot.snapshot_id
        shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
        fsync_path(final.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _copy_journal(backups: Path, mirror: Path) -> None:
    """Replace each mirror day file that differs from the primary's (under the day's lock,
    so no line is appended in between)."""
    source_folder = journal_directory(backups)
    target_folder = private_directory(journal_directory(mirror))
    for day in journal_days(source_folder):
        source = day_path(source_folder, day)
        target = day_path(target_folder, day)
        with locked_day_file(source):
            if target.exists() and file_sha256(target) == file_sha256(source):
                continue
            temp = target_folder / f".tmp-{os.getpid()}-{target.name}"
            shutil.copyfile(source, temp)
            os.chmod(temp, 0o600)
            fsync_path(temp)
            os.replace(temp, target)
    fsync_path(target_folder)
