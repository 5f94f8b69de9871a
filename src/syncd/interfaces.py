"""The small interfaces the engine depends on, so that a dry run or a test can swap a part.

The engine never imports the Okta or SCIM clients: it takes anything shaped like
:class:`OktaSource` and :class:`ScimTarget` (after slashdevops/idp-scim-sync's core, which
depends only on interfaces).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from syncd.errors import OktaRecordError
from syncd.okta.models import AppUser, Group, GroupAssignment, User


class OktaSource(Protocol):
    """Where the desired state comes from: one Okta app's assignments."""

    def app_users(self) -> AsyncIterator[AppUser | OktaRecordError]: ...

    def group_assignments(self) -> AsyncIterator[GroupAssignment | OktaRecordError]: ...

    def group_members(self, group_id: str) -> AsyncIterator[User | OktaRecordError]: ...

    def groups(
        self, *, search: str | None = None, q: str | None = None
    ) -> AsyncIterator[Group | OktaRecordError]: ...


class ScimTarget(Protocol):
    """Where the changes go: a SCIM 2.0 service provider."""

    async def create_user(self, resource: Mapping[str, Any]) -> dict[str, Any]: ...

    async def replace_user(self, scim_id: str, resource: Mapping[str, Any]) -> dict[str, Any]: ...

    async def find_user(self, user_name: str) -> dict[str, Any] | None: ...

    async def set_active(self, scim_id: str, active: bool) -> None: ...


class GroupTarget(Protocol):
    """The SCIM group operations Push Groups needs."""

    async def find_group(self, display_name: str) -> dict[str, Any] | None: ...

    async def create_group(self, resource: Mapping[str, Any]) -> dict[str, Any]: ...

    async def patch_group(self, scim_id: str, operations: list[dict[str, Any]]) -> None: ...

    async def delete_group(self, scim_id: str) -> None: ...


class DriftSource(Protocol):
    """Reads every resource of a SCIM server (for drift detection)."""

    def list_users(self, page_size: int = ...) -> AsyncIterator[dict[str, Any]]: ...

    def list_groups(self, page_size: int = ...) -> AsyncIterator[dict[str, Any]]: ...


class ScimService(ScimTarget, GroupTarget, DriftSource, Protocol):
    """A SCIM server for users and groups (what the engine writes to and checks)."""
