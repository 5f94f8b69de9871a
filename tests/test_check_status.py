"""`syncd check` (both ends, good and bad credentials) and `syncd status` (from the checkpoint)."""

from __future__ import annotations

import json
import socket

from .conftest import Env


def lines(stdout: str) -> list[tuple[str, str, str]]:
    out = []
    for line in stdout.splitlines():
        parts = line.split(None, 2)
        if parts and parts[0] in ("PASS", "WARN", "FAIL"):
            out.append((parts[0], parts[1], parts[2]))
    return out


def test_check_passes_with_good_credentials(env: Env) -> None:
    result = env.run("check")
    assert result.code == 0, result.stdout
    checks = lines(result.stdout)
    assert {status for status, _, _ in checks} == {"PASS"}
    messages = " | ".join(m for _, _, m in checks)
    for expected in (
        "reachable: http://127.0.0.1",
        "credentials accepted (API token)",
        f"app {env.org.app.id} found",
        "role attribute 'vanta_roles' in the app user schema (group-settable), 3 roles",
        "roles.catalog matches Okta's enumerated list",
        "admin role mapped: Admin",
        "/ServiceProviderConfig read (patch yes",
        "token accepted: GET /Users?startIndex=1&count=1 works",
    ):
        assert expected in messages
    assert "9 passed, 0 warnings, 0 failed." in result.stdout
    assert env.scim.count("GET", "/Users") == 1
    (probe,) = [r for r in env.scim.requests if r.path == "/Users"]
    assert probe.query == "startIndex=1&count=1"


def test_check_with_a_bad_okta_token(env: Env) -> None:
    bad = env.tmp_path / "bad"
    bad.write_text("definitely-wrong-token\n")
    result = env.run("check", config=env.config(okta={"token_file": str(bad)}))
    assert result.code == 4
    checks = lines(result.stdout)
    assert ("PASS", "okta", f"reachable: {env.okta_url}") in checks
    failed = [m for s, end, m in checks if s == "FAIL"]
    assert failed == ["credentials refused (API token): E0000011 Invalid token provided"]
    assert any(end == "scim" and s == "PASS" for s, end, _ in checks)  # the other end still tested
    assert "definitely-wrong-token" not in result.stdout + result.stderr


def test_check_with_a_bad_scim_token_and_an_unreachable_scim(env: Env) -> None:
    bad = env.tmp_path / "bad"
    bad.write_text("wrong-scim-token-000\n")
    result = env.run("check", config=env.config(scim={"token_file": str(bad)}))
    assert result.code == 4
    (failed,) = [m for s, _, m in lines(result.stdout) if s == "FAIL"]
    assert failed.startswith("token refused: GET Users: HTTP 401")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = env.run("check", config=env.config(scim_url=f"http://127.0.0.1:{port}/v2"))
    assert result.code == 4
    (failed,) = [m for s, _, m in lines(result.stdout) if s == "FAIL"]
    assert failed.startswith(f"cannot reach http://127.0.0.1:{port}/v2")


def test_check_warns_on_catalog_differences_and_a_missing_admin_role(env: Env) -> None:
    env.org.set_role_enum(
        {"Admin": "0000005ddeface0000000001", "Auditor": "0000005ddeface0000000009"}
    )
    result = env.run("check", config=env.config(roles={"admin": []}))
    assert result.code == 0  # warnings only
    warnings = [m for s, _, m in lines(result.stdout) if s == "WARN"]
    assert (
        "in Okta's enumerated list but not in roles.catalog: Auditor (0000005ddeface0000000009)"
        in warnings
    )
    assert any(
        m.startswith("in roles.catalog but not in Okta's enumerated list: Editor") for m in warnings
    )
    assert any("no admin role mapped (roles.admin is empty)" in m for m in warnings)


def test_check_fails_when_the_role_attribute_is_missing(env: Env) -> None:
    result = env.run("check", config=env.config(roles={"attribute": "rbac_role_id"}))
    assert result.code == 4
    (failed,) = [m for s, _, m in lines(result.stdout) if s == "FAIL"]
    assert failed.startswith("role attribute 'rbac_role_id' is not in the app user schema")
    assert "vanta_roles" in failed


def test_check_with_an_unknown_app(env: Env) -> None:
    result = env.run("check", config=env.config(app_id="0oanosuchapp00000000"))
    assert result.code == 4
    assert ("FAIL", "okta", "app 0oanosuchapp00000000 not found (check okta.app_id)") in lines(
        result.stdout
    )


def test_status_before_after_success_and_after_failure(env: Env) -> None:
    result = env.run("status")
    assert result.code == 0
    assert "syncd has not run yet" in result.stdout
    assert not (env.tmp_path / "state.db").exists()

    env.scim.fail_next("POST", "/Users", 400, body="emails: invalid")
    assert env.run("run", "--once", config=env.config(scim={"concurrency": 1})).code == 1
    text = env.run("status").stdout
    assert "Last run:      partial (exit 1)" in text
    assert "Managed:       4 people (4 active), 0 groups" in text
    assert "Failing:       1 people, 0 groups" in text
    assert "1 in a row: POST Users: HTTP 400: emails: invalid" in text

    assert env.run("run", "--once").code == 0
    bad = env.tmp_path / "bad"
    bad.write_text("not-okay-token\n")
    assert env.run("run", "--once", config=env.config(okta={"token_file": str(bad)})).code == 4
    status = json.loads(env.run("status", "--json").stdout)
    assert status["last_run"]["outcome"] == "failed"
    assert "Invalid token provided" in status["last_run"]["error"]
    assert status["last_success"]["outcome"] == "success"
    assert status["last_success"]["counts"]["created"] == 1
    assert status["managed"] == {"users": 5, "active_users": 5, "groups": 0}
    assert status["failing_people"] == []
    text = env.run("status").stdout
    assert "Last run:      failed (exit 4)" in text and "error: Okta: GET" in text
