"""Configuration: loading, environment overrides, and one clear line for every mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syncd.config import load_credentials, load_settings
from syncd.errors import ConfigError

from .helpers import CATALOG, OKTA_TOKEN, SCIM_TOKEN, config_data, render_toml, write_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).parent.parent / "config" / "syncd.example.toml"
    settings = load_settings(example)
    assert settings.okta.rate_limit_share == 0.5
    assert settings.okta.concurrency == 8
    assert settings.roles.catalog == CATALOG
    assert settings.role_attribute == "vanta_roles"


def test_defaults_and_role_attribute_fallback(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    assert settings.scim.role_attribute is None
    assert settings.role_attribute == "vanta_roles"
    assert settings.scim.concurrency == 4
    assert settings.okta.max_attempts == 5
    creds = load_credentials(settings)
    assert creds.okta_token is not None and creds.okta_token.get_secret_value() == OKTA_TOKEN
    assert creds.scim_token.get_secret_value() == SCIM_TOKEN
    assert OKTA_TOKEN not in repr(creds) and OKTA_TOKEN not in repr(settings)


def test_the_safety_defaults(tmp_path: Path) -> None:
    data = config_data(tmp_path)
    del data["sync"]["drift_check"]  # the test default; here, syncd's own
    path = tmp_path / "syncd.toml"
    path.write_text(render_toml(data))
    sync = load_settings(path).sync
    assert (sync.drift_check, sync.drift_action) == (True, "repair")
    assert sync.quarantine_after == 5
    assert sync.max_deactivations == 25


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path)
    monkeypatch.setenv("SYNCD_OKTA__CONCURRENCY", "3")
    monkeypatch.setenv("SYNCD_SCIM__ROLE_ATTRIBUTE", "rbac_role_id")
    settings = load_settings(path)
    assert settings.okta.concurrency == 3
    assert settings.role_attribute == "rbac_role_id"
    assert settings.okta.app_id == "0oa1b2c3d4e5f6g7h8i9"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_CONFIG", str(write_config(tmp_path)))
    assert load_settings().okta.org_url == "https://acme.okta.com"


def test_state_db_defaults_to_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = config_data(tmp_path)
    del data["sync"]
    path = tmp_path / "c.toml"
    path.write_text(render_toml(data))
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/syncd")
    assert load_settings(path).sync.state_db == Path("/var/lib/syncd/state.db")
    monkeypatch.delenv("STATE_DIRECTORY")
    assert load_settings(path).sync.state_db == Path("syncd-state.db")


def test_credentials_directory_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = config_data(tmp_path)
    del data["okta"]["token_file"]
    del data["scim"]["token_file"]
    path = tmp_path / "c.toml"
    path.write_text(render_toml(data))
    creds_dir = tmp_path / "creds"
    creds_dir.mkdir()
    (creds_dir / "okta-token").write_text("from-systemd-okta\n")
    (creds_dir / "scim-token").write_text("from-systemd-scim\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds_dir))
    creds = load_credentials(load_settings(path))
    assert creds.okta_token is not None
    assert creds.okta_token.get_secret_value() == "from-systemd-okta"
    assert creds.scim_token.get_secret_value() == "from-systemd-scim"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"okta": {"org_url": "http://acme.okta.com"}}, "okta.org_url: http:// is refused"),
        ({"okta": {"org_url": "https://acme-admin.okta.com"}}, "okta.org_url: this is the admin"),
        ({"scim": {"base_url": "http://scim.example.com"}}, "scim.base_url: http:// is refused"),
        ({"okta": {"tokne": "x"}}, "okta.tokne: unknown key"),
        ({"okta": {"rate_limit_share": 1.5}}, "okta.rate_limit_share: Input should be less"),
        ({"okta": {"concurrency": 0}}, "okta.concurrency: Input should be greater"),
        ({"roles": {"default": "Owner"}}, "roles.default: 'Owner' is neither a role name"),
        ({"roles": {"admin": ["Root"]}}, "roles.admin: 'Root' is neither a role name"),
        ({"okta": {"token": "abc"}}, "okta: give one way to authenticate"),
        ({"okta": {"client_id": "0oa1"}}, "okta: give one way to authenticate"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, change: dict[str, dict[str, object]], expected: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(render_toml(config_data(tmp_path, **change)))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_http_allowed_for_loopback(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, okta_url="http://127.0.0.1:8089", scim_url="http://localhost:1/v2"
    )
    settings = load_settings(path)
    assert settings.okta.org_url == "http://127.0.0.1:8089"


def test_missing_required_key(tmp_path: Path) -> None:
    data = config_data(tmp_path)
    del data["scim"]["base_url"]
    path = tmp_path / "c.toml"
    path.write_text(render_toml(data))
    with pytest.raises(ConfigError, match=r"scim\.base_url: is required"):
        load_settings(path)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2"):
        load_settings(write(tmp_path, "[okta]\norg_url = \n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_unreadable_token_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, okta={"token_file": str(tmp_path / "missing-token")})
    with pytest.raises(ConfigError, match=r"okta\.token_file: .*missing-token: no such file"):
        load_credentials(load_settings(path))


def test_empty_token_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    path = write_config(tmp_path, scim={"token_file": str(empty)})
    with pytest.raises(ConfigError, match=r"scim\.token_file: .*the file is empty"):
        load_credentials(load_settings(path))


def test_env_error_names_the_variable_and_hides_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = config_data(tmp_path)
    del data["okta"]["token_file"]
    data["okta"]["token"] = OKTA_TOKEN
    path = tmp_path / "c.toml"
    path.write_text(render_toml(data))
    monkeypatch.setenv("SYNCD_OKTA__CONCURRENCY", "lots")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "okta.concurrency" in message
    assert "SYNCD_OKTA__CONCURRENCY" in message
    assert OKTA_TOKEN not in message


def test_cli_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, okta={"org_url": "http://acme.okta.com", "token": OKTA_TOKEN})
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "run", "--once", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("syncd: configuration error: okta")
    assert OKTA_TOKEN not in proc.stderr + proc.stdout


def test_percentage_deactivation_limits_are_exact_and_never_zero(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, sync={"max_deactivations": "29%"}))
    assert settings.sync.deactivation_limit(100) == 29  # not 28: no float error
    assert settings.sync.deactivation_limit(5) == 1  # never 0: one leaver is not held
    assert (
        load_settings(
            write_config(tmp_path, sync={"max_deactivations": 7})
        ).sync.deactivation_limit(1000)
        == 7
    )
    with pytest.raises(ConfigError, match=r"sync\.max_deactivations: '110%' is not a percentage"):
        load_settings(write_config(tmp_path, sync={"max_deactivations": "110%"}))
