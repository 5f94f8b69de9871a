"""Configuration: a TOML file, overridable key by key from the environment.

The file is ``--config PATH``, else ``$SYNCD_CONFIG``, else ``/etc/syncd/syncd.toml``. Any key
can be overridden as ``SYNCD_<SECTION>__<KEY>`` (``SYNCD_OKTA__TOKEN``, ``SYNCD_SYNC__STATE_DB``).
``config/syncd.example.toml`` documents every key.

:func:`load_settings` returns validated :class:`Settings` or raises :class:`ConfigError` whose
message is one line naming the key and the problem. Tokens and keys are held as
:class:`pydantic.SecretStr` and registered with the log redactor; no message ever shows them.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from syncd.errors import ConfigError
from syncd.log import register_secret

DEFAULT_CONFIG_PATH = Path("/etc/syncd/syncd.toml")
ENV_PREFIX = "SYNCD_"
# What syncd reads. `syncd check` also reads the app user schema: grant okta.schemas.read too.
OKTA_SCOPES = ["okta.users.read", "okta.groups.read", "okta.apps.read"]


def _check_url(value: str, key: str) -> str:
    """Accept https URLs, and http only for a loopback host. Return it without a trailing /."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials in the URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("http:// is refused except for 127.0.0.1 / localhost; use https://")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment")
    return value.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OktaSettings(_Section):
    """``[okta]``: where to read, how to authenticate, how gently to read."""

    org_url: str
    app_id: str = Field(min_length=1)
    token: SecretStr | None = None
    token_file: Path | None = None
    client_id: str | None = None
    private_key_file: Path | None = None
    key_id: str | None = None
    scopes: list[str] = Field(default_factory=lambda: list(OKTA_SCOPES))
    rate_limit_share: float = Field(default=0.5, gt=0, le=1)
    concurrency: int = Field(default=8, ge=1, le=75)
    max_attempts: int = Field(default=5, ge=1, le=20)
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("org_url")
    @classmethod
    def _org_url(cls, value: str) -> str:
        url = _check_url(value, "okta.org_url")
        host = urlsplit(url).hostname or ""
        if "-admin." in host:
            raise ValueError(
                "this is the admin console's URL; use the org URL "
                f"({host.replace('-admin.', '.', 1)})"
            )
        if urlsplit(url).path not in ("", "/"):
            raise ValueError("must be the org URL alone, with no path (https://acme.okta.com)")
        return url


class RolesSettings(_Section):
    """``[roles]``: the custom role attribute and its enumerated list of roles."""

    attribute: str = Field(default="vanta_roles", min_length=1)
    default: str = ""
    admin: list[str] = Field(default_factory=list)
    catalog: dict[str, str] = Field(default_factory=dict)


class ScimSettings(_Section):
    """``[scim]``: the downstream SCIM 2.0 server."""

    base_url: str
    token: SecretStr | None = None
    token_file: Path | None = None
    role_attribute: str | None = None
    concurrency: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=5, ge=1, le=20)
    timeout: float = Field(default=30.0, gt=0)
    push_groups: list[str] = Field(default_factory=list)
    max_members_per_patch: int = Field(default=100, ge=1, le=1000)
    on_group_unpushed: Literal["keep", "delete"] = "keep"

    @field_validator("push_groups")
    @classmethod
    def _push_groups(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value]
        if any(not v for v in cleaned):
            raise ValueError("an entry is empty; give Okta group names, ids or globs")
        return cleaned

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_url(value, "scim.base_url")


