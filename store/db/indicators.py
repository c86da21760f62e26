"""Reading the incident_indicators table: which incidents hold an indicator, how rare it is.

Invariants: values are compared exactly, in the canonical form store.indicators gives them;
rarity is an inverse document frequency over the incidents of the store, so an indicator that
half the store holds weighs little and one that two incidents share weighs much. When the
store encrypts at rest, the table holds each value's blind-index token (keyed, see
store.crypto.blind_index), never the value: callers pass and get clear values, and the
mapping happens here, so an indicator is as secret as the sealed text it came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable

from sqlalchemy import Connection, func, select

from store.crypto import cipher_of
from store.db.models import Incident, IncidentIndicator, table_of

MAX_HOLDERS = 1000  # incidents fetched per indicator; a commoner one only re-weighs candidates
_CHUNK = 500
_INDICATORS = table_of(IncidentIndicator).c


def stored_form(connection: Connection) -> Callable[[str], str]:
    """How a clear indicator value is stored: its blind-index token under the store's cipher,
    else the value itself."""
    cipher = cipher_of(connection)
    return (lambda value: value) if cipher is None else cipher.index.indicator_token


def _stored(connection: Connection, values: Iterable[str]) -> dict[str, str]:
    """{stored form: clear value} for these values."""
    form = stored_form(connection)
    return {form(value): value for value in values}


def rarity(connection: Connection, values: Collection[str]) -> dict[str, float]:
    """The weight of each value that some incident holds: ln(1 + incidents / holders)."""
    if not values:
        return {}
    incidents = connection.execute(select(func.max(table_of(Incident).c.id))).scalar() or 1
    clear_of = _stored(connection, values)
    holders: dict[str, int] = {}
    for chunk in _chunks(sorted(clear_of)):
        holders.update(connection.execute(
            select(_INDICATORS.value, func.count())
            .where(_INDICATORS.value.in_(chunk)).group_by(_INDICATORS.value)).all())
    return {clear_of[stored]: math.log(1.0 + max(incidents, count) / count)
            for stored, count in holders.items()}


def holders_of(connection: Connection, weights: dict[str, float]) -> dict[str, set[str]]:
    """The incidents holding each indicator not held by more than MAX_HOLDERS, as
    {incident_id: shared values}, rarest indicators first."""
    shared: dict[str, set[str]] = {}
    form = stored_form(connection)
    for value in sorted(weights, key=weights.__getitem__, reverse=True):
        holders = connection.execute(
            select(_INDICATORS.incident_id).where(_INDICATORS.value == form(value))
            .limit(MAX_HOLDERS + 1)).scalars().all()
        if len(holders) <= MAX_HOLDERS:
            for incident_id in holders:
                shared.setdefault(incident_id, set()).add(value)
    return shared


def shared_with(connection: Connection, incident_ids: Iterable[str], values: Collection[str]
                ) -> dict[str, dict[str, str]]:
    """For each incident, the given indicator values it holds, as {incident_id: {value: kind}}."""
    found: dict[str, dict[str, str]] = {}
    ids = sorted(set(incident_ids))
    if not ids or not values:
        return found
    clear_of = _stored(connection, values)
    wanted = sorted(clear_of)
    for id_chunk in _chunks(ids):
        for value_chunk in _chunks(wanted):
            for incident_id, stored, kind in connection.execute(
                    select(_INDICATORS.incident_id, _INDICATORS.value, _INDICATORS.kind)
                    .where(_INDICATORS.incident_id.in_(id_chunk),
                           _INDICATORS.value.in_(value_chunk))):
                found.setdefault(incident_id, {})[clear_of[stored]] = kind
    return found


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
