"""Position accounting on micro-unit integers: pure, shared by every store backend.

Average-cost method. A BUY adds shares and their cost (notional + fee). A SELL releases the
sold fraction of the cost basis and realizes (proceeds - fee - released cost). A REDEEM is a
SELL of everything left at the payout price (1 won, 0 lost) and leaves the position RESOLVED.

Shares sold beyond what the ledger holds (bought outside pmbot, or split from collateral) have
no known cost: they realize their full proceeds. The position never goes negative: binary
outcome tokens cannot be shorted on Polymarket.

Recording fills (`book_fills`: positions, marks, trade rows) and settling a resolved token
(`redemption`, `unpaid_redemptions`, `redeemable_owed`) are here too, once for every backend: the
SQLite and PostgreSQL stores only read the books, take their locks and write the rows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pmbot.errors import InputError
from pmbot.money import div_round, mul_micro, to_micro
from pmbot.store import rows
from pmbot.store.models import DEFAULT_PAPER_WALLET, Fill, Position, PositionState, Side, TradeKind


@dataclass(slots=True)
class Book:
    """A position's running numbers, in micro-units."""

    size: int = 0
    cost: int = 0
    realized: int = 0
    state: PositionState = PositionState.OPEN


_BUY, _REDEEM = Side.BUY.value, TradeKind.REDEEM.value  # plain str: Enum attribute lookups are slow in 3.11
_FILL, _REVERSAL = TradeKind.FILL.value, TradeKind.REVERSAL.value
_OPEN, _CLOSED, _RESOLVED = PositionState.OPEN, PositionState.CLOSED, PositionState.RESOLVED


def apply(book: Book, side: Side, kind: TradeKind, price: int, size: int, fee: int) -> tuple[int, int]:
    """Apply one trade to `book` in place. Returns (notional, realized PnL of this trade)."""
    if size <= 0:
        raise ValueError("trade size must be positive")
    if not 0 <= price <= 1_000_000:
        raise ValueError("price must be between 0 and 1")
    notional = mul_micro(price, size)
    if side == _BUY:
        if kind == _REDEEM:
            raise ValueError("a redemption is a SELL")
        book.size += size
        book.cost += notional + fee
        book.state = _OPEN
        return notional, 0
    held = min(size, book.size)
    released = book.cost if held == book.size else div_round(book.cost * held, book.size) if held else 0
    realized = notional - fee - released
    book.size -= held
    book.cost -= released
    book.realized += realized
    if kind == _REDEEM:
        book.state = _RESOLVED
    elif book.size == 0:
        book.state = _CLOSED
    return notional, realized


def reverse(book: Book, side: Side, size: int, notional: int, fee: int, realized: int) -> int:
    """Take one recorded fill back out of `book`, in place: its trade FAILED at the venue, so its shares
    never moved and its cash never changed hands. Returns the realized PnL of the reversal (the fill's
    own realized PnL, negated).

    A BUY's shares and cost (notional + fee) leave the position; a SELL's shares come back with the cost
    basis it released, and its realized PnL is undone. Exact when the position did not trade since the
    fill; otherwise a BUY's shares are taken back as far as the position still holds them."""
    if size <= 0:
        raise ValueError("trade size must be positive")
    if side == _BUY:
        took = min(size, book.size)
        book.size -= took
        book.cost = 0 if book.size == 0 else max(0, book.cost - (notional + fee))
        undone = 0
    else:
        released = notional - fee - realized  # the cost basis the SELL took out of the position
        book.size += size
        book.cost += max(0, released)
        book.realized -= realized
        undone = -realized
    if book.state is not _RESOLVED:
        book.state = _OPEN if book.size > 0 else _CLOSED
    return undone


def rebook(history: Iterable[Mapping[str, Any]], taken_back: str) -> tuple[Book, int]:
    """A position rebuilt from its stored trade rows (`history`: all its trades, any kind, in (ts, id)
    order) without the fill `taken_back` nor the fills reversed before: the exact book of a fill taken
    back, whatever traded since (`reverse` is exact only when nothing did). Returns the book and the
    payout no longer owed (micro-USDC), for positions.redeemable_micro.

    The remaining fills go through `apply` as when they were recorded. A payout redeems only the shares
    the rebuilt position holds then (it was recorded for all the shares held, some of which never came):
    none held, it only leaves the position RESOLVED."""
    trades = list(history)
    skip = {taken_back}
    skip.update(r["trade_id"].removeprefix("revert:") for r in trades if r["kind"] == _REVERSAL)
    book = Book()
    unowed = 0
    for r in trades:
        kind = r["kind"]
        if kind == _FILL:
            if r["trade_id"] not in skip:
                apply(book, Side(r["side"]), TradeKind.FILL, r["price_micro"], r["size_micro"], r["fee_micro"])
        elif kind == _REDEEM:
            held = min(r["size_micro"], book.size)
            notional = (
                apply(book, Side.SELL, TradeKind.REDEEM, r["price_micro"], held, r["fee_micro"])[0] if held else 0
            )
            book.state = _RESOLVED
            if not int(r["dry_run"]):
                unowed += r["notional_micro"] - notional
    if book.state is _OPEN and book.size == 0:
        book.state = _CLOSED
    return book, unowed


