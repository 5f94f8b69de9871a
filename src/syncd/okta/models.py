"""Typed views of the Okta objects syncd reads (pydantic v2).

They keep only the fields syncd uses and ignore the rest, so that Okta adding fields never breaks
a sync. A record missing a required field is rejected by :func:`parse_record` with an
:class:`~syncd.errors.OktaRecordError` that names the record's id and the field.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from syncd.errors import OktaRecordError


class _OktaModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class UserProfile(_OktaModel):
    """The Okta user profile attributes syncd sends downstream."""

    login: str = Field(min_length=1)
    firstName: str | None = None
    lastName: str | None = None
    displayName: str | None = None
    email: str | None = None


class User(_OktaModel):
    """An Okta user (``GET /api/v1/users``, ``/groups/{id}/users``, ``_embedded.user``)."""

    id: str = Field(min_length=1)
    status: str
    profile: UserProfile


class _EmbeddedUser(_OktaModel):
    user: User


class AppUser(_OktaModel):
    """An app assignment (``GET /api/v1/apps/{appId}/users?expand=user``).

    ``scope`` is ``USER`` for an individual assignment and ``GROUP`` for a person who has the app
    only through groups. ``profile`` is the app user profile, where the role attribute lives.
    """

    id: str = Field(min_length=1)
    scope: str
    status: str | None = None
    profile: dict[str, Any] = Field(default_factory=dict)
    embedded: _EmbeddedUser = Field(alias="_embedded")

    @property
    def user(self) -> User:
        return self.embedded.user


class GroupProfile(_OktaModel):
    name: str = Field(min_length=1)
    description: str | None = None


class Group(_OktaModel):
    """An Okta group (``GET /api/v1/groups``, ``_embedded.group``)."""

    id: str = Field(min_length=1)
    type: str | None = None
    profile: GroupProfile


class _EmbeddedGroup(_OktaModel):
    group: Group | None = None


class GroupAssignment(_OktaModel):
    """An app group assignment (``GET /api/v1/apps/{appId}/groups?expand=group``).

    ``priority``: the lowest number wins when a person is in several assigned groups.
    """

    id: str = Field(min_length=1)
    priority: int | None = None
    profile: dict[str, Any] = Field(default_factory=dict)
    embedded: _EmbeddedGroup | None = Field(default=None, alias="_embedded")

    @property
    def group_name(self) -> str | None:
        if self.embedded and self.embedded.group:
            return self.embedded.group.profile.name
        return None


class RoleEnumValue(_OktaModel):
    const: str
    title: str | None = None


class AppSchemaAttribute(_OktaModel):
    """One custom attribute of the app user schema (Profile Editor)."""

    title: str | None = None
    type: str | None = None
    scope: str | None = None  # "SELF": set per person only; "NONE": group-settable too
    enum: list[Any] | None = None
    one_of: list[RoleEnumValue] | None = Field(default=None, alias="oneOf")
    external_name: str | None = Field(default=None, alias="externalName")
    external_namespace: str | None = Field(default=None, alias="externalNamespace")

    def roles(self) -> dict[str, str]:
        """The enumerated list as ``{role id: display title}``."""
        if self.one_of:
            return {v.const: v.title or v.const for v in self.one_of}
        return {str(v): str(v) for v in self.enum or []}


class AppUserSchema(_OktaModel):
    """``GET /api/v1/meta/schemas/apps/{appId}/default``, reduced to its custom attributes."""

    custom: dict[str, AppSchemaAttribute]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppUserSchema:
        definitions = data.get("definitions") or {}
        props = ((definitions.get("custom") or {}).get("properties")) or {}
        base = ((definitions.get("base") or {}).get("properties")) or {}
        merged = {**base, **props}
        return cls(custom={k: AppSchemaAttribute.model_validate(v) for k, v in merged.items()})


M = TypeVar("M", bound=BaseModel)


def parse_record(model: type[M], raw: Any, *, kind: str, position: int | None = None) -> M:
    """Validate one record, or raise :class:`OktaRecordError` naming the record and the field."""
    record_id = raw.get("id") if isinstance(raw, dict) else None
    where = f"{kind} {record_id}" if record_id else f"{kind} #{position if position else '?'}"
    if not isinstance(raw, dict):
        raise OktaRecordError(f"{where}: not a JSON object", kind=kind, record_id=None)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(record)"
        problem = "missing required field" if first["type"] == "missing" else first["msg"]
        raise OktaRecordError(
            f"{where}: {problem}: {field}", kind=kind, record_id=record_id
        ) from None
