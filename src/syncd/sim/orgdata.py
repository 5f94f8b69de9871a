"""Okta orgs for the simulator: JSON files, a seeded generator and the bundled demo org.

The file format is :meth:`OktaOrg.to_dict`'s, described in ``docs/okta-simulator.md``.
"""

from __future__ import annotations

import importlib.resources
import itertools
import json
import os
import random
from collections.abc import Mapping

from syncd.clock import Clock
from syncd.sim.okta_state import (
    Group,
    GroupAssignment,
    OktaOrg,
    User,
    UserAssignment,
    iso,
    login_slug,
)

__all__ = ["DEFAULT_CATALOG", "demo_org", "generate_org", "load_org", "save_org"]

#: Role name -> role id, as the compliance platform's role catalog has them.
DEFAULT_CATALOG: Mapping[str, str] = {
    "Admin": "0000005ddeface0000000001",
    "Editor": "0000005ddeface0000000002",
    "Employee": "0000005ddeface0000000003",
}


ORG_KEYS = frozenset(
    {"format", "app", "roleAttribute", "seed", "userTypeId", "users", "groups", "assignments"}
)


def load_org(path: str | os.PathLike[str], *, clock: Clock | None = None) -> OktaOrg:
    """Read an org from a JSON file (docs/okta-simulator.md). Raises ValueError naming the
    file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ValueError(f"org file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"org file {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"org file {path}: expected a JSON object")
    unknown = sorted(set(data) - ORG_KEYS)
    if unknown:
        raise ValueError(
            f"org file {path}: unknown keys {', '.join(unknown)} "
            f"(expected {', '.join(sorted(ORG_KEYS))})"
        )
    try:
        return OktaOrg.from_dict(data, clock=clock)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"org file {path}: {type(exc).__name__}: {exc}") from None


def save_org(org: OktaOrg, path: str | os.PathLike[str], *, indent: int | None = 1) -> None:
    """Write an org to a JSON file (deterministic: ids sorted)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(org.to_dict(), f, indent=indent, ensure_ascii=False)
        f.write("\n")