def take_back(
    orig: Mapping[str, Any], old: Book, history: Iterable[Mapping[str, Any]], ts: int, reason: str
) -> tuple[Book, tuple[Any, ...], int]:
    """Reverse stored fill `orig` (a trades row) of a position whose stored book is `old` and whose trade
    rows are `history` (rebook). Returns the new book, the reversal trade row and the payout no longer
    owed. The reversal row carries the difference in realized PnL (so the trades' realized PnL still
    sums to the position's) and the fill's own time `ts`, so that a time window holds the fill and its
    reversal or neither; the time of the reversal (`ts`) is in its metadata."""
    book, unowed = rebook(history, orig["trade_id"])
    meta = {"reverses": orig["trade_id"], "reason": reason, "reverted_at": ts}
    return book, reversal_row(orig, orig["ts"], book.realized - old.realized, meta), unowed


def reversal_row(orig: Mapping[str, Any], ts: int, realized: int, metadata: Mapping[str, Any]) -> tuple[Any, ...]:
    """The trade row (rows.TRADE_COLUMNS) of the reversal of stored fill `orig` (a trades row)."""
    return (
        f"revert:{orig['trade_id']}",
        _REVERSAL,
        orig["strategy"],
        orig["token_id"],
        orig["condition_id"] or "",
        orig["market"] or "",
        orig["outcome"] or "",
        orig["side"],
        orig["price_micro"],
        orig["size_micro"],
        -orig["notional_micro"],
        -orig["fee_micro"],
        realized,
        int(orig["dry_run"]),
        orig["liquidity"] or "",
        orig["order_key"],
        orig["venue_order_id"],
        ts,
        json.dumps(dict(metadata), sort_keys=True, separators=(",", ":")),
        orig.get("wallet") or "",
    )


# ------------------------------------------------------------------------------------ recording fills

BookKey = tuple[str, str, bool, str]  # (strategy, token_id, dry_run, wallet): one position
Meta = dict[str, Any]  # a position's other columns: condition_id, market, outcome, opened_at, updated_at, mark


def load_books(
    found: Iterable[Sequence[Any]], keys: Collection[BookKey] | None = None
) -> tuple[dict[BookKey, Book], dict[BookKey, Meta]]:
    """Position rows (columns as rows.BOOK_COLUMNS) as books and their other columns; only `keys` when given."""
    books: dict[BookKey, Book] = {}
    meta: dict[BookKey, Meta] = {}
    for r in found:
        k = (r[0], r[1], bool(r[2]), r[13] or "")
        if keys is not None and k not in keys:
            continue
        books[k] = Book(size=r[3], cost=r[4], realized=r[5], state=PositionState(r[6]))
        meta[k] = {
            "condition_id": r[7],
            "market": r[8],
            "outcome": r[9],
            "opened_at": r[10],
            "updated_at": r[11],
            "mark": r[12],
        }
    return books, meta


