"""Settings: defaults < TOML file (--config / PMBOT_CONFIG) < .env < environment < command line.

Every key is known: an unknown key in any source is an error naming it, and each validation
error is reported as one line naming the key (never its value: values may be secrets).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from pmbot.errors import ConfigError, register_secret

ENV_PREFIX = "PMBOT_"
# PMBOT_* variables that are not settings: they steer how settings are found or how tests run.
NON_SETTING_ENV = {"PMBOT_CONFIG", "PMBOT_ENV_FILE", "PMBOT_REQUIRE_SERVICES"}

_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pmbot"


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'pmbot.db'}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RiskSettings(_Section):
    """Caps the executor's risk gate enforces on every intent (USDC unless stated)."""

    max_order_notional: Decimal = Field(Decimal("50"), gt=0, description="largest single order, USDC")
    max_position_per_market: Decimal = Field(Decimal("250"), gt=0, description="per condition id, USDC")
    max_total_exposure: Decimal = Field(Decimal("1000"), gt=0, description="all open positions, USDC")
    max_open_orders: int = Field(20, gt=0)
    daily_loss_limit: Decimal = Field(Decimal("100"), gt=0, description="trips the kill switch, USDC")
    kill_switch_reset: Literal["manual", "next_day"] = "manual"


class ExecutorSettings(_Section):
    orders_per_minute: int = Field(50, gt=0, description="our own ceiling, on top of the venue's limits")
    rate_limit_safety: Decimal = Field(Decimal("0.8"), gt=0, le=1, description="fraction of venue limits")
    dry_run_balance: Decimal = Field(Decimal("1000"), ge=0, description="starting paper USDC")
    dry_run_fees: bool = True


class SnipeSettings(_Section):
    series: str = "btc-up-or-down-15m"
    window_seconds: int = Field(30, gt=0, description="act only in a market's last N seconds")
    min_price: Decimal = Field(Decimal("0.95"), gt=0, lt=1)
    max_price: Decimal = Field(Decimal("0.99"), gt=0, lt=1)
    order_usdc: Decimal = Field(Decimal("10"), gt=0)