def _default_state_db() -> Path:
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state_dir) / "state.db" if state_dir else Path("syncd-state.db")


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """``"15m"``, ``"90s"``, ``"1h"``, ``"1h30m"`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 15m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text, seconds, number = value.strip().lower(), 0.0, ""
        for char in text:
            if char.isdigit() or char == ".":
                number += char
            elif char in _UNITS and number:
                seconds += float(number) * _UNITS[char]
                number = ""
            else:
                raise ValueError(f"{value!r} is not a duration like 90s, 15m or 1h")
        if number:
            raise ValueError(f"{value!r}: give a unit (s, m or h), for example {number}s")
    else:
        raise ValueError("expected a duration like 90s, 15m or 1h")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


class SyncSettings(_Section):
    """``[sync]``: the checkpoint database and the schedule of ``syncd run``."""

    state_db: Path = Field(default_factory=_default_state_db)
    max_deactivations: int | str = 25  # a number, or a share of managed active people ("10%")
    quarantine_after: int = Field(default=5, ge=1)
    drift_check: bool = True
    drift_action: Literal["repair", "report"] = "repair"
    interval: float | None = None  # seconds; default 15 minutes unless cron is set
    cron: str | None = None
    jitter: float = 0.0
    shutdown_timeout: float = 30.0

    @field_validator("interval", "jitter", "shutdown_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)

    @field_validator("max_deactivations")
    @classmethod
    def _max_deactivations(cls, value: int | str) -> int | str:
        if isinstance(value, bool):
            raise ValueError('expected a number (25) or a percentage ("10%")')
        if isinstance(value, int):
            if value < 0:
                raise ValueError("must not be negative")
            return value
        text = value.strip()
        if text.endswith("%"):
            try:
                share = float(text[:-1])
            except ValueError:
                share = -1
            if not 0 <= share <= 100:
                raise ValueError(f"{value!r} is not a percentage between 0% and 100%")
            return text
        if text.isdigit():
            return int(text)
        raise ValueError(f'{value!r}: expected a number (25) or a percentage ("10%")')

    def deactivation_limit(self, managed_active: int) -> int:
        """The most deactivations one cycle may make, for this many managed active people.

        A percentage rounds down, but never below 1 (else with a handful of people every single
        leaver would be held).
        """
        limit = self.max_deactivations
        if isinstance(limit, int):
            return limit
        return max(1, int(Fraction(limit[:-1]) * managed_active / 100))

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float | None) -> float | None:
        if value is not None and value < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a crontab expression ({exc})") from None
        return value.strip()

    @property
    def every(self) -> float:
        """The interval in seconds (15 minutes by default)."""
        return self.interval if self.interval is not None else 900.0


class MetricsSettings(_Section):
    """``[metrics]``: the Prometheus endpoint of ``syncd run`` (off unless ``listen`` is set)."""

    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not HOST:PORT, for example 127.0.0.1:9464")
        return value.strip()

    @property
    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class Settings(BaseSettings):
    """The whole configuration, validated."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    okta: OktaSettings
    roles: RolesSettings = Field(default_factory=RolesSettings)
    scim: ScimSettings
    sync: SyncSettings = Field(default_factory=SyncSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed in as init values).
        return (env_settings, init_settings)

    # --- derived values -------------------------------------------------------------------

    @property
    def role_attribute(self) -> str:
        """The attribute sent downstream: ``scim.role_attribute``, else ``roles.attribute``."""
        return self.scim.role_attribute or self.roles.attribute


class Credentials(BaseModel):
    """The secrets, read from the config, the files it names, or systemd's credentials."""

    model_config = ConfigDict(frozen=True)

    okta_token: SecretStr | None
    okta_private_key: SecretStr | None
    scim_token: SecretStr

    def __repr__(self) -> str:
        return "Credentials(okta_token=..., okta_private_key=..., scim_token=...)"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to read: ``explicit``, else ``$SYNCD_CONFIG``, else the default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("SYNCD_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, merge and validate the configuration. Raise :class:`ConfigError` on any problem."""
    source = config_path(path)
    data = _read_toml(source)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise _config_error(exc, data, source) from None
    _check_semantics(settings, source)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found (give --config PATH or set SYNCD_CONFIG)"
        ) from None
    except PermissionError:
        raise ConfigError(f"config file {path}: permission denied") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path}: is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None


def _config_error(exc: ValidationError, data: Mapping[str, Any], source: Path) -> ConfigError:
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "unknown key (check the spelling against config/syncd.example.toml)"
    else:
        message = str(first["msg"]).removeprefix("Value error, ")
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, key=key, source=_origin(key, data, source))


def _origin(key: str, data: Mapping[str, Any], source: Path) -> str:
    env_name = ENV_PREFIX + key.upper().replace(".", "__")
    if env_name in {name.upper() for name in os.environ}:
        return f"environment variable {env_name}"
    return str(source)


