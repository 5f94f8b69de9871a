"""Reads of one Okta app: its assigned people, its group assignments, group members, schema.

Every listing streams page by page at Okta's largest page size and yields typed records. A
malformed record does not stop the listing: it is yielded as an
:class:`~syncd.errors.OktaRecordError` naming the record and the field, so the caller can skip
that one record (and leave that person untouched) while processing the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from syncd.errors import OktaRecordError
from syncd.okta.http import OktaHttp
from syncd.okta.models import AppUser, AppUserSchema, Group, GroupAssignment, User, parse_record

# Okta's largest page sizes (okta-api.md; the OpenAPI spec).
APP_USERS_PAGE = 500
APP_GROUPS_PAGE = 200
GROUP_MEMBERS_PAGE = 1000
GROUPS_PAGE = 10000


class OktaReader:
    """Typed, paginated reads of one Okta app (``app_id``) over an :class:`OktaHttp`."""

    def __init__(self, http: OktaHttp, app_id: str) -> None:
        self.http = http
        self.app_id = app_id
        self._app_path = f"/api/v1/apps/{quote(app_id, safe='')}"

    def __repr__(self) -> str:
        return f"OktaReader(app_id={self.app_id!r}, http={self.http!r})"

    @property
    def requests(self) -> int:
        """Requests sent to Okta so far (all families)."""
        return self.http.stats.total

    async def app(self) -> dict[str, Any]:
        """The app itself (``GET /api/v1/apps/{appId}``): raises OktaNotFoundError if absent."""
        data, _ = await self.http.get_json(self._app_path)
        return data if isinstance(data, dict) else {}

    async def app_users(self) -> AsyncIterator[AppUser | OktaRecordError]:
        """Everyone assigned to the app, with their Okta user embedded (``expand=user``)."""
        params: dict[str, str | int] = {"expand": "user", "limit": APP_USERS_PAGE}
        position = 0
        async for page in self.http.pages(f"{self._app_path}/users", params):
            for raw in page:
                position += 1
                yield _parse(AppUser, raw, "app user", position)

    async def group_assignments(self) -> AsyncIterator[GroupAssignment | OktaRecordError]:
        """The app's group assignments with their priority, profile and embedded group."""
        params: dict[str, str | int] = {"expand": "group", "limit": APP_GROUPS_PAGE}
        position = 0
        async for page in self.http.pages(f"{self._app_path}/groups", params):
            for raw in page:
                position += 1
                yield _parse(GroupAssignment, raw, "group assignment", position)

    async def group_members(self, group_id: str) -> AsyncIterator[User | OktaRecordError]:
        """The members of one group (``GET /api/v1/groups/{id}/users``, 1,000 a page)."""
        path = f"/api/v1/groups/{quote(group_id, safe='')}/users"
        position = 0
        async for page in self.http.pages(path, {"limit": GROUP_MEMBERS_PAGE}):
            for raw in page:
                position += 1
                yield _parse(User, raw, f"member of group {group_id}", position)

    async def groups(
        self, *, search: str | None = None, q: str | None = None
    ) -> AsyncIterator[Group | OktaRecordError]:
        """Groups of the org, optionally narrowed by an Okta ``search`` expression or ``q``."""
        params: dict[str, str | int] = {"limit": GROUPS_PAGE}
        if search:
            params["search"] = search
        if q:
            params["q"] = q
        position = 0
        async for page in self.http.pages("/api/v1/groups", params):
            for raw in page:
                position += 1
                yield _parse(Group, raw, "group", position)

    async def group(self, group_id: str) -> Group:
        """One group by id (raises OktaNotFoundError if it does not exist)."""
        data, _ = await self.http.get_json(f"/api/v1/groups/{quote(group_id, safe='')}")
        return parse_record(Group, data, kind="group")

    async def groups_named(self, name: str) -> list[Group]:
        """The groups whose name is exactly ``name`` (Okta allows duplicates)."""
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        found: list[Group] = []
        async for item in self.groups(search=f'profile.name eq "{escaped}"'):
            if isinstance(item, Group) and item.profile.name == name:
                found.append(item)
        return found

    async def app_user_schema(self) -> AppUserSchema:
        """The app user schema: the custom role attribute, its scope and enumerated roles."""
        data, _ = await self.http.get_json(
            f"/api/v1/meta/schemas/apps/{quote(self.app_id, safe='')}/default"
        )
        return AppUserSchema.from_json(data if isinstance(data, dict) else {})


def _parse(model: Any, raw: Any, kind: str, position: int) -> Any:
    try:
        return parse_record(model, raw, kind=kind, position=position)
    except OktaRecordError as exc:
        return exc
