"""`pmbot balance`: pUSD and positions with their CLOB asset types (read-only GETs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import ConfigError
from pmbot.money import fmt

if TYPE_CHECKING:
    from pmbot.polymarket.balances import Balances

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (amounts exact).")]


def balance(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """pUSD and open positions of the trading wallet, as the CLOB and the Data API see them. Sends nothing."""
    app: App = ctx.obj
    if app.settings.private_key is None:  # L2 auth: the venue only tells a wallet its own balance
        raise ConfigError("balance needs a wallet key", hint="set PMBOT_PRIVATE_KEY in the environment or .env")
    b = base.run(_read(app))
    if as_json:
        render.print_json(to_json(b))
        return
    out = render.stdout()
    out.print(f"wallet {b.wallet} (signature type {b.signature_type}): {render.usdc(b.collateral.balance)} pUSD")
    if not b.positions:
        out.print("no open positions")
        return
    table = Table(box=box.SIMPLE)
    for col in ("token", "asset type", "outcome", "market", "shares", "CLOB shares", "value pUSD"):
        table.add_column(col, justify="right" if col in ("shares", "CLOB shares", "value pUSD") else "left")
    for row in b.positions:
        p = row.position
        table.add_row(
            render.short(p.token_id, 14),
            row.asset_type,
            render.plain(p.outcome or ""),
            render.plain(p.title or p.slug or p.condition_id),
            render.shares(p.size),
            render.shares(row.clob_balance),
            render.usdc(p.current_value),
        )
    out.print(table)


async def _read(app: App) -> Balances:
    from pmbot.polymarket.balances import read_balances

    async with app.venue(timeout=5.0, attempts=2) as v:  # a dead venue costs seconds, not a minute
        return await read_balances(v)


def to_json(b: Balances) -> dict[str, Any]:
    return {
        "wallet": b.wallet,
        "signature_type": b.signature_type,
        "collateral": {
            "asset_type": b.collateral.asset_type,
            "balance": fmt(b.collateral.balance),
            "allowances": {k: str(v) for k, v in b.collateral.allowances.items()},
            "missing_allowances": b.collateral.missing(),
        },
        "positions": [
            {
                "token_id": r.position.token_id,
                "asset_type": r.asset_type,
                "condition_id": r.position.condition_id,
                "outcome": r.position.outcome,
                "title": r.position.title,
                "size": fmt(r.position.size),
                "clob_balance": fmt(r.clob_balance),
                "avg_price": fmt(r.position.avg_price),
                "current_value": fmt(r.position.current_value),
                "redeemable": r.position.redeemable,
            }
            for r in b.positions
        ],
    }


def register(app: typer.Typer) -> None:
    app.command("balance")(balance)
