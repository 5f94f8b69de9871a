"""Which drift findings are repaired: the pure rule, without servers."""

from __future__ import annotations

import dataclasses

from syncd.drift import Finding, repairs
from syncd.plan import GroupChange
from syncd.store import GroupRecord

from .test_plan import ATTR, record, state, want

NOW = "2026-11-28T12:00:00+00:00"
LATER = "2026-11-28T13:00:00+00:00"
EARLIER = "2026-11-28T11:00:00+00:00"


def finding(kind: str, okta_id: str, field: str | None = None) -> Finding:
    return Finding(kind, "user", okta_id, okta_id, f"s-{okta_id}", field, None, None)


def test_a_quarantined_person_waits_for_its_next_try() -> None:
    a, b = want("00ua"), want("00ub")
    users = {
        "00ua": dataclasses.replace(record(a), retry_after=LATER, failures=5),
        "00ub": dataclasses.replace(record(b), retry_after=EARLIER, failures=5),  # due again
    }
    findings = [finding("missing", "00ua"), finding("missing", "00ub")]
    user_changes, _ = repairs(
        findings,
        users,
        {},
        desired=state(a, b),
        pushed={},
        members={},
        downstream={},
        role_attribute=ATTR,
        now=NOW,
    )
    assert [(c.action, c.okta_id) for c in user_changes] == [("create", "00ub")]


def test_a_person_out_of_step_or_with_nothing_applied_is_left_to_the_plan() -> None:
    a, b, c = want("00ua"), want("00ub"), want("00uc")
    users = {
        "00ua": record(want("00ua", login="old@example.com")),  # Okta renamed them since
        # a create cut short, then the person left: deactivated, what was created unknown
        "00ub": dataclasses.replace(record(b), active=False, applied=None),
        "00uc": record(c),
    }
    findings = [finding("role_mismatch", o, field="role") for o in users]
    user_changes, _ = repairs(
        findings,
        users,
        {},
        desired=state(a, c),
        pushed={},
        members={},
        downstream={},
        role_attribute=ATTR,
        now=NOW,
    )
    assert [(ch.action, ch.okta_id, ch.changed_fields) for ch in user_changes] == [
        ("update", "00uc", ("role",))
    ]


def test_a_group_gets_back_only_members_okta_still_wants_and_who_are_active() -> None:
    group = GroupRecord(
        "00g1",
        "sg1",
        "Team",
        None,
        0,
        None,
        members={"00ua": "sa", "00ub": "sb", "00uc": "sc"},
    )
    gone = Finding(
        "membership_mismatch",
        "group",
        "Team",
        "00g1",
        "sg1",
        "members",
        None,
        None,
        gone_members=("sa", "sb", "sc"),
    )

    def repair(found: Finding, record: GroupRecord) -> list[GroupChange]:
        return repairs(
            [found],
            {},
            {"00g1": record},
            desired=state(),
            pushed={"00g1": "Team"},
            role_attribute=ATTR,
            now=NOW,
            # 00ub left the group in Okta; 00uc is no longer active downstream.
            members={"00g1": frozenset({"00ua", "00uc"})},
            downstream={"00ua": "sa", "00ub": "sb"},
        )[1]

    assert [(g.okta_id, g.add) for g in repair(gone, group)] == [("00g1", ("00ua",))]

    missing = Finding("missing", "group", "Team", "00g1", "sg1", None, None, None)
    assert [(g.create, g.members) for g in repair(missing, group)] == [(True, ("00ua",))]

    assert repair(gone, dataclasses.replace(group, retry_after=LATER)) == []