def book_fills(
    batch: Sequence[Fill],
    micros: Sequence[tuple[int, int, int]],
    books: dict[BookKey, Book],
    meta: dict[BookKey, Meta],
    existing: set[str] | None = None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Apply fills (with their validated (price, size, fee) micros, rows.fill_micros) to their books, in
    place: the trade rows (rows.TRADE_COLUMNS) and the position rows (rows.POSITION_COLUMNS) to write.

    `books`/`meta` hold the batch's positions as stored (load_books); a position not there starts empty.
    Every book passed in gets a position row, changed or not. `existing`: trade ids to skip, updated with
    the batch's own (a trade id twice in a batch counts once); None when the caller has deduplicated.
    An impossible trade (ledger.apply refuses it) raises InputError naming the fill."""
    trade_rows: list[tuple[Any, ...]] = []
    append, to_row = trade_rows.append, rows.fill_to_row  # hot loop: local names
    for f, (price, size, fee) in zip(batch, micros, strict=True):
        if existing is not None:
            if f.trade_id in existing:
                continue
            existing.add(f.trade_id)
        k = (f.strategy, f.token_id, f.dry_run, f.wallet)
        book = books.get(k)
        if book is None:
            book = books[k] = Book()
            m = meta[k] = {
                "opened_at": f.ts,
                "updated_at": f.ts,
                "condition_id": "",
                "market": "",
                "outcome": "",
                "mark": None,
            }
        else:
            m = meta[k]
        if book.size == 0 and f.side == _BUY:
            m["opened_at"] = f.ts  # (re)opened
        if f.condition_id:
            m["condition_id"] = f.condition_id
        if f.market:
            m["market"] = f.market
        if f.outcome:
            m["outcome"] = f.outcome
        if f.ts > m["updated_at"]:
            m["updated_at"] = f.ts
        if f.kind == _FILL:
            m["mark"] = price  # a redemption's payout is not a market price
        try:
            notional, realized = apply(book, f.side, f.kind, price, size, fee)
        except ValueError as e:
            raise InputError(f"fill {f.trade_id}: {e}") from None
        append(to_row(f, price, size, fee, notional, realized))
    return trade_rows, position_rows(books, meta)


def position_rows(books: Mapping[BookKey, Book], meta: Mapping[BookKey, Meta]) -> list[tuple[Any, ...]]:
    """One row per book, columns as rows.POSITION_COLUMNS."""
    return [
        (
            k[0],
            k[1],
            int(k[2]),
            meta[k]["condition_id"],
            meta[k]["market"],
            meta[k]["outcome"],
            b.size,
            b.cost,
            b.realized,
            b.state.value,
            meta[k]["mark"],
            meta[k]["opened_at"],
            meta[k]["updated_at"],
            k[3],
        )
        for k, b in books.items()
    ]


# ------------------------------------------------------------------------------------- settling


def redemption(p: Position, payout: Decimal, ts: int, metadata: Mapping[str, Any] | None = None) -> Fill:
    """The `redeem` trade for a position whose market resolved: every share held at `payout`.

    Its trade id is deterministic (strategy, token, mode, and a paper position's wallet), so every path
    that learns of a resolution (`pmbot settle`, a report, the executor) records the payout once,
    whichever comes first."""
    meta = dict(metadata or {})
    if not p.dry_run and payout > 0:
        meta["redeemable"] = True  # cash arrives with the on-chain redemption, not now
    # the default paper wallet (and live) keep the ids of before paper wallets: a payout recorded before
    # migration 0011 is found again under its id, never paid twice
    wallet = f":{p.wallet}" if p.wallet not in ("", DEFAULT_PAPER_WALLET) else ""
    return Fill(
        trade_id=f"redeem:{p.strategy}:{p.token_id}:{int(p.dry_run)}{wallet}",
        kind=TradeKind.REDEEM,
        strategy=p.strategy,
        token_id=p.token_id,
        condition_id=p.condition_id,
        market=p.market,
        outcome=p.outcome,
        side=Side.SELL,
        price=payout,
        size=p.size,
        dry_run=p.dry_run,
        ts=ts,
        liquidity="redeem",
        metadata=meta,
        wallet=p.wallet,
    )


def unpaid_redemptions(redemptions: Iterable[Fill], taken: Callable[[list[str]], set[str]]) -> list[Fill]:
    """Redemptions of positions still open (so unpaid), each under a free trade id. A redeem id already
    taken means a fill recorded after that payout (trade history late) re-opened the position: this
    opening is paid under `<id>:2`, `<id>:3`, ... `taken(ids)` returns the ids of `ids` already recorded."""
    batch = list(redemptions)
    known = taken([f.trade_id for f in batch])
    out = []
    for f in batch:
        if f.trade_id in known:
            n = 2
            while taken([f"{f.trade_id}:{n}"]):
                n += 1
            f = dataclasses.replace(f, trade_id=f"{f.trade_id}:{n}")
        out.append(f)
    return out


def redeemable_owed(redemptions: Iterable[Fill], payout: Decimal) -> list[tuple[int, str, str]]:
    """(micro-USDC owed, strategy, token_id) per live redemption that pays: the trade's notional, which
    arrives with the on-chain redemption (positions.redeemable_micro)."""
    if payout <= 0:
        return []
    pay = to_micro(payout)
    return [(mul_micro(pay, to_micro(f.size)), f.strategy, f.token_id) for f in redemptions if not f.dry_run]