class CopySettings(_Section):
    target: str = "distinct-baguette"
    size_ratio: Decimal = Field(Decimal("0.1"), gt=0)
    max_order_usdc: Decimal = Field(Decimal("25"), gt=0)
    max_slippage: Decimal = Field(Decimal("0.02"), ge=0, lt=1)
    sources: list[Literal["onchain", "rtds", "data_api"]] = ["onchain", "rtds", "data_api"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    # Endpoints: Polymarket production by default; `pmbot sim env` points them at the simulator.
    clob_url: str = "https://clob.polymarket.com"
    gamma_url: str = "https://gamma-api.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    clob_ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws"
    rtds_url: str = "wss://ws-live-data.polymarket.com"
    rpc_ws_url: str | None = None
    chain_id: int = 137

    # Wallet. The key only ever comes from the environment or .env (never a TOML file).
    private_key: SecretStr | None = None
    funder: str | None = None
    signature_type: int = Field(0, ge=0, le=3, description="0 EOA, 1 proxy, 2 Safe, 3 deposit wallet")

    # Storage. The URL's scheme picks the store (sqlite:/// or postgresql://); storage_backend, when set,
    # must agree with it (the seed's STORAGE_BACKEND=sqlite|postgres), so a half-done switch is caught.
    database_url: str = Field(default_factory=default_database_url)
    storage_backend: Literal["sqlite", "postgres"] | None = None
    redis_url: str | None = None

    debug: bool = False

    risk: RiskSettings = RiskSettings()
    executor: ExecutorSettings = ExecutorSettings()
    snipe: SnipeSettings = SnipeSettings()
    copy_trading: CopySettings = CopySettings()

    @field_validator("clob_url", "gamma_url", "data_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("clob_ws_url", "rtds_url", "rpc_ws_url")
    @classmethod
    def _ws_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return v.rstrip("/") if v else v

    @field_validator("private_key")
    @classmethod
    def _key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        raw = v.get_secret_value().strip()
        if not _HEX_KEY.match(raw):
            # Never echo the value: a near-miss private key is still a private key.
            raise ValueError("must be 64 hex characters, with or without 0x")
        register_secret(raw)
        return SecretStr(raw if raw.startswith("0x") else "0x" + raw)

    @field_validator("funder")
    @classmethod
    def _funder(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not _ADDRESS.match(v):
            raise ValueError("must be a 0x-prefixed 40-hex-digit address")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator("storage_backend")
    @classmethod
    def _backend_matches_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        url = str(info.data.get("database_url") or "")
        if v is not None and (v == "postgres") != (
            url.strip().split("://", 1)[0].lower() in ("postgres", "postgresql")
        ):
            want = "postgresql://user:password@host/db" if v == "postgres" else "sqlite:///path"
            raise ValueError(f"is {v} but database_url is not a {want} URL: set PMBOT_DATABASE_URL to match")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Sources are built by load_settings (they depend on --config); see _sources().
        return tuple(_ACTIVE_SOURCES) or (init_settings, env_settings)


_ACTIVE_SOURCES: list[PydanticBaseSettingsSource] = []


class _Env(EnvSettingsSource):
    """The environment source, reading a given mapping (os.environ unless a test passes one)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class _PrefixedDotEnv(DotEnvSettingsSource):
    """A .env source that ignores keys without our prefix (a .env file is often shared)."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        ours = {
            k[len(ENV_PREFIX) :].split("__")[0].lower()
            for k in self.env_vars
            if k.upper().startswith(ENV_PREFIX) and k.upper() not in NON_SETTING_ENV
        }
        return {k: v for k, v in data.items() if k in ours}


SOURCE_NAMES = ("command line", "environment", ".env", "config file")


def _sources(
    config_file: Path | None, env_file: Path | None, overrides: dict[str, Any], environ: dict[str, str]
) -> list[PydanticBaseSettingsSource]:
    """Sources, highest priority first, in the order of SOURCE_NAMES."""
    return [
        InitSettingsSource(Settings, init_kwargs=overrides),
        _Env(Settings, environ),
        _PrefixedDotEnv(Settings, env_file=env_file if env_file and env_file.is_file() else None),
        TomlConfigSettingsSource(Settings, toml_file=config_file),
    ]


def _unknown_env_keys(environ: dict[str, str]) -> list[str]:
    known_top = {name.upper() for name in Settings.model_fields}
    unknown = []
    for key in environ:
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NON_SETTING_ENV:
            continue
        name = upper[len(ENV_PREFIX) :]
        top, _, sub = name.partition("__")
        field = Settings.model_fields.get(top.lower())
        if top not in known_top or field is None:
            unknown.append(key)
            continue
        section = field.annotation
        if sub and not (
            isinstance(section, type) and issubclass(section, BaseModel) and sub.lower() in section.model_fields
        ):
            unknown.append(key)
    return sorted(unknown)


def _format_errors(err: ValidationError, origin: dict[str, str]) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        where = origin.get(key) or origin.get(key.split(".")[0], "")
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        env_name = ENV_PREFIX + "__".join(str(p) for p in e["loc"]).upper()
        lines.append(f"{key} ({env_name}{', from ' + where if where else ''}): {msg}")
    return "\n".join(lines)


class LoadedSettings(BaseModel):
    """Settings plus where each key came from, for `config show`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    settings: Settings
    origins: dict[str, str]
    config_file: Path | None
    env_file: Path | None


def load_settings(
    config_file: Path | str | None = None,
    *,
    env_file: Path | str | None = ".env",
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedSettings:
    """Build Settings from every source, or raise ConfigError with one line per bad key."""
    environ = dict(os.environ) if environ is None else environ
    if config_file is None and environ.get("PMBOT_CONFIG"):
        config_file = environ["PMBOT_CONFIG"]
    cfg = Path(config_file).expanduser() if config_file else None
    if cfg is not None and not cfg.is_file():
        raise ConfigError(f"config file not found: {cfg}", hint="check --config / PMBOT_CONFIG")
    if env_file == ".env" and environ.get("PMBOT_ENV_FILE"):
        env_file = environ["PMBOT_ENV_FILE"]
    envf = Path(env_file) if env_file else None

    unknown = _unknown_env_keys(environ)
    if unknown:
        raise ConfigError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} in the environment: {', '.join(unknown)}",
            hint="see `pmbot config show` for the valid PMBOT_* names",
        )

    origins: dict[str, str] = {}
    try:
        sources = _sources(cfg, envf, overrides or {}, environ)
        if cfg is not None:
            _reject_secrets_in_file(sources[3]())
        # Lowest priority first so that later (higher) sources overwrite the origin.
        for name, src in zip(reversed(SOURCE_NAMES), reversed(sources), strict=True):
            for key in _flatten(src()):
                origins[key] = name
        _ACTIVE_SOURCES[:] = sources
        settings = Settings()
    except ValidationError as e:
        raise ConfigError(_format_errors(e, origins)) from None
    except ValueError as e:  # a TOML syntax error, for instance
        raise ConfigError(f"cannot read settings: {e}") from None
    finally:
        _ACTIVE_SOURCES.clear()
    return LoadedSettings(settings=settings, origins=origins, config_file=cfg, env_file=envf)


def _reject_secrets_in_file(data: dict[str, Any]) -> None:
    if "private_key" in data:
        raise ConfigError(
            "private_key is not allowed in a config file",
            hint="put PMBOT_PRIVATE_KEY in the environment or in .env, which is never committed",
        )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, full + "."))
        else:
            out[full] = value
    return out


SECRET_KEYS = {"private_key"}


def describe(loaded: LoadedSettings) -> list[dict[str, str]]:
    """Rows for `config show`: key, env name, value (secrets masked), source."""
    rows = []
    data = loaded.settings.model_dump()
    for key, value in _flatten(data).items():
        if key in SECRET_KEYS:
            shown = "(set, hidden)" if value is not None else "(not set)"
        elif value is None:
            shown = "(not set)"
        elif isinstance(value, list):
            shown = ",".join(str(v) for v in value)
        else:
            shown = str(value)
        if key in ("database_url", "redis_url") and value:
            shown = _mask_url_password(shown)
        rows.append(
            {
                "key": key,
                "env": ENV_PREFIX + key.replace(".", "__").upper(),
                "value": shown,
                "source": loaded.origins.get(key, "default"),
            }
        )
    return rows


def _mask_url_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
