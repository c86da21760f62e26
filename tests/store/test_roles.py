"""Roles enforced at the Store's verbs, restricted incidents, and the refusals in the audit log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from store.access.roles import ROLE_ACTIONS, Action
from store.errors import AccessDenied, StoreError
from store.schemas import AnalysisIn
from store.store import RESTRICTED_TITLE, Store
from tests.conftest import make_record

USERS = {
    "vera": ("viewer", ()),
    "ana": ("analyst", ("red",)),
    "rita": ("lead", ("red",)),
    "bob": ("lead", ("blue",)),
    "ada": ("admin", ()),
}


def seen(result: Any) -> set[str]:
    """Every incident a similar result shows, near-duplicates folded into a hit included."""
    return {hit.incident_id for top in result.hits for hit in (top, *top.near_duplicate_hits)}


def record(incident_id: str, **overrides: Any) -> AnalysisIn:
    return AnalysisIn.model_validate(make_record(incident_id, **overrides))


@pytest.fixture
def team_store(store: Any) -> Any:
    """Three phishing incidents, INC-2 restricted to team red, and one user per role."""
    store.save_many([(f"r{n}", record(f"INC-{n}")) for n in (1, 2, 3)])
    for name, (role, teams) in USERS.items():
        store.add_user(name, role, teams)
    store.restrict_incident("INC-2", ["red"])
    return store


@pytest.fixture
def open_as(team_store: Any) -> Iterator[Callable[[str], Any]]:
    opened: list[Any] = []

    def opener(name: str) -> Any:
        other = Store.open(team_store.settings, actor=name)
        opened.append(other)
        return other

    yield opener
    for other in opened:
        other.close()


VERBS: dict[Action, Callable[[Any], Any]] = {
    Action.LIST: lambda s: s.incidents_page(limit=10),
    Action.USAGE: lambda s: s.usage_by_model(),
    Action.SIMILAR: lambda s: s.similar(text="phishing invoice macro"),
    Action.READ: lambda s: s.analyses("INC-1"),
    Action.EXPORT: lambda s: s.authorise_export("INC-1", "test file"),
    Action.SAVE: lambda s: s.save_analysis(record("INC-9")),
    Action.READ_AUDIT: lambda s: s.audit_entries(limit=1),
    Action.RESTRICT: lambda s: s.restrict_incident("INC-3", []),
    Action.MAINTAIN: lambda s: s.clear_cache("similar"),
    Action.MANAGE_USERS: lambda s: s.users(),
    Action.KEYS: lambda s: s.keys_status(),
    Action.PURGE: lambda s: s.forget(["INC-3"]),  # no one in USERS holds the permission
}
CASES = [(name, action) for name in USERS for action in VERBS]


@pytest.mark.parametrize(("name", "action"), CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_each_role_against_each_verb(open_as: Callable[[str], Any], name: str,
                                     action: Action) -> None:
    store = open_as(name)
    allowed = action in ROLE_ACTIONS[USERS[name][0]]
    if allowed:
        VERBS[action](store)
        return
    with pytest.raises(AccessDenied, match=f"^access denied: {name} .* may not {action}"):
        VERBS[action](store)
    last = store.audit.entries()[-1]
    assert (last.actor, last.action, last.outcome) == (name, str(action), "denied")


@pytest.mark.parametrize("name", sorted(USERS))
def test_a_retention_dry_run_is_for_those_who_maintain_the_store(
        open_as: Callable[[str], Any], name: str) -> None:
    store = open_as(name)
    if Action.MAINTAIN in ROLE_ACTIONS[USERS[name][0]]:
        assert store.purge_candidates() == []  # no retention policy set: nothing is due
        return
    with pytest.raises(AccessDenied, match=f"^access denied: {name} .* may not maintain"):
        store.purge_candidates()


def test_a_user_the_store_does_not_know_may_do_nothing(open_as: Callable[[str], Any]) -> None:
    stranger = open_as("mallory")
    assert stranger.actor.role is None
    for action, verb in VERBS.items():
        with pytest.raises(AccessDenied, match=f"mallory \\(no role\\) may not {action}"):
            verb(stranger)


def test_the_creator_is_admin_and_the_last_admin_stays(team_store: Any) -> None:
    assert team_store.actor.role == "admin" and team_store.actor.can_purge
    team_store.add_user("ada", "viewer")
    with pytest.raises(StoreError, match="no admin left"):
        team_store.add_user(team_store.actor.name, "viewer")


def test_purging_is_a_separate_permission_of_leads_and_admins(team_store: Any,
                                                             open_as: Callable[[str], Any]
                                                             ) -> None:
    with pytest.raises(StoreError, match="only a lead or an admin can purge"):
        team_store.add_user("ana", "analyst", ["red"], can_purge=True)
    assert not open_as("rita").actor.may(Action.PURGE)
    team_store.add_user("rita", "lead", ["red"], can_purge=True)
    assert open_as("rita").actor.may(Action.PURGE)


def test_role_changes_are_audited(team_store: Any) -> None:
    changes = [e for e in team_store.audit.entries() if e.action == "role_change"]
    assert [e.detail.split(":")[0] for e in changes[1:]] == list(USERS)


@pytest.mark.parametrize("name", ["ana", "bob", "vera"])
def test_a_restricted_incident_keeps_its_text_from_others(open_as: Callable[[str], Any],
                                                          name: str) -> None:
    other = open_as(name)
    rows = {row.incident_id: row for row in other.incidents_page(limit=10).rows}
    assert rows["INC-2"].title == RESTRICTED_TITLE
    assert rows["INC-2"].latest_severity == "high"
    assert rows["INC-1"].title == "Phishing wave INC-1"
    filtered = other.incidents_page(limit=10, query="phishing").rows
    assert "INC-2" not in {row.incident_id for row in filtered}
    assert "INC-2" not in {row.incident_id for row in other.find_incidents("Phishing wave")}
    for verb in (other.incident, other.analyses, other.open_incident):
        with pytest.raises(AccessDenied):
            verb("INC-2")
    with pytest.raises(AccessDenied):
        other.similar(incident_id="INC-2")
    assert "INC-2" not in seen(other.similar(text="phishing invoice macro", k=10))


@pytest.mark.parametrize("name", ["rita", "ada"])
def test_its_teams_lead_and_admins_read_it(open_as: Callable[[str], Any], name: str) -> None:
    reader = open_as(name)
    assert reader.incident("INC-2") is not None
    assert {row.incident_id: row.title for row in reader.incidents_page(limit=10).rows
            }["INC-2"] == "Phishing wave INC-2"
    assert "INC-2" in seen(reader.similar(text="phishing invoice macro", k=10))


def test_a_cached_similar_answer_never_reaches_another_team(open_as: Callable[[str], Any]
                                                             ) -> None:
    rita, bob = open_as("rita"), open_as("bob")
    first = rita.similar(incident_id="INC-1", k=10)
    assert "INC-2" in seen(first)
    assert rita.similar(incident_id="INC-1", k=10).from_cache
    answer = bob.similar(incident_id="INC-1", k=10)
    assert not answer.from_cache
    assert "INC-2" not in seen(answer)
    rita.warm_similar(["INC-3"])
    assert "INC-2" not in seen(bob.similar(incident_id="INC-3", k=10))


def test_an_analyst_cannot_overwrite_a_restricted_incident(open_as: Callable[[str], Any]
                                                           ) -> None:
    ana = open_as("ana")
    result = ana.save_analysis(record("INC-2", analysis={"summary": "rewritten"}))
    assert result.status == "error" and "access denied" in (result.error or "")
    assert ana.audit.entries()[-2].outcome == "denied"


def test_sensitive_reads_and_exports_are_audited(open_as: Callable[[str], Any]) -> None:
    ana = open_as("ana")
    ana.incident("INC-1")
    ana.analyses("INC-1")
    ana.open_incident("INC-1")
    ana.authorise_export("INC-1", "clipboard copy")
    ana.similar(text="phishing")
    ana.incidents_page(limit=10)
    mine = [(e.action, e.incident_id) for e in ana.audit.entries(actor="ana")]
    assert mine == [("read_incident", "INC-1"), ("read_analyses", "INC-1"), ("open", "INC-1"),
                    ("export", "INC-1"), ("similar", None)]
    assert ana.audit.verify().ok


def test_one_audit_event_per_saved_batch(team_store: Any) -> None:
    before = len(team_store.audit.entries())
    team_store.save_many([(f"r{n}", record(f"B-{n}")) for n in range(20)])
    events = team_store.audit.entries()[before:]
    assert [(e.action, e.detail) for e in events] == [("save", "20 saved, 0 duplicate, 0 failed")]


def test_a_forget_without_the_purge_permission_is_denied_and_audited(
        open_as: Callable[[str], Any]) -> None:
    rita = open_as("rita")  # a lead, but without the purge permission
    with pytest.raises(AccessDenied, match="rita .* may not purge on 1 incidents"):
        rita.forget(["INC-1"])
    last = rita.audit.entries()[-1]
    assert (last.actor, last.action, last.outcome) == ("rita", "purge", "denied")
    assert "INC-1" in {row.incident_id for row in rita.incidents_page(limit=10).rows}


def test_a_permitted_forget_audits_its_tombstone_and_no_incident_text(
        team_store: Any, open_as: Callable[[str], Any]) -> None:
    team_store.add_user("rita", "lead", ["red"], can_purge=True)
    rita = open_as("rita")
    detail = rita.incident("INC-1")
    report = rita.forget(["INC-1", "INC-404"])
    assert report.incidents == 1
    events = [e for e in rita.audit.entries() if e.action == "purge"]
    assert [(e.actor, e.outcome, e.incident_id) for e in events] == [("rita", "allowed", None)]
    assert events[0].detail.startswith("forget: tombstone ")
    assert "1 analyses" in events[0].detail
    for text in ("INC-1", detail.title, detail.description, detail.initial_findings):
        assert text not in events[0].detail
    with rita.engine.connect() as connection:  # the tombstone names the store's actor
        assert connection.exec_driver_sql("SELECT purged_by FROM purge_tombstones").scalars(
            ).all() == ["rita"]


@pytest.mark.parametrize(("name", "role"), [("rita", "lead"), ("ana", "analyst")])
def test_key_operations_are_for_admins_and_audited(team_store: Any,
                                                   open_as: Callable[[str], Any],
                                                   name: str, role: str) -> None:
    with pytest.raises(AccessDenied, match=f"{name} .* may not keys"):
        open_as(name).rotate_keys()
    key_id = team_store.rotate_keys()
    last = team_store.audit.entries()[-1]
    assert (last.action, last.outcome, last.detail) == ("keys_rotate", "allowed",
                                                        f"new primary key {key_id}")


@pytest.mark.parametrize(("name", "visible"), [("vera", 2), ("ana", 2), ("bob", 2),
                                               ("rita", 3), ("ada", 3)])
def test_a_filtered_count_equals_the_rows_the_list_shows(open_as: Callable[[str], Any],
                                                         name: str, visible: int) -> None:
    other = open_as(name)
    for query in ("phishing", "Phishing wave INC-2", "severity:high"):
        shown = other.incidents_page(limit=10, query=query).rows
        assert other.count_incidents(query) == len(shown)
    assert other.count_incidents("phishing") == visible
    assert other.count_incidents() == 3  # unfiltered, the restricted one is listed, untitled
