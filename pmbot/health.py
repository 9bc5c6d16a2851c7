"""`pmbot config check`: validate settings and what they point at, without writing anything."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pmbot.config import Settings, insecure_endpoints
from pmbot.errors import PmbotError


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # not ok, but pmbot still works (e.g. Redis down, no key in dry-run)


def run_checks(settings: Settings, *, live: bool = False) -> list[Check]:
    checks = [
        Check("settings", True, "all keys valid"),
        _endpoints(settings),
        _database(settings),
        _redis(settings),
        *_wallet(settings),
    ]
    if live:
        checks += _live(settings)
    return checks


def _endpoints(settings: Settings) -> Check:
    bad = insecure_endpoints(settings)
    if bad:
        return Check("endpoints", False, f"plaintext to a non-loopback host: {', '.join(bad)}; --live is refused")
    return Check("endpoints", True, "https/wss (or loopback)")


def _database(settings: Settings) -> Check:
    from pmbot.store import is_postgres_url, sqlite_path
    from pmbot.store.migrations import MIGRATIONS

    if is_postgres_url(settings.database_url):
        from pmbot.store.postgres import check_database

        try:
            return Check("database", True, check_database(settings.database_url))
        except PmbotError as e:
            return Check("database", False, e.one_line())
    try:
        path = sqlite_path(settings.database_url)
    except PmbotError as e:
        return Check("database", False, e.one_line())
    problem = database_path_problem(path)
    if problem is not None:
        return Check("database", False, f"{problem[0]} (hint: {problem[1]})")
    if path.is_file():
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                names = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
            finally:
                conn.close()
        except sqlite3.Error as e:
            return Check("database", False, f"{path}: {e}")
        pending = [n for n, _ in MIGRATIONS if n not in names]
        more = f", {len(pending)} migration(s) to apply on next open" if pending else ", schema current"
        return Check("database", True, f"{path}{more}")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("/"))
    if os.access(parent, os.W_OK):
        return Check("database", True, f"{path} (will be created on first write)")
    return Check("database", False, f"{path}: cannot create it, {parent} is not writable")


def database_path_problem(path: Path) -> tuple[str, str] | None:
    """(why `path` cannot be the database file, what to do), or None. Only the default data directory is
    created on first use: a missing directory elsewhere is more likely a typo than a wish."""
    from pmbot.config import default_data_dir

    if path.is_dir():
        return f"{path} is a directory", f"PMBOT_DATABASE_URL must name a file, e.g. {path / 'pmbot.db'}"
    if path.exists() and not path.is_file():
        return f"{path} is not a regular file", "point PMBOT_DATABASE_URL at a file"
    parent = path.parent
    if not parent.is_dir() and parent.resolve() != default_data_dir().resolve():
        if parent.exists():
            return f"{parent} is not a directory", "point PMBOT_DATABASE_URL at a file in a directory"
        return (
            f"directory {parent} does not exist",
            f"create it (mkdir -p {parent}) or point PMBOT_DATABASE_URL at a file in an existing directory;"
            " only the default data directory is created for you",
        )
    return None


def _redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", True, "not configured (optional cache)")
    import redis

    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except Exception as e:
        return Check("redis", False, f"unreachable ({type(e).__name__}); pmbot works without it", warning=True)
    return Check("redis", True, "reachable")


def _wallet(settings: Settings) -> list[Check]:
    if settings.private_key is None:
        return [Check("wallet", False, "no PMBOT_PRIVATE_KEY: dry-run only", warning=True)]
    from eth_account import Account  # heavy import: only here

    address = Account.from_key(settings.private_key.get_secret_value()).address
    checks = [Check("wallet", True, f"signer {address}, signature type {settings.signature_type}")]
    if settings.signature_type != 0 and not settings.funder:
        checks.append(Check("funder", False, "signature types 1-3 trade from a proxy/safe: set PMBOT_FUNDER"))
    return checks


def _live(settings: Settings) -> list[Check]:
    """`--live`: which wallet trades and which approvals it lacks, from the venue (read-only GETs: the API
    key is derived, never created; nothing is signed for the chain)."""
    if settings.private_key is None:
        return [Check("live", False, "--live needs PMBOT_PRIVATE_KEY to ask the venue", warning=True)]
    import asyncio

    from pmbot.polymarket.balances import (
        COLLATERAL,
        SIGNATURE_TYPES,
        SPENDERS,
        BalanceAllowance,
        balance_allowance,
    )
    from pmbot.polymarket.factory import build_venue
    from pmbot.polymarket.http import RetryPolicy

    async def read() -> tuple[str, str, int, BalanceAllowance]:
        async with build_venue(settings, timeout=5.0, retry=RetryPolicy(attempts=2)) as venue:
            trading = await venue.trading(create_key=False)
            collateral = await balance_allowance(trading, COLLATERAL)
            return trading.signer.maker, trading.signer.address, trading.signer.signature_type, collateral

    try:
        maker, signer, sig_type, collateral = asyncio.run(read())
    except PmbotError as e:
        return [Check("venue", False, e.message)]
    kind = SIGNATURE_TYPES.get(sig_type, "unknown")
    via = "" if maker.lower() == signer.lower() else f", signed by {signer}"
    checks = [
        Check("trading wallet", True, f"signature type {sig_type} ({kind}): {maker}{via}"),
        Check("pUSD", True, f"{collateral.balance:f} on {settings.clob_url}"),
    ]
    missing = set(collateral.missing())
    for name, address in SPENDERS.items():
        if name in missing:
            checks.append(
                Check(f"allowance {name}", False, f"pUSD not approved for {address}: orders there fail", warning=True)
            )
        else:
            checks.append(Check(f"allowance {name}", True, f"approved ({address})"))
    return checks
