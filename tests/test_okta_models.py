"""syncd's Okta models accept real recorded Okta responses (tests/data/okta-recordings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from syncd.errors import OktaRecordError
from syncd.okta.models import AppUser, Group, GroupAssignment, User, parse_record

RECORDINGS = Path(__file__).parent / "data" / "okta-recordings"


def exchange(name: str) -> Any:
    return json.loads((RECORDINGS / name).read_text())


def recording(name: str) -> Any:
    return exchange(name)["body"]


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("list-users-page.json", User),
        ("list-group-users.json", User),
        ("list-groups.json", Group),
        ("list-app-groups.json", GroupAssignment),
    ],
)
def test_recorded_lists_parse(name: str, model: type[Any]) -> None:
    body = recording(name)
    records = body if isinstance(body, list) else [body]
    assert records
    for raw in records:
        parsed = parse_record(model, raw, kind="record")
        assert parsed.id == raw["id"]


def test_recorded_user_fields() -> None:
    user = parse_record(User, recording("user.json"), kind="user")
    assert user.profile.login == "John.Doe-Get@example.com"
    assert (user.profile.firstName, user.profile.lastName) == ("John", "Doe-Get")


def test_recorded_app_users_without_expand_are_rejected_by_name() -> None:
    # The recording was made without expand=user; syncd always asks for it, and a response
    # without the embedded user cannot be synced: it is named, not silently used.
    raw = recording("list-app-users.json")[0]
    with pytest.raises(
        OktaRecordError, match=rf"app user {raw['id']}: missing required field: _embedded"
    ):
        parse_record(AppUser, raw, kind="app user")
    embedded = {**raw, "_embedded": {"user": recording("user.json")}}
    assert parse_record(AppUser, embedded, kind="app user").scope == "USER"


def test_unknown_fields_are_ignored() -> None:
    raw = {**recording("user.json"), "brandNewOktaField": {"x": 1}}
    assert parse_record(User, raw, kind="user").id == raw["id"]


def test_record_without_id_is_named_by_position() -> None:
    with pytest.raises(OktaRecordError, match=r"group #7: missing required field: id"):
        parse_record(Group, {"profile": {"name": "x"}}, kind="group", position=7)


def test_recorded_link_headers_paginate() -> None:
    import httpx

    from syncd.okta.http import next_link
    from syncd.okta.ratelimit import seconds_until_reset

    for name, expected in [
        ("list-users-page.json", True),
        ("list-app-groups.json", False),
    ]:
        ex = exchange(name)
        method, url = ex["request"].split(" ", 1)
        headers = [
            (k, v)
            for k, values in ex["headers"].items()
            for v in (values if isinstance(values, list) else [values])
        ]
        response = httpx.Response(ex["status"], headers=headers, request=httpx.Request(method, url))
        link = next_link(response)
        assert (link is not None) == expected
        if link:
            assert link.startswith("https://test.okta.com/api/v1/users?after=")
        assert seconds_until_reset(response.headers) is not None