def demo_org(*, clock: Clock | None = None) -> OktaOrg:
    """The bundled demo org (about 50 people; see docs/okta-simulator.md)."""
    text = importlib.resources.files("syncd.sim").joinpath("data/demo-org.json").read_text("utf-8")
    return OktaOrg.from_dict(json.loads(text), clock=clock)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul "
    "Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy "
    "Stephanie Ronald Rebecca Jason Sharon Edward Laura Jeffrey Cynthia Ryan Amy Jacob Kathleen "
    "Gary Angela Nicholas Dorothy Eric Shirley Jonathan Emma Stephen Brenda Larry Nicole Justin "
    "Helen Scott Samantha Brandon Katherine Benjamin Christine Samuel Debra Gregory Rachel "
    "Alexander Carolyn Patrick Janet Frank Maria Raymond Olivia Jack Heather Dennis Catherine "
    "Jerry Diane Tyler Julie Aaron Victoria Priya Wei Aisha Mohammed Fatima Hiroshi Yuki Mateo "
    "Sofia Luca Chiara Lars Ingrid Omar Leila Arjun Ananya Chen Mei Kwame Amara Diego Valentina "
    "Noah Zoe Ethan Chloe Liam Ava Mason Mia Lucas Isla Oliver Harper Elijah Aria Ravi Sanjay "
    "Tomás Zoë Renée José Björn Siobhán Nguyen Thanh Dmitri Olga Kofi Ngozi"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook "
    "Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward "
    "Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez "
    "Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan "
    "Bell Coleman Butler Henderson Barnes Fisher Vasquez Simmons Romero Jordan Patterson "
    "Alexander Hamilton Graham Reynolds Griffin Wallace West Cole Hayes Bryant Gibson Ellis "
    "Stevens Murray Ford Marshall Owens McDonald Harrison Kennedy Wells Chen Wang Zhang Liu Singh "
    "Kumar Shah Tanaka Suzuki Sato Müller Schmidt Rossi Bianchi Dubois Lefèvre Kowalski Novak "
    "Andersson Johansson Okafor Mensah Haddad Khan Ali Ibrahim Cohen Levi O'Brien O'Connor "
    "D'Angelo Smith-Jones García-López"
)
DEPARTMENTS = _words(
    "Engineering Sales Marketing Finance Legal Support Design Product Security Operations "
    "People Recruiting IT Data Research Partnerships Procurement Compliance Facilities "
    "Communications"
)
TEAMS = _words(
    "Payments Platform Search Growth Mobile Web Identity Billing Checkout Onboarding "
    "Infrastructure Reliability Observability Analytics Messaging Notifications Integrations "
    "Risk Fraud Ledger Pricing Catalog Inventory Shipping Reporting Localization Accessibility "
    "Performance Storage Networking Kubernetes Frontend Backend Desktop API Docs Enablement "
    "Insights Experiments Ads Accounts Trust Privacy Audit Tooling Releases QA Support-Tools"
)
OFFICES = _words(
    "London Berlin Paris Dublin Amsterdam Lisbon Madrid Warsaw Stockholm Tokyo Singapore "
    "Sydney Toronto Austin Denver Chicago Boston Seattle New-York San-Francisco"
)
PROJECTS = _words(
    "Apollo Hermes Atlas Orion Phoenix Mercury Gemini Nova Zephyr Titan Aurora Comet Falcon "
    "Polaris Vega Lyra Nimbus Quasar Helios Borealis"
)
TITLES = (
    "Software Engineer",
    "Senior Software Engineer",
    "Staff Engineer",
    "Engineering Manager",
    "Product Manager",
    "Designer",
    "Account Executive",
    "Customer Success Manager",
    "Support Specialist",
    "Financial Analyst",
    "Counsel",
    "Recruiter",
    "Security Engineer",
    "Data Scientist",
    "Director",
)
_START = 1_609_459_200.0  # 2021-01-01T00:00:00Z
_END = 1_748_736_000.0  # 2025-06-01T00:00:00Z
_STATUSES = (
    ("ACTIVE", 0.925),
    ("SUSPENDED", 0.02),
    ("DEPROVISIONED", 0.02),
    ("STAGED", 0.01),
    ("PROVISIONED", 0.005),
    ("LOCKED_OUT", 0.01),
    ("PASSWORD_EXPIRED", 0.005),
    ("RECOVERY", 0.005),
)


def _team_names(count: int, rng: random.Random) -> list[str]:
    pool = (
        list(DEPARTMENTS)
        + [f"Team-{t}" for t in TEAMS]
        + [f"Office-{o}" for o in OFFICES]
        + [f"Project-{p}" for p in PROJECTS]
    )
    rng.shuffle(pool)
    names = pool[:count]
    n = 2
    while len(names) < count:
        names += [f"{name}-{n}" for name in pool[: count - len(names)]]
        n += 1
    return names


def _plural(word: str) -> str:
    return word if word.endswith("s") else f"{word}s"


