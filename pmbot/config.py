"""Settings: defaults < TOML file (--config / PMBOT_CONFIG) < .env < environment < command line.

Every key is known: an unknown key in any source is an error naming it, and each validation
error is reported as one line naming the key (never its value: values may be secrets).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
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
from pmbot.event_loop import EventLoopName

log = logging.getLogger("pmbot.config")

ENV_PREFIX = "PMBOT_"
# PMBOT_* variables that are not settings: they steer how settings are found or how tests run.
NON_SETTING_ENV = {"PMBOT_CONFIG", "PMBOT_ENV_FILE", "PMBOT_REQUIRE_SERVICES"}

_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
# secp256k1's group order: a private key is an integer 1 <= k < n, anything else signs nothing.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
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
    marketable_max_wait_s: Decimal = Field(
        Decimal(2), ge=0, le=60, description="a FOK/FAK waiting longer for the orders/min budget is not sent"
    )
    rate_limit_safety: Decimal = Field(Decimal("0.8"), gt=0, le=1, description="fraction of venue limits")
    dry_run_balance: Decimal = Field(Decimal("1000"), ge=0, description="starting paper USDC")
    dry_run_fees: bool = True
    # The paper wallet a dry-run process trades ("paper:<name>"): its positions are its own, it is seeded
    # from them at start (a restart with the same name sees them), and one process at a time holds it.
    paper_wallet: str = Field(
        "default",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,39}$",
        description="dry-run: this process's paper wallet; run a second dry-run process with another name",
    )
    # Order heartbeats (POST /v1/heartbeats, a dead man's switch: 10 s without a beat after the first one
    # and the venue cancels every open order of the API key). None: on for live long-running commands,
    # off for one-shot `pmbot order` (whose resting order must outlive the process).
    heartbeat: bool | None = None


class SnipeSettings(_Section):
    """`[snipe]`: the fields of pmbot.strategies.snipe.SnipeConfig (validated again, with the cross-field
    rules, when the sniper starts), plus the `--auto` targets. Flags of `pmbot snipe` override them."""

    series: list[str] = ["btc-updown-15m"]  # --auto: market slug prefixes (or Gamma series slugs)
    max_markets: int = Field(4, gt=0, description="--auto: at most this many markets armed at once")
    window_s: int = Field(60, gt=0, description="enter only in the market's last N seconds")
    stop_s: int = Field(2, ge=0, description="stop entering N seconds before the end")
    min_price: Decimal = Field(Decimal("0.90"), gt=0, lt=1)
    max_price: Decimal = Field(Decimal("0.99"), gt=0, lt=1)
    shares: Decimal | None = Field(None, gt=0, description="order size in shares")
    usdc: Decimal | None = Field(None, gt=0, description="order size in USDC at the limit (default 10)")
    order_type: Literal["FOK", "FAK"] = "FOK"
    min_depth: Decimal | None = Field(None, ge=0)
    min_edge: Decimal = Field(Decimal("0.005"), ge=0, lt=1)
    confirm_reference: bool = True
    reference_margin: Decimal = Field(Decimal("0.0005"), ge=0, lt=1)
    reference_max_age_s: int = Field(5, gt=0)

    def strategy_config(self) -> dict[str, object]:
        """The SnipeConfig fields (everything but the targets)."""
        return self.model_dump(exclude={"series", "max_markets"})


class CopyRuleSettings(_Section):
    """The sizing, guards and filters of pmbot.strategies.copy.CopyConfig (validated again, with its
    cross-field rules, when a copy starts). `[copy]` sets them for every target; a `[[copy.targets]]`
    entry overrides any of them for its target."""

    mode: Literal["ratio", "fixed", "percent"] = "ratio"
    ratio: Decimal = Field(Decimal("0.1"), gt=0, description="mode ratio: our shares = target's x ratio")
    fixed_usdc: Decimal = Field(Decimal(10), gt=0, description="mode fixed: USDC per copied buy")
    percent: Decimal = Field(Decimal(1), gt=0, le=100, description="mode percent: % of our balance per buy")
    max_per_trade_usdc: Decimal | None = Field(Decimal(25), ge=0)
    max_per_market_usdc: Decimal | None = Field(Decimal(100), ge=0)
    max_total_usdc: Decimal | None = Field(Decimal(500), ge=0)
    max_slippage: Decimal | None = Field(None, ge=0, lt=1, description="default: one tick")
    max_book_move: Decimal | None = Field(None, ge=0, lt=1)
    max_spread: Decimal | None = Field(Decimal("0.05"), ge=0, lt=1)
    require_book: bool = False
    max_age_s: Decimal = Field(Decimal(30), gt=0, le=3600, description="older target fills are skipped as stale")
    order_type: Literal["FAK", "FOK", "GTC"] = "FAK"
    round_up_to_min: bool = False
    markets: list[str] = []
    tags: list[str] = []
    min_target_usdc: Decimal = Field(Decimal(0), ge=0)
    buys_only: bool = False
    copy_maker_fills: bool = True
    aggregate_ms: int = Field(2, ge=0, le=1000)
    match_window_ms: int = Field(10_000, gt=0)

    def strategy_config(self) -> dict[str, object]:
        """The CopyConfig fields (all of them: this model holds nothing else)."""
        return {k: getattr(self, k) for k in CopyRuleSettings.model_fields}


class CopyTargetSettings(_Section):
    """One `[[copy.targets]]` entry: a username or 0x address, and the rules it overrides (unset: `[copy]`'s)."""

    target: str
    mode: Literal["ratio", "fixed", "percent"] | None = None
    ratio: Decimal | None = Field(None, gt=0)
    fixed_usdc: Decimal | None = Field(None, gt=0)
    percent: Decimal | None = Field(None, gt=0, le=100)
    max_per_trade_usdc: Decimal | None = Field(None, ge=0)
    max_per_market_usdc: Decimal | None = Field(None, ge=0)
    max_total_usdc: Decimal | None = Field(None, ge=0)
    max_slippage: Decimal | None = Field(None, ge=0, lt=1)
    max_book_move: Decimal | None = Field(None, ge=0, lt=1)
    max_spread: Decimal | None = Field(None, ge=0, lt=1)
    require_book: bool | None = None
    max_age_s: Decimal | None = Field(None, gt=0, le=3600)
    order_type: Literal["FAK", "FOK", "GTC"] | None = None
    round_up_to_min: bool | None = None
    markets: list[str] | None = None
    tags: list[str] | None = None
    min_target_usdc: Decimal | None = Field(None, ge=0)
    buys_only: bool | None = None
    copy_maker_fills: bool | None = None
    aggregate_ms: int | None = Field(None, ge=0, le=1000)
    match_window_ms: int | None = Field(None, gt=0)

    def overrides(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump(exclude={"target"}).items() if v is not None}


class CopySettings(CopyRuleSettings):
    """`[copy]`: the default rules, the targets (`[[copy.targets]]`; `--target` on the command line replaces
    them) and how the target's fills are detected."""

    targets: list[CopyTargetSettings] = []
    sources: list[Literal["chain", "rtds", "data_api"]] = ["chain", "rtds", "data_api"]
    poll_s: Decimal = Field(Decimal(2), gt=0, description="Data API polling interval, seconds")
    rtds_silence_s: Decimal = Field(
        Decimal(30), gt=0, description="RTDS activity silent this long: marked stale, then reconnected at 2x"
    )

    def rules_for(self, target: CopyTargetSettings | None) -> dict[str, object]:
        """The CopyConfig fields for a target: `[copy]`'s, with the target entry's overrides on top."""
        raw = self.strategy_config()
        if target is not None:
            raw.update(target.overrides())
        return raw


# The `copy` field shadows BaseModel.copy (deprecated since pydantic 2; model_copy() replaces it, and pmbot
# never calls it): pydantic warns about exactly that when Settings is defined.
warnings.filterwarnings("ignore", message='Field name "copy" in "Settings" shadows', category=UserWarning)


STRATEGY_KINDS = {"snipe": "snipe", "copy": "copy"}  # kind -> the Settings section it starts from
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class StrategyEntry(BaseModel):
    """One `[[strategies]]` entry of `pmbot run-all`: `kind` (snipe | copy), a unique `name`, and any key
    of that kind's section (`[snipe]` / `[copy]`), which it overrides for this instance."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: Literal["snipe", "copy"]
    name: str
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _INSTANCE_NAME.match(v) or v == "orchestrator":
            raise ValueError("must be 1-64 letters, digits, _ . : - (not 'orchestrator')")
        return v

    @model_validator(mode="after")
    def _known_keys(self) -> StrategyEntry:
        section = SnipeSettings if self.kind == "snipe" else CopySettings
        unknown = sorted(set(self.model_extra or {}) - set(section.model_fields))
        if unknown:
            raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} for kind {self.kind}: {', '.join(unknown)}")
        return self

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RunAllSettings(_Section):
    """`[run_all]`: how `pmbot run-all` supervises, reports and stops."""

    on_shutdown: Literal["cancel", "leave"] = "cancel"  # resting live orders at SIGINT / SIGTERM
    snapshot_interval_s: float = Field(300.0, gt=0, description="metrics snapshot into execution_logs")
    max_crashes: int = Field(3, gt=0, description="a strategy crashing this often ...")
    crash_window_s: float = Field(600.0, gt=0, description="... within this long is stopped")
    restart_backoff_s: float = Field(1.0, ge=0, description="first restart delay, doubled per crash")
    restart_backoff_max_s: float = Field(30.0, ge=0)
    shutdown_timeout_s: float = Field(10.0, gt=0, le=60)
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus exporter port (off: none)")
    metrics_host: str = "127.0.0.1"


Durability = Literal["full", "normal"]
# What each `[store] durability` keeps, in the words `pmbot config show` and the README use.
DURABILITY_NOTES: dict[str, str] = {
    "full": "SQLite synchronous=FULL: each commit (an order's write-ahead record, a fill) is fsynced before"
    " pmbot goes on; it survives a crash or SIGKILL of pmbot and a power loss or OS crash",
    "normal": "SQLite WAL with synchronous=NORMAL: a commit survives a crash or SIGKILL of pmbot, but the last"
    " commits may be lost on a power loss or OS crash (an order sent just before is then unknown to pmbot"
    " after the restart: check the venue before trading again); faster per order",
}


class StoreSettings(_Section):
    """`[store]`: how hard the SQLite store holds on to a commit (PostgreSQL follows the server's
    synchronous_commit and ignores it)."""

    durability: Durability = Field("full", description="full (the default) or normal")


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
    store: StoreSettings = StoreSettings()

    debug: bool = False
    # The trading commands' event loop (pmbot.event_loop): uvloop when installed ("auto"), or asyncio's own.
    event_loop: EventLoopName = "auto"

    risk: RiskSettings = RiskSettings()
    executor: ExecutorSettings = ExecutorSettings()
    snipe: SnipeSettings = SnipeSettings()
    copy: CopySettings = CopySettings()  # type: ignore[assignment]  # shadows the deprecated BaseModel.copy
    strategies: list[StrategyEntry] = []
    run_all: RunAllSettings = RunAllSettings()

    @model_validator(mode="after")
    def _unique_instances(self) -> Settings:
        seen: set[str] = set()
        for e in self.strategies:
            if e.name in seen:
                raise ValueError(f"strategies: two instances named {e.name!r}")
            seen.add(e.name)
        return self

    def strategy_instances(self) -> list[tuple[StrategyEntry, BaseModel]]:
        """Each enabled `[[strategies]]` entry with its section merged and validated (ConfigError, one
        line per bad key, naming the instance). No entry: the seed's two, `snipe` and `copy`."""
        entries = self.strategies or [
            StrategyEntry(kind="snipe", name="snipe"),
            StrategyEntry(kind="copy", name="copy"),
        ]
        out: list[tuple[StrategyEntry, BaseModel]] = []
        for i, e in enumerate(entries):
            if not e.enabled:
                continue
            base = getattr(self, STRATEGY_KINDS[e.kind])
            try:
                section = type(base).model_validate({**base.model_dump(), **e.overrides()})
            except ValidationError as err:
                lines = [
                    f"strategies[{i}] ({e.name}).{'.'.join(str(p) for p in x['loc'])}: {x['msg']}" for x in err.errors()
                ]
                raise ConfigError("\n".join(lines), hint=_FIX_HINT) from None
            out.append((e, section))
        return out

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
        # Range-checked here, so no signing library ever sees (and prints, in decimal) a bad key.
        if not 1 <= int(raw, 16) < SECP256K1_N:
            raise ValueError("is not a valid secp256k1 private key (must be 1 <= key < the curve order)")
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

    _refuse_unknown(_unknown_env_keys(environ), "the environment", "unset {}")

    origins: dict[str, str] = {}
    try:
        try:
            sources = _sources(cfg, envf, overrides or {}, environ)
        except tomllib.TOMLDecodeError as e:
            raise _toml_error(cfg, e) from None
        if envf is not None and envf.is_file():
            from dotenv import dotenv_values  # pydantic-settings' own .env reader

            # An unknown PMBOT_* key in .env is the same mistake as in the environment: the same error.
            names = {k: v or "" for k, v in dotenv_values(envf).items()}
            _refuse_unknown(_unknown_env_keys(names), str(envf), f"remove {{}} from {envf}")
        if cfg is not None:
            _reject_secrets_in_file(sources[3]())
        # Lowest priority first so that later (higher) sources overwrite the origin.
        for name, src in zip(reversed(SOURCE_NAMES), reversed(sources), strict=True):
            for key in _flatten(src()):
                origins[key] = name
        _ACTIVE_SOURCES[:] = sources
        settings = Settings()
    except ValidationError as e:
        # Not "see `pmbot config show`": it loads these same settings and would fail the same way.
        named = {".env": str(envf), "config file": f"config file {cfg}"}  # say which file
        raise ConfigError(_format_errors(e, {k: named.get(v, v) for k, v in origins.items()}), hint=_FIX_HINT) from None
    except ValueError as e:  # anything else a source could not parse
        raise ConfigError(f"cannot read settings: {e}", hint=_FIX_HINT) from None
    finally:
        _ACTIVE_SOURCES.clear()
    _announce_dotenv_urls(settings, origins, envf)
    return LoadedSettings(settings=settings, origins=origins, config_file=cfg, env_file=envf)


_FIX_HINT = "fix the key named above where it is set; `pmbot config show` works again once every key is valid"
_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _refuse_unknown(unknown: list[str], where: str, fix: str) -> None:
    """`fix` is "unset {}" or "remove {} from .env"; {} becomes it/them."""
    if not unknown:
        return
    many = len(unknown) > 1
    raise ConfigError(
        f"unknown setting{'s' if many else ''} in {where}: {', '.join(unknown)}",
        hint=fix.format("them" if many else "it") + "; the README lists the valid PMBOT_* names, and so does"
        f" `pmbot config show` once {'they are' if many else 'it is'} gone",
    )


def _toml_error(cfg: Path | None, e: tomllib.TOMLDecodeError) -> ConfigError:
    """`FILE line N, column M: what is wrong`: the file named, and a hint that does not send the
    operator to a command that reads the same broken file."""
    msg = str(e)
    where = _TOML_WHERE.search(msg)
    at = f" line {where.group(1)}, column {where.group(2)}" if where else ""
    what = _TOML_WHERE.sub("", msg)
    return ConfigError(
        f"{cfg}{at}: not valid TOML: {what}",
        hint="fix that line, or run without --config / PMBOT_CONFIG to use the other sources",
    )


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
# Settings that are amounts of money: shown with their unit.
MONEY_KEYS = {
    "risk.max_order_notional",
    "risk.max_position_per_market",
    "risk.max_total_exposure",
    "risk.daily_loss_limit",
    "executor.dry_run_balance",
    "snipe.usdc",
    "copy.fixed_usdc",
    "copy.max_per_trade_usdc",
    "copy.max_per_market_usdc",
    "copy.max_total_usdc",
    "copy.min_target_usdc",
}


def notes(settings: Settings) -> dict[str, str]:
    """Settings whose value is a trade-off the operator should read, keyed like describe()'s rows."""
    note = DURABILITY_NOTES[settings.store.durability]
    if settings.database_url.strip().lower().startswith("postgres"):
        note = "not used: the database is PostgreSQL, whose server setting synchronous_commit applies"
    return {"store.durability": note}


URL_KEYS = {"clob_url", "gamma_url", "data_url", "clob_ws_url", "rtds_url", "rpc_ws_url", "database_url", "redis_url"}


def _entry(value: Any) -> str:
    """A list item for `config show`: a table entry (`[[copy.targets]]`) as its set keys, `{target=x ratio=0.5}`."""
    if isinstance(value, dict):
        return "{" + " ".join(f"{k}={v}" for k, v in value.items() if v is not None) + "}"
    return str(value)


def describe(loaded: LoadedSettings) -> list[dict[str, str]]:
    """Rows for `config show`: key, env name, value (secrets masked), unit, source."""
    rows = []
    data = loaded.settings.model_dump()
    for key, value in _flatten(data).items():
        if key in SECRET_KEYS:
            shown = "(set, hidden)" if value is not None else "(not set)"
        elif value is None:
            shown = "(not set)"
        elif isinstance(value, bool):
            shown = "true" if value else "false"  # as it is written in TOML and .env, not Python's True
        elif isinstance(value, list):
            shown = ",".join(_entry(v) for v in value)
        else:
            shown = str(value)
        if key in URL_KEYS and value:
            shown = mask_url(shown)
        rows.append(
            {
                "key": key,
                "env": ENV_PREFIX + key.replace(".", "__").upper(),
                "value": shown,
                "unit": "USDC" if key in MONEY_KEYS else "",
                "source": loaded.origins.get(key, "default"),
            }
        )
    return rows


_MASK = "***"
# A path segment that looks like an API key (RPC providers put theirs in the path: /v2/<key>).
_KEYLIKE = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_-]{20,}$")


