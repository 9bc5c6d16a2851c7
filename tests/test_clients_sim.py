"""Every REST client call, over real sockets, against `pmbot sim`: Gamma, CLOB public, Data API, and
CLOB trading with L1/L2 auth and V2-signed orders the sim verifies. Plus retries and the rule that an
order POST is never retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from pmbot.config import load_settings
from pmbot.errors import InputError, NotFoundError, OrderStateUnknownError, VenueUnavailableError
from pmbot.polymarket.factory import Venue, build_venue
from pmbot.polymarket.http import RetryPolicy
from pmbot.polymarket.models import OrderType, Side
from pmbot.sim.testing import SimServer

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)


@pytest.fixture
async def venue(sim: SimServer) -> AsyncIterator[Venue]:
    env = {**sim.env(), "PMBOT_PRIVATE_KEY": HARDHAT_KEY}
    settings = load_settings(env_file=None, environ=env).settings
    v = build_venue(settings, clock=sim.now, retry=FAST, timeout=2.0)
    yield v
    await v.aclose()


# ------------------------------------------------------------------------------------------- gamma


async def test_gamma_markets_closing_soon_in_end_order(sim: SimServer, venue: Venue) -> None:
    now_ms = int(sim.now() * 1000)
    soon = await venue.gamma.markets(end_min_ms=now_ms, end_max_ms=now_ms + 15 * 60_000)
    current = sim.current_market()
    assert [m.slug for m in soon] == [current["slug"]]
    m = soon[0]
    assert m.token_ids == tuple(current["token_ids"]) and [o.outcome for o in m.outcomes] == ["Up", "Down"]
    assert m.end_ms == current["end"] * 1000 and m.start_ms == current["start"] * 1000
    assert m.tick_size == Decimal("0.01") and m.min_order_size == 5 and m.series_slug == "btc-up-or-down-15m"
    later = await venue.gamma.markets(end_min_ms=now_ms, limit=50)
    ends = [x.end_ms for x in later]
    assert ends == sorted(ends) and len(later) > 1


async def test_gamma_lookups_by_slug_and_token(sim: SimServer, venue: Venue) -> None:
    current = sim.current_market()
    assert (await venue.gamma.market_by_slug(current["slug"])).condition_id == current["condition_id"]
    by_token = await venue.gamma.market_by_token(current["token_ids"][1])
    assert by_token.slug == current["slug"]
    with pytest.raises(NotFoundError):
        await venue.gamma.market_by_slug("no-such-market")


async def test_resolve_wallet_by_name_and_address(sim: SimServer, venue: Venue) -> None:
    whale = await venue.gamma.resolve_wallet("distinct-baguette")
    assert whale.proxy_wallet == sim.whale_address.lower() and whale.name == "distinct-baguette"
    as_is = await venue.gamma.resolve_wallet(sim.whale_address)
    assert as_is.proxy_wallet == sim.whale_address.lower()
    with pytest.raises(NotFoundError):
        await venue.gamma.resolve_wallet("nobody-by-this-name-xyz")
    with pytest.raises(InputError):
        await venue.gamma.resolve_wallet("0x1234")


# -------------------------------------------------------------------------------------- clob public


async def test_book_and_prices_agree(sim: SimServer, venue: Venue) -> None:
    up, down = sim.current_market()["token_ids"]
    book = await venue.clob.book(up)
    raw = sim.book(up)
    assert raw is not None and book.best_bid == Decimal(raw["bids"][-1]["price"])  # best is LAST on the wire
    assert book.best_ask == Decimal(raw["asks"][-1]["price"]) and book.best_bid < book.best_ask
    assert book.tick_size == Decimal("0.01") and book.neg_risk is False
    assert await venue.clob.price(up, Side.BUY) in (book.best_bid, book.best_ask)
    assert await venue.clob.midpoint(up) == book.midpoint
    assert await venue.clob.tick_size(up) == Decimal("0.01")
    assert await venue.clob.neg_risk(up) is False
    both = await venue.clob.books([up, down])
    assert [b.token_id for b in both] == [up, down]
    # Up and Down mirror each other: best bid on Up + best ask on Down = 1
    assert both[0].best_bid + both[1].best_ask == 1
    fees = await venue.clob.fee_schedule(book.market)
    assert fees.rate == Decimal("0.07") and fees.taker_only
    assert abs(await venue.clob.server_time() - sim.now()) < 5


async def test_clob_markets_and_unknown_token(sim: SimServer, venue: Venue) -> None:
    current = sim.current_market()
    m = await venue.clob.market(current["condition_id"])
    assert m.token_ids == tuple(current["token_ids"])
    page, _cursor = await venue.clob.markets_page()
    assert current["condition_id"] in {x.condition_id for x in page} or _cursor is not None
    with pytest.raises(NotFoundError):
        await venue.clob.book("12345")


async def test_market_params_cache_warms_once(sim: SimServer, venue: Venue) -> None:
    up, down = sim.current_market()["token_ids"]
    params = await venue.params.warm([up, down, up])
    assert params[0].tick_size == Decimal("0.01") and not params[0].neg_risk and params[0].fees.rate == Decimal("0.07")
    assert venue.params.cached(up) is params[0]
    venue.params.set_tick_size(up, Decimal("0.001"))
    assert (await venue.params.get(up)).tick_size == Decimal("0.001")


# ----------------------------------------------------------------------------------------- data api


async def test_whale_activity_trades_and_positions(sim: SimServer, venue: Venue) -> None:
    sim.advance(60)  # the whale trades every few seconds
    wallet = sim.whale_address.lower()
    acts = await venue.data.activity(wallet, limit=20)
    assert acts and all(a.wallet == wallet for a in acts)
    stamps = [a.timestamp_ms for a in acts]
    assert stamps == sorted(stamps, reverse=True)
    trade = next(a.as_trade() for a in acts if a.type == "TRADE")
    assert trade is not None and trade.token_id in {t for m in sim.markets() for t in m["token_ids"]}
    trades = await venue.data.trades(user=wallet, taker_only=False, limit=10)
    assert trades and all(t.wallet == wallet and 0 < t.price < 1 for t in trades)
    positions = await venue.data.positions(wallet)
    assert positions and all(p.size > 0 for p in positions)


# ------------------------------------------------------------------------------------------ trading


async def test_api_key_derivation_is_stable(sim: SimServer, venue: Venue) -> None:
    trading = await venue.trading()
    assert trading.creds is not None
    assert trading.creds.api_key == sim.creds(HARDHAT_ADDRESS)["apiKey"]
    assert "secret" not in repr(trading.creds) or "***" in repr(trading.creds)
    assert trading.signer.address == HARDHAT_ADDRESS


async def test_gtc_rests_then_cancels(sim: SimServer, venue: Venue) -> None:
    trading = await venue.trading()
    up = sim.current_market()["token_ids"][0]
    book = await venue.clob.book(up)
    price = max(Decimal("0.01"), book.best_bid - Decimal("0.05"))
    order = await trading.build_order(up, Side.BUY, price, Decimal(10))
    ack = await trading.post_order(order, OrderType.GTC)
    assert ack.accepted and ack.status == "live" and ack.order_id == order.order_hash
    opened = await trading.open_orders(token_id=up)
    assert [o.order_id for o in opened] == [order.order_hash]
    assert opened[0].price == price and opened[0].original_size == 10 and opened[0].side is Side.BUY
    one = await trading.order(order.order_hash)
    assert one is not None and one.status == "LIVE"
    result = await trading.cancel(order.order_hash)
    assert result.canceled == (order.order_hash,)
    assert await trading.open_orders(token_id=up) == []


async def test_fok_buy_fills_at_the_ask_and_shows_in_trades(sim: SimServer, venue: Venue) -> None:
    trading = await venue.trading()
    up = sim.current_market()["token_ids"][0]
    book = await venue.clob.book(up)
    assert book.best_ask is not None
    order = await trading.build_order(up, Side.BUY, book.best_ask, Decimal(10), order_type=OrderType.FOK)
    ack = await trading.post_order(order, OrderType.FOK)
    assert ack.accepted and ack.status == "matched", ack
    assert ack.making_amount is not None and ack.making_amount <= 10 * book.best_ask
    trades = await trading.trades(token_id=up)
    assert trades and trades[0].side is Side.BUY and trades[0].price <= book.best_ask
    assert await venue.clob.last_trade_price(up) == trades[0].price
    assert len(sim.received_orders()) == 1


async def test_venue_refusals_are_acks_not_exceptions(sim: SimServer, venue: Venue) -> None:
    trading = await venue.trading()
    up = sim.current_market()["token_ids"][0]
    book = await venue.clob.book(up)
    depth = sum(lv.size for lv in book.asks)
    assert book.best_ask is not None
    too_big = await trading.build_order(up, Side.BUY, book.best_ask, depth + 1000, order_type=OrderType.FOK)
    ack = await trading.post_order(too_big, OrderType.FOK)
    assert not ack.accepted and "FOK" in ack.error and ack.status == "rejected"
    dup = await trading.build_order(up, Side.BUY, Decimal("0.02"), Decimal(5))
    assert (await trading.post_order(dup, OrderType.GTC)).accepted
    again = await trading.post_order(dup, OrderType.GTC)
    assert not again.accepted and "Duplicated" in again.error


async def test_batch_cancel_all_and_cancel_market(sim: SimServer, venue: Venue) -> None:
    trading = await venue.trading()
    up, down = sim.current_market()["token_ids"]
    orders = [
        (await trading.build_order(tok, Side.BUY, Decimal("0.02") + Decimal(i) / 100, Decimal(5)), OrderType.GTC)
        for i, tok in enumerate([up, down, up])
    ]
    acks = await trading.post_orders(orders)
    assert [a.accepted for a in acks] == [True, True, True]
    assert {a.order_id for a in acks} == {o.order_hash for o, _ in orders}
    res = await trading.cancel_market(token_id=down)
    assert res.canceled == (orders[1][0].order_hash,)
    res = await trading.cancel_many([orders[0][0].order_hash, "0x" + "ab" * 32])
    assert res.canceled == (orders[0][0].order_hash,) and list(res.not_canceled) == ["0x" + "ab" * 32]
    res = await trading.cancel_all()
    assert res.canceled == (orders[2][0].order_hash,)
    with pytest.raises(Exception, match="at most 15"):
        await trading.post_orders(orders * 6)


# ------------------------------------------------------------------------------------ faults/retries


async def test_reads_retry_through_429_and_500(sim: SimServer, venue: Venue) -> None:
    up = sim.current_market()["token_ids"][0]
    sim.set_faults(rate_limit=2, retry_after=0.05, rate_limit_path="/book")
    assert (await venue.clob.book(up)).best_bid is not None
    assert sim.state()["faults"]["rate_limit"] == 0  # both 429s were consumed, then it succeeded
    sim.clear_faults()
    sim.set_faults(server_error=2)
    assert await venue.clob.tick_size(up) == Decimal("0.01")
    sim.clear_faults()
    sim.set_faults(server_error=10)
    with pytest.raises(VenueUnavailableError):
        await venue.clob.tick_size(up)


async def test_order_post_is_never_retried_and_a_lost_answer_is_unknown(sim: SimServer, venue: Venue) -> None:
    trading = await venue.trading()
    up = sim.current_market()["token_ids"][0]
    sim.set_faults(drop_order_responses=1)
    order = await trading.build_order(up, Side.BUY, Decimal("0.03"), Decimal(5))
    with pytest.raises(OrderStateUnknownError):
        await trading.post_order(order, OrderType.GTC)
    # sent exactly once, and the venue did place it: reconciliation finds it by its hash
    assert [o["order"]["signature"] for o in sim.received_orders()] == [order.signature]
    assert [o.order_id for o in await trading.open_orders(order_id=order.order_hash)] == [order.order_hash]
    sim.clear_faults()
    sim.set_faults(server_error=1)
    other = await trading.build_order(up, Side.BUY, Decimal("0.04"), Decimal(5))
    with pytest.raises(OrderStateUnknownError):
        await trading.post_order(other, OrderType.GTC)
    assert len(sim.received_orders()) == 1  # the 500 was not followed by a second attempt