def generate_org(
    people: int = 1000,
    groups: int = 20,
    seed: int = 0,
    app_id: str | None = None,
    attribute: str = "vanta_roles",
    catalog: Mapping[str, str] | None = None,
    *,
    app_label: str = "Vanta",
    domain: str = "example.com",
    clock: Clock | None = None,
) -> OktaOrg:
    """A realistic org of ``people`` users and ``groups`` team groups, the same for a seed.

    With a role ``catalog`` (role name -> role id; default :data:`DEFAULT_CATALOG`), one group per
    role (``Vanta-Admins``, ``Vanta-Editors``, ...) is assigned to the app, in catalog order with
    priorities 1, 2, 3... and the role in its profile. Most people are in the last (broadest)
    role group, some in several; about 1% have an individual assignment overriding their role,
    about 4% have no access; a few are suspended, deprovisioned, staged, locked out. Team groups
    are not assigned. With an empty catalog a single ``<label>-Users`` group is assigned. The org
    also has the built-in "Everyone" group.
    """
    rng = random.Random(seed)
    roles = dict(DEFAULT_CATALOG if catalog is None else catalog)
    org = OktaOrg(
        app_id=app_id,
        app_name=login_slug(app_label) or "app",
        app_label=app_label,
        attribute=attribute,
        attribute_title=f"{app_label} roles",
        roles=roles,
        seed=seed,
        clock=clock,
    )
    start = iso(_START)
    org.app.created = org.app.last_updated = start
    with org.lock:
        everyone = "All users in your organization"
        org._put_group(
            Group(org.new_id("00g"), "Everyone", everyone, "BUILT_IN", start, start, start)
        )
        role_groups: list[str] = []
        names = [f"{app_label}-{_plural(title)}" for title in roles] or [f"{app_label}-Users"]
        for priority, name in enumerate(names, start=1):
            gid = org.new_id("00g")
            org._put_group(
                Group(gid, name, f"{name} (role group)", "OKTA_GROUP", start, start, start)
            )
            profile = {attribute: list(roles.values())[priority - 1]} if roles else {}
            org.group_assignments[gid] = GroupAssignment(priority, profile, start, start)
            role_groups.append(gid)
        team_groups: list[str] = []
        for name in _team_names(groups, rng):
            gid = org.new_id("00g")
            org._put_group(Group(gid, name, None, "OKTA_GROUP", start, start, start))
            team_groups.append(gid)
        # Skewed team sizes: early teams are big, later ones small.
        team_cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(team_groups))))
        role_ids = list(roles.values())
        statuses = [s for s, _ in _STATUSES]
        status_cum = list(itertools.accumulate(w for _, w in _STATUSES))
        slugs = {name: login_slug(name) for name in FIRST_NAMES + LAST_NAMES}
        logins: set[str] = set()
        for _ in range(people):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            stem = f"{slugs[first]}.{slugs[last]}"
            login, n = f"{stem}@{domain}", 1
            while login in logins:
                n += 1
                login = f"{stem}{n}@{domain}"
            logins.add(login)
            status = rng.choices(statuses, cum_weights=status_cum)[0]
            t_created = rng.uniform(_START, _END - 86_400)
            created = iso(t_created)
            updated = iso(rng.uniform(t_created, _END))
            started = status not in ("STAGED", "PROVISIONED")
            user = User(
                id=org.new_id("00u"),
                status=status,
                created=created,
                activated=created if started else None,
                status_changed=(updated if status != "ACTIVE" else created) if started else None,
                last_login=None,
                last_updated=updated,
                password_changed=created if started else None,
                profile={
                    "firstName": first,
                    "lastName": last,
                    "mobilePhone": None,
                    "secondEmail": None,
                    "login": login,
                    "email": login,
                    "title": rng.choice(TITLES),
                    "department": rng.choice(DEPARTMENTS),
                },
            )
            org._put_user(user)
            uid = user.id
            if team_groups:
                k = rng.randint(1, 3)
                for gid in set(rng.choices(team_groups, cum_weights=team_cum, k=k)):
                    org._link(gid, uid)
            r = rng.random()
            k = len(role_groups)
            if r < 0.96:
                org._link(role_groups[-1], uid)  # the broadest role
                if k > 1 and r < 0.03:
                    org._link(role_groups[0], uid)
                elif k > 2 and r < 0.13:
                    org._link(role_groups[rng.randint(1, k - 2)], uid)
            if role_ids and rng.random() < 0.01:
                org.user_assignments[uid] = UserAssignment(
                    {attribute: rng.choice(role_ids)}, updated, updated
                )
        org._invalidate(users=True, groups=True)
    return org