def mask_url(url: str) -> str:
    """The URL with its credentials hidden, parsed (not pattern-matched): userinfo (user and
    password, even one containing '@'), every query value, the fragment and, for web endpoints,
    key-like path segments. A plain file path is returned as it is."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _MASK  # not parseable: show nothing rather than something that may be a secret
    host = parts.netloc.rpartition("@")[2]  # userinfo is everything before the LAST '@'
    out = f"{parts.scheme}://{_MASK + '@' if '@' in parts.netloc else ''}{host}"
    path = parts.path
    if parts.scheme in ("http", "https", "ws", "wss"):
        path = "/".join(_MASK if _KEYLIKE.match(seg) else seg for seg in path.split("/"))
    out += path
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        out += "?" + (urlencode([(k, _MASK) for k, _ in pairs], safe="*") if pairs else _MASK)
    if parts.fragment:
        out += "#" + _MASK
    return out


# ---------------------------------------------------------------------------------- endpoints

VENUE_URL_KEYS = ("clob_url", "gamma_url", "data_url", "clob_ws_url", "rtds_url", "rpc_ws_url")


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and localhost: traffic that never leaves this machine."""
    if not host:
        return False
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_endpoints(settings: Settings) -> list[str]:
    """Venue URLs in plaintext (http://, ws://) to a host that is not loopback, as env names.

    Live trading sends the L1 auth signature, the API key, passphrase and HMACs over these; on a
    plaintext hop anyone on the path can take them (and replay the L1 headers to derive the secret)."""
    from urllib.parse import urlsplit

    bad = []
    for key in VENUE_URL_KEYS:
        url = getattr(settings, key)
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme in ("https", "wss"):
            continue
        if parts.scheme in ("http", "ws") and is_loopback_host(parts.hostname):
            continue
        bad.append(ENV_PREFIX + key.upper())
    return bad


def require_secure_endpoints(settings: Settings) -> None:
    """Refuse anything live over plaintext to another machine: one line, exit 2."""
    bad = insecure_endpoints(settings)
    if bad:
        raise ConfigError(
            f"live trading needs https:// / wss:// for every non-loopback venue URL; plaintext: {', '.join(bad)}",
            hint="fix the URL (see `pmbot config show` for where it came from)",
        )


def _announce_dotenv_urls(settings: Settings, origins: dict[str, str], env_file: Path | None) -> None:
    """A .env in the working directory is easy to plant: say so when one moves the venue."""
    changed = [
        f"{ENV_PREFIX}{key.upper()}={mask_url(str(getattr(settings, key)))}"
        for key in VENUE_URL_KEYS
        if origins.get(key) == ".env" and getattr(settings, key) != Settings.model_fields[key].default
    ]
    if changed and env_file is not None:
        log.warning(
            "%s sets venue URL%s %s; check that this file is yours",
            env_file.resolve(),
            "s" if len(changed) > 1 else "",
            ", ".join(changed),
        )
