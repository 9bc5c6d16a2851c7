"""`pmbot settle`: record the payouts of open positions whose market has resolved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.money import fmt
from pmbot.store.models import PositionState, Query

if TYPE_CHECKING:
    from pmbot.settle import SettleResult

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", help="Do not contact the venue: only show open positions and payouts still owed."),
]


def settle(ctx: typer.Context, offline: OfflineOpt = False, as_json: JsonOpt = False) -> None:
    """Check every open position's market once; record each resolved one's payout (1 per winning share, 0 per losing).

    Safe to run any time: a payout is recorded once. Dry-run payouts are paper cash at once; live ones
    stay `redeemable` until the winning shares are redeemed on chain. `positions` and `stats` run this
    first unless --offline."""
    from pmbot.reporting import settlement_view
    from pmbot.settle import SettleResult, check_and_settle, open_tokens

    a: App = ctx.obj
    result = SettleResult()
    if a.database_exists():
        store = a.store
        if offline:
            open_count = len(open_tokens(store.list_positions(Query(state=PositionState.OPEN))))
        else:

            async def main() -> SettleResult:
                async with a.venue(timeout=5.0, attempts=2) as venue:
                    return await check_and_settle(store, venue, a.clock, risk_limits=a.settings.risk)

            result = base.run(main())  # the venue unreachable: VenueError, one line, exit 2
            open_count = 0
        owed = [p for p in store.list_positions(Query(state=PositionState.CLOSED, dry_run=False)) if p.redeemable]
    else:
        open_count, owed = 0, []
    for w in result.warnings:
        render.warn(w)
    if as_json:
        body: dict[str, Any] = {
            "offline": offline,
            "checked_tokens": result.checked_tokens,
            "unchecked_tokens": open_count,
            "closed_markets": result.closed_markets,
            "settled": [settlement_view(s) for s in result.settlements],
            "pending": result.pending,
            "redeemable": [
                {
                    "strategy": p.strategy,
                    "token_id": p.token_id,
                    "condition_id": p.condition_id,
                    "market": p.market,
                    "outcome": p.outcome,
                    "redeemable": fmt(p.redeemable),
                }
                for p in owed
            ],
        }
        render.print_json(body)
        return
    _print(result, offline=offline, open_count=open_count, owed_total=sum((p.redeemable for p in owed), start=0))


def _print(result: SettleResult, *, offline: bool, open_count: int, owed_total: Any) -> None:
    out = render.stdout()
    if result.settlements:
        table = Table(title="Settled", title_justify="left")
        for col, justify in [
            ("strategy", "left"),
            ("mode", "left"),
            ("market", "left"),
            ("outcome", "left"),
            ("shares", "right"),
            ("payout", "right"),
            ("realized", "right"),
            ("cash", "left"),
        ]:
            table.add_column(col, justify=justify, no_wrap=justify == "right")  # type: ignore[arg-type]
        for s in result.settlements:
            cash = "paper" if s.dry_run else (f"{render.usdc(s.redeemable)} redeemable" if s.redeemable else "–")
            table.add_row(
                s.strategy,
                render.mode(s.dry_run),
                s.market or render.short(s.token_id),
                s.outcome,
                render.shares(s.shares),
                render.price(s.payout),
                render.pnl(s.realized_pnl),
                cash,
            )
        out.print(table)
    if offline:
        out.print(f"offline: {open_count} open token(s) not checked; nothing recorded", style="dim")
    else:
        line = (
            f"checked {result.checked_tokens} open token(s): {result.closed_markets} market(s) closed,"
            f" {len(result.settlements)} position(s) settled"
        )
        if result.pending:
            line += f", {len(result.pending)} closed market(s) not resolved yet"
        out.print(line, style="dim")
    if owed_total:
        out.print(f"redeemable on chain (live, not yet redeemed): {render.usdc(owed_total)} USDC")


def register(app: typer.Typer) -> None:
    app.command("settle")(settle)
