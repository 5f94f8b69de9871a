"""The SCIM side: a SCIM 2.0 client that behaves the way downstream servers expect Okta to."""

from syncd.scim.client import ScimClient, ScimStats
from syncd.scim.resources import group_resource, user_resource

__all__ = ["ScimClient", "ScimStats", "group_resource", "user_resource"]