def _check_semantics(settings: Settings, source: Path) -> None:
    """The rules that span keys: one auth method, roles that exist in the catalog."""

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, key=key, source=str(source))

    okta = settings.okta
    methods = [
        name
        for name, given in (
            ("token", okta.token is not None),
            ("token_file", okta.token_file is not None),
            ("client_id", okta.client_id is not None or okta.private_key_file is not None),
        )
        if given
    ]
    if len(methods) > 1:
        raise fail("okta", f"give one way to authenticate, not several ({', '.join(methods)})")
    if (okta.client_id is None) != (okta.private_key_file is None):
        missing = "okta.private_key_file" if okta.client_id else "okta.client_id"
        raise fail(missing, "is required for OAuth (client_id and private_key_file go together)")
    if settings.sync.interval is not None and settings.sync.cron is not None:
        raise fail("sync", "give interval or cron, not both")
    if settings.scim.token is not None and settings.scim.token_file is not None:
        raise fail("scim", "give token or token_file, not both")

    catalog = settings.roles.catalog
    ids = set(catalog.values())
    for name, role_id in catalog.items():
        if not role_id.strip():
            raise fail(f"roles.catalog.{name}", "the role id is empty")
    if len(ids) != len(catalog):
        raise fail("roles.catalog", "two role names map to the same role id")
    if not catalog:
        raise fail("roles.catalog", 'is empty: list each role as `Name = "role id"`')

    def known(role: str) -> bool:
        return role in catalog or role in ids

    if settings.roles.default and not known(settings.roles.default):
        raise fail(
            "roles.default",
            f"{settings.roles.default!r} is neither a role name nor a role id in roles.catalog",
        )
    for role in settings.roles.admin:
        if not known(role):
            raise fail(
                "roles.admin", f"{role!r} is neither a role name nor a role id in roles.catalog"
            )


def load_credentials(settings: Settings) -> Credentials:
    """Read the tokens and the private key. Raise :class:`ConfigError` naming the key at fault.

    Order, for each end: ``token``, else ``token_file``, else ``$CREDENTIALS_DIRECTORY/<name>``
    (systemd's ``LoadCredential=``). The values are registered with the log redactor.
    """
    okta = settings.okta
    okta_token: SecretStr | None = None
    private_key: SecretStr | None = None
    if okta.client_id is not None and okta.private_key_file is not None:
        private_key = SecretStr(_read_secret_file(okta.private_key_file, "okta.private_key_file"))
    else:
        okta_token = _token(okta.token, okta.token_file, "okta", "okta-token")
    scim_token = _token(settings.scim.token, settings.scim.token_file, "scim", "scim-token")
    for secret in (okta_token, private_key, scim_token):
        if secret is not None:
            register_secret(secret.get_secret_value())
    return Credentials(okta_token=okta_token, okta_private_key=private_key, scim_token=scim_token)


def _token(value: SecretStr | None, file: Path | None, section: str, cred_name: str) -> SecretStr:
    if value is not None:
        text = value.get_secret_value().strip()
        if not text:
            raise ConfigError("is empty", key=f"{section}.token")
        return SecretStr(text)
    if file is not None:
        return SecretStr(_read_secret_file(file, f"{section}.token_file"))
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = Path(cred_dir) / cred_name
        if path.exists():
            return SecretStr(_read_secret_file(path, f"$CREDENTIALS_DIRECTORY/{cred_name}"))
    raise ConfigError(
        f"no token: set {section}.token or {section}.token_file"
        + (" (or okta.client_id + okta.private_key_file)" if section == "okta" else "")
        + f", or provide the systemd credential {cred_name}",
        key=section,
    )


def _read_secret_file(path: Path, key: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", key=key) from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied", key=key) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({type(exc).__name__})", key=key) from None
    if not text:
        raise ConfigError(f"{path}: the file is empty", key=key)
    return text


AuthMethod = Literal["ssws", "oauth"]


def okta_auth_method(settings: Settings) -> AuthMethod:
    """How syncd authenticates to Okta with these settings."""
    return "oauth" if settings.okta.client_id else "ssws"
