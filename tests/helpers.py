"""Shared test helpers: config files and catalog constants (no fakes of syncd's own code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ADMIN = "0000005ddeface0000000001"
EDITOR = "0000005ddeface0000000002"
EMPLOYEE = "0000005ddeface0000000003"
CATALOG = {"Admin": ADMIN, "Editor": EDITOR, "Employee": EMPLOYEE}

OKTA_TOKEN = "okta-secret-token-0123456789"
SCIM_TOKEN = "scim-secret-token-9876543210"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_toml(data: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if not isinstance(value, dict):
                lines.append(f"{key} = {_toml_value(value)}")
        for key, table in nested.items():
            lines.append(f"[{section}.{key}]")
            for k, v in table.items():
                lines.append(f'"{k}" = {_toml_value(v)}')
        lines.append("")
    return "\n".join(lines)


def config_data(
    tmp_path: Path,
    *,
    okta_url: str = "https://acme.okta.com",
    scim_url: str = "https://scim.example.com/v2",
    app_id: str = "0oa1b2c3d4e5f6g7h8i9",
    **sections: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    okta_token = tmp_path / "okta-token"
    scim_token = tmp_path / "scim-token"
    okta_token.write_text(OKTA_TOKEN + "\n")
    scim_token.write_text(SCIM_TOKEN + "\n")
    data: dict[str, dict[str, Any]] = {
        "okta": {"org_url": okta_url, "app_id": app_id, "token_file": str(okta_token)},
        "roles": {"attribute": "vanta_roles", "admin": ["Admin"], "catalog": dict(CATALOG)},
        "scim": {"base_url": scim_url, "token_file": str(scim_token)},
        # The drift check reads every downstream resource each cycle; the tests that count
        # requests run without it, and the drift tests turn it on.
        "sync": {"state_db": str(tmp_path / "state.db"), "drift_check": False},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return data


def write_config(tmp_path: Path, **kwargs: Any) -> Path:
    """Write a complete config file for tests and return its path."""
    data = config_data(tmp_path, **kwargs)
    path = tmp_path / "syncd.toml"
    path.write_text(render_toml(data))
    return path
