"""The SCIM resources syncd sends, built from plain values.

A user is sent as Okta's SCIM 2.0 provisioning sends it: core User schema, ``externalId`` = the
Okta user id, ``userName`` = the Okta login, ``name``, ``displayName``, one work email marked
primary, ``active``, and the role id as a top-level attribute of the core schema (the custom
attribute's external namespace, as Vanta/WorkOS require).
"""

from __future__ import annotations

from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def user_resource(
    *,
    okta_id: str,
    user_name: str,
    given_name: str | None,
    family_name: str | None,
    display_name: str | None,
    email: str | None,
    active: bool,
    role_attribute: str,
    role_id: str | None,
) -> dict[str, Any]:
    """The SCIM User for one person. Keys with no value are left out, never sent as null."""
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "externalId": okta_id,
        "userName": user_name,
    }
    name = {k: v for k, v in (("givenName", given_name), ("familyName", family_name)) if v}
    if name:
        resource["name"] = name
    if display_name:
        resource["displayName"] = display_name
    if email:
        resource["emails"] = [{"value": email, "type": "work", "primary": True}]
    resource["active"] = active
    if role_id:
        resource[role_attribute] = role_id
    return resource


def group_resource(*, okta_id: str, display_name: str) -> dict[str, Any]:
    """The SCIM Group for one pushed Okta group, created empty (members are PATCHed in)."""
    return {
        "schemas": [GROUP_SCHEMA],
        "externalId": okta_id,
        "displayName": display_name,
        "members": [],
    }


def filter_eq(attribute: str, value: str) -> str:
    """A SCIM filter ``attribute eq "value"`` with the value escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} eq "{escaped}"'


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    """A SCIM PatchOp message."""
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
