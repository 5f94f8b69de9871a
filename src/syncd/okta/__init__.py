"""The Okta side: an async, rate-limit-aware reader of one app's assignments.

* :mod:`syncd.okta.http`: paced, retried, authenticated requests and pagination;
* :mod:`syncd.okta.ratelimit`: the per-family rate-limit buckets;
* :mod:`syncd.okta.auth`: SSWS tokens and OAuth 2.0 ``private_key_jwt``;
* :mod:`syncd.okta.models`: typed records;
* :mod:`syncd.okta.reader`: the reads syncd needs, as async iterators.
"""

from syncd.okta.auth import OktaAuth, PrivateKeyJWTAuth, SSWSAuth
from syncd.okta.http import OktaHttp, RequestStats
from syncd.okta.models import AppUser, AppUserSchema, Group, GroupAssignment, User
from syncd.okta.reader import OktaReader

__all__ = [
    "AppUser",
    "AppUserSchema",
    "Group",
    "GroupAssignment",
    "OktaAuth",
    "OktaHttp",
    "OktaReader",
    "PrivateKeyJWTAuth",
    "RequestStats",
    "SSWSAuth",
    "User",
]
