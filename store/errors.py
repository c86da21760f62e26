"""Errors the store raises; each carries a one-line message fit for an analyst."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error incidex's store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database (or another required service) cannot be opened."""


class SettingsInvalid(StoreError):
    """A setting, the config file or one of its keys is wrong; the message names which."""


class RecordError(StoreError):
    """One input record is invalid; the message names the record and the field."""

    def __init__(self, record: str, field: str, problem: str) -> None:
        self.record = record
        self.field = field
        self.problem = problem
        where = f"{record}: {field}" if field else record
        super().__init__(f"{where}: {problem}")


class EmbedderMismatch(StoreError):
    """The configured embedder differs from the one the stored vectors were made with."""


class InvalidVector(StoreError):
    """A vector that cannot be searched (NULL, empty, NaN, wrong length) was about to be stored."""

    def __init__(self, analysis_pk: int, problem: str) -> None:
        self.analysis_pk = analysis_pk
        self.problem = problem
        super().__init__(f"analysis {analysis_pk}: vector: {problem}")


class PiiKeyMismatch(StoreError):
    """The PII pseudonym key differs from the one the store's vectors were made with."""


class BackupFailed(StoreError):
    """A backup, restore or drill could not be done; the message names the file and the fault."""


class AccessDenied(StoreError):
    """The actor's role does not allow an action; the message names the actor and the action."""

    def __init__(self, actor: str, action: str, target: str | None = None) -> None:
        self.actor = actor
        self.action = action
        self.target = target
        on = f" on {target}" if target else ""
        super().__init__(f"access denied: {actor} may not {action}{on}")


class BodyForgotten(ValueError):
    """A sealed journal body whose incident's data key is gone (the incident was forgotten)."""
