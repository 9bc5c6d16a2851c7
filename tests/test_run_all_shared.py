"""`pmbot run-all`'s shared connections beyond the market channel: one RTDS connection (`RtdsHub`) for every
sniper's reference prices and every copy feed's activity, one chain log subscription (`ChainHub`) for every
copy target. Against `pmbot sim` over real sockets (the sim counts the connections and eth_subscribe calls
it was asked for), plus the hubs' routing and reference counting on stand-in streams."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from pmbot.app import App
from pmbot.polymarket.models import CryptoPrice, StreamState, StreamStatus, TradeSource, WalletTrade
from pmbot.polymarket.streams import RtdsSubscription
from pmbot.runner.chain_hub import ChainHub
from pmbot.runner.host import Host
from pmbot.runner.rtds_hub import RtdsConsumer, RtdsHub
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.store.models import Side
from pmbot.strategies.events import TargetSource
from tests.test_run_all import opts, snipe


async def eventually(cond: Any, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.02)


def _rpc_subs(sim: SimServer) -> int:
    return sim.call(lambda v: sum(len(c.subs) for c in v.hub.rpc))


def _drop_rtds(v: Any) -> None:
    for c in list(v.hub.rtds):
        c.close()  # the sim closes the socket (going away)


def _opened(sim: SimServer) -> dict[str, int]:
    return sim.call(lambda v: dict(v.hub.opened))


def test_run_all_opens_one_rtds_connection_and_one_chain_subscription_for_two_snipers_and_two_copiers(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pmbot.runner.copy_session import TargetRequest
    from pmbot.runner.units import CopyUnit

    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    whale = sim.whale_address.lower()
    trader = SimTrader(sim, HARDHAT_KEYS[0])
    sim.fund(trader.address, pusd=500)
    other = trader.address.lower()
    late = SimTrader(sim, HARDHAT_KEYS[1])
    sim.fund(late.address, pusd=500)
    third = late.address.lower()
    # what each RTDS consumer of the hub was handed: (its topics, event kind, wallet or symbol)
    got: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    topics: dict[int, frozenset[str]] = {}
    wallets: dict[int, frozenset[str] | None] = {}
    put = RtdsConsumer._put

    def record(self: RtdsConsumer, item: Any) -> None:
        topics[id(self)] = frozenset(s.topic for s in self.subs)
        wallets.setdefault(id(self), None if self.wallets is None else frozenset(self.wallets))  # as it started
        if isinstance(item, WalletTrade):
            got[id(self)].append(("trade", item.wallet))
        elif isinstance(item, CryptoPrice):
            got[id(self)].append(("price", item.topic))
        elif isinstance(item, StreamStatus):
            got[id(self)].append(("status", item.state))
        put(self, item)

    monkeypatch.setattr(RtdsConsumer, "_put", record)
    app = App(clock=sim.now)
    copy_settings = app.settings.copy
    copy_whale = CopyUnit("copy-whale", copy_settings, [TargetRequest(whale)])
    copy_other = CopyUnit("copy-other", copy_settings, [TargetRequest(other)])
    units: list[Any] = [snipe("snipe-a", cur["token_ids"][0]), snipe("snipe-b", cur["token_ids"][1]), copy_whale,
                        copy_other]  # fmt: skip
    host = Host(app, units, dry_run=True, options=opts(tick_s=0.05))
    seen: dict[str, Any] = {}

    async def advance(seconds: int) -> None:
        for _ in range(seconds):
            await asyncio.to_thread(sim.advance, 1)
            await asyncio.sleep(0.05)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop=stop))
        await asyncio.wait_for(host.ready.wait(), 15)
        assert host.rtds_hub is not None and host.chain_hub is not None
        rtds, chain = host.rtds_hub, host.chain_hub
        await eventually(lambda: len(rtds.consumers) == 4, "every feed on the RTDS hub")
        await eventually(lambda: set(chain.wallets) == {whale, other}, "both targets on the chain hub")
        await eventually(lambda: _rpc_subs(sim) == 1 and rtds.state == "connected", "subscribed")
        await advance(5)
        resp = await asyncio.to_thread(
            trader.post_order, cur["token_ids"][0], "BUY", Decimal("0.99"), amount=Decimal("5"), order_type="FOK"
        )
        assert resp.status_code == 200, resp.text
        await advance(10)  # mined 2 s after the match: the log follows
        seen["before_drop"] = _opened(sim)
        seen["subs"] = _rpc_subs(sim)
        seen["rtds_conns"] = sim.call(lambda v: len(v.hub.rtds))
        seen["health"] = host.streams()
        # the sim drops the RTDS connection: every consumer hears of it, and the one reconnect serves them all
        marks = {k: len(v) for k, v in got.items()}
        sim.call(_drop_rtds)
        await eventually(lambda: rtds.state == "reconnecting", "the drop")
        await eventually(lambda: rtds.state == "connected", "the reconnect")
        await advance(8)
        seen["after"] = {k: v[marks.get(k, 0) :] for k, v in got.items()}
        seen["after_drop"] = _opened(sim)
        # a target added to a running copy feed is followed on the same connections
        from pmbot.runner import copy_session as cs

        ctx = host.ctx
        assert ctx is not None
        added = await cs.resolve_targets(ctx.venue, [TargetRequest(third)], copy_settings)
        built = await cs.build_copy_runners(
            ctx.venue, ctx.store, ctx.executor, added, mode=ctx.mode, run_id=ctx.run_id, clock=ctx.clock,
            balance=Decimal(1000), make_runner=lambda st, view, dlog: copy_other._runner(ctx, st, view, dlog),
        )  # fmt: skip
        await copy_other.feed.add_target(added[0], built.runners[third])
        await eventually(lambda: third in chain.wallets and _rpc_subs(sim) == 1, "the late target subscribed")
        resp = await asyncio.to_thread(
            late.post_order, cur["token_ids"][1], "BUY", Decimal("0.99"), amount=Decimal("5"), order_type="FOK"
        )
        assert resp.status_code == 200, resp.text
        await advance(6)
        await eventually(
            lambda: (
                {f.source for f in copy_other.feed.last_fills.get(third, [])} >= {TargetSource.CHAIN, TargetSource.RTDS}
            ),
            "the late target's fill on chain and RTDS",
        )
        seen["late"] = _opened(sim), _rpc_subs(sim)
        stop.set()
        await asyncio.wait_for(task, 20)

    try:
        asyncio.run(go())
    finally:
        trader.close()
        late.close()
    # one RTDS connection and one chain connection for four feeds; one live log subscription for both targets
    assert seen["before_drop"]["rtds"] == 1 and seen["before_drop"]["rpc"] == 1, seen["before_drop"]
    assert seen["subs"] == 1 and seen["rtds_conns"] == 1
    assert seen["after_drop"]["rtds"] == 2 and seen["after_drop"]["rpc"] == 1  # one reconnect, for everyone
    for name in ("rtds", "rtds:activity", "rtds:crypto_prices_chainlink", "chain"):
        assert name in seen["health"], name
    # each consumer got only its own events
    snipers = [k for k, t in topics.items() if t == {"crypto_prices_chainlink"}]
    copiers = {wallets[k]: k for k, t in topics.items() if t == {"activity"}}
    assert len(snipers) == 2 and set(copiers) == {frozenset({whale}), frozenset({other})}
    for k in snipers:
        kinds = {e[0] for e in got[k]}
        assert ("price", "crypto_prices_chainlink") in got[k] and "trade" not in kinds
    for w, k in copiers.items():
        traded = {e[1] for e in got[k] if e[0] == "trade"}
        assert w is not None  # its targets' trades (the late one's too), no one else's, and no prices
        assert traded == (set(w) | {third} if other in w else set(w)), (w, traded)
        assert not any(e[0] == "price" for e in got[k])
    # the drop reached every consumer, and each resumed on the one new connection
    for after in seen["after"].values():
        states = [e[1] for e in after if e[0] == "status"]
        assert StreamState.RECONNECTING in states and states[-1] is StreamState.CONNECTED, states
    for k in snipers:
        assert any(e[0] == "price" for e in seen["after"][k])
    # the copy feeds: each saw its own target's fills, on chain and on RTDS
    fills_whale = {f.target for f in copy_whale.feed.last_fills.get(whale, [])}
    fills_other = copy_other.feed.last_fills.get(other, [])
    assert fills_whale <= {whale} and whale not in copy_other.feed.runners
    assert {f.target for f in fills_other} == {other}
    sources = {f.source for f in fills_other} | {s for s, h in copy_other.feed.health.items() if h.events}
    assert {TargetSource.CHAIN, TargetSource.RTDS} <= sources, sources
    assert copy_whale.feed.health[TargetSource.CHAIN].events > 0  # the whale trades every few seconds
    # the late target: still one RTDS connection (plus the drop's reconnect), one RPC connection, one filter
    opened, subs = seen["late"]
    assert (opened["rtds"], opened["rpc"], subs) == (2, 1, 1), seen["late"]
    assert {f.target for f in copy_other.feed.last_fills[third]} == {third}
    assert third not in copy_whale.feed.last_fills
    app.close()


# ------------------------------------------------------------------------------------ chain hub


def test_a_target_added_later_is_followed_on_the_same_subscription_and_no_log_is_lost(sim: SimServer) -> None:
    from pmbot.runner.copy_feed import ChainSighting, copy_chain_stream_class

    whale = sim.whale_address.lower()
    late = SimTrader(sim, HARDHAT_KEYS[1])
    sim.fund(late.address, pusd=500)
    rpc = sim.env()["PMBOT_RPC_WS_URL"]
    cls = copy_chain_stream_class()
    hub = ChainHub(lambda wallets: cls(rpc, wallets, clock=sim.now))
    cur = sim.current_market()

    async def drain(c: Any, into: list[Any]) -> None:
        async for item in c:
            into.append(item)

    async def go() -> dict[str, Any]:
        a = hub.consumer([whale], name="a")
        b = hub.consumer([], name="b")
        got_a: list[Any] = []
        got_b: list[Any] = []
        async with a, b:
            tasks = [asyncio.create_task(drain(a, got_a)), asyncio.create_task(drain(b, got_b))]
            await eventually(lambda: hub.state == "connected" and _rpc_subs(sim) == 1, "subscribed")
            for _ in range(6):
                await asyncio.to_thread(sim.advance, 1)
                await asyncio.sleep(0.02)
            await b.follow([late.address])  # the filter is replaced while the whale keeps trading
            for _ in range(3):
                await asyncio.to_thread(sim.advance, 1)
                await asyncio.sleep(0.02)
            resp = await asyncio.to_thread(
                late.post_order, cur["token_ids"][1], "BUY", Decimal("0.99"), amount=Decimal("5"), order_type="FOK"
            )
            assert resp.status_code == 200, resp.text
            for _ in range(8):
                await asyncio.to_thread(sim.advance, 1)
                await asyncio.sleep(0.02)
            own = [lg for lg in sim.chain_logs() if lg["topics"][2][-40:] == whale[2:]]
            await eventually(lambda: len([x for x in got_a if isinstance(x, ChainSighting)]) >= len(own), "the logs")
            await eventually(lambda: any(isinstance(x, ChainSighting) for x in got_b), "the late target's fill")
            subs, opened = _rpc_subs(sim), _opened(sim)
            await b.unfollow([late.address])
            await eventually(lambda: hub.wallets == (whale,), "unfollowed")
            for t in tasks:
                t.cancel()
        await hub.close()
        return {"a": got_a, "b": got_b, "own": own, "subs": subs, "opened": opened}

    try:
        r = asyncio.run(go())
    finally:
        late.close()
    sight_a = [x for x in r["a"] if isinstance(x, ChainSighting)]
    sight_b = [x for x in r["b"] if isinstance(x, ChainSighting)]
    assert {x.trade.wallet for x in sight_a} == {whale}
    assert {x.trade.wallet for x in sight_b} == {late.address.lower()}
    # every one of the whale's logs exactly once, across the subscription's replacement
    keys = [(x.trade.tx_hash, x.log_index) for x in sight_a]
    assert len(keys) == len(set(keys)) == len(r["own"])
    assert r["subs"] == 1 and r["opened"]["rpc"] == 1  # one connection, one live filter for both
    assert r["opened"]["rpc_subscribe"] == 2  # the first filter, and its replacement with the late target


# ------------------------------------------------------------------------------------- rtds hub


class FakeRtds:
    """An RtdsStream stand-in: records (un)subscriptions and the wallet filter; the test pushes events."""

    made: ClassVar[list[FakeRtds]] = []

    def __init__(self, subs: list[RtdsSubscription]) -> None:
        self.subs = list(subs)
        self.initial = list(subs)
        self.sent: list[tuple[str, list[RtdsSubscription]]] = []
        self.wallets: set[str] | None = set()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.topic_seen: dict[str, float] = {}
        self.counters = None
        self.reconnects = 0
        FakeRtds.made.append(self)

    def set_wallets(self, wallets: Any) -> None:
        self.wallets = None if wallets is None else set(wallets)

    async def subscribe(self, subs: list[RtdsSubscription]) -> None:
        self.subs += subs
        self.sent.append(("subscribe", list(subs)))

    async def unsubscribe(self, subs: list[RtdsSubscription]) -> None:
        self.subs = [s for s in self.subs if s not in subs]
        self.sent.append(("unsubscribe", list(subs)))

    async def reconnect(self) -> None:
        self.reconnects += 1

    async def __aenter__(self) -> FakeRtds:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    def __aiter__(self) -> FakeRtds:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        self.queue.put_nowait(None)


def test_a_shared_stream_that_dies_is_reopened_for_the_feeds_that_restart() -> None:
    """A stream bug ends the hub's connection: its consumers hear the error (their feeds restart the source)
    and the restarted consumers get a new connection, not the dead one."""
    FakeRtds.made = []
    btc = RtdsSubscription.chainlink("btc/usd")

    async def go() -> tuple[str, int, Any]:
        hub = RtdsHub(FakeRtds)  # type: ignore[arg-type]
        first = hub.consumer([btc])
        await first.__aenter__()
        FakeRtds.made[0].queue.put_nowait(RuntimeError("stream bug"))
        try:
            await asyncio.wait_for(first.__anext__(), 2)
            error = ""
        except RuntimeError as e:
            error = str(e)
        await first.close()
        again = hub.consumer([btc])
        await again.__aenter__()
        FakeRtds.made[-1].queue.put_nowait(_price(btc.topic, "btc/usd"))
        item = await asyncio.wait_for(again.__anext__(), 2)
        await hub.close()
        return error, len(FakeRtds.made), item

    error, made, item = asyncio.run(go())
    assert error == "stream bug" and made == 2
    assert isinstance(item, CryptoPrice)


def _price(topic: str, symbol: str) -> CryptoPrice:
    return CryptoPrice(topic=topic, symbol=symbol, value=Decimal(1), timestamp_ms=1)


def _trade(wallet: str) -> WalletTrade:
    return WalletTrade(source=TradeSource.RTDS, wallet=wallet, token_id="t", side=Side.BUY, size=Decimal(1),
                       price=Decimal("0.5"), timestamp_ms=1, tx_hash="0x1")  # fmt: skip


def test_the_rtds_hub_merges_counts_and_routes_subscriptions_by_topic_symbol_and_wallet() -> None:
    FakeRtds.made = []
    btc, eth = RtdsSubscription.chainlink("btc/usd"), RtdsSubscription.chainlink("eth/usd")
    twap = RtdsSubscription("crypto_prices_twap_sixty", "update", '{"symbol":"btc/usd"}')
    act = RtdsSubscription.activity()

    async def pull(c: RtdsConsumer, n: int) -> list[Any]:
        return [await asyncio.wait_for(c.__anext__(), 2) for _ in range(n)]

    async def go() -> dict[str, Any]:
        hub = RtdsHub(FakeRtds)  # type: ignore[arg-type]
        s1 = hub.consumer([btc, twap])
        s2 = hub.consumer([btc])
        cw = hub.consumer([act], wallets=["0xAA"])
        cx = hub.consumer([act], wallets=["0xbb"])
        for c in (s1, s2, cw, cx):
            await c.__aenter__()
        await s2.subscribe([eth])  # a sniper arms an ETH market
        stream = FakeRtds.made[0]
        out: dict[str, Any] = {"made": len(FakeRtds.made), "first": stream.initial, "all": list(stream.subs)}
        out["wallets"] = set(stream.wallets or ())
        for item in (_price(btc.topic, "btc/usd"), _price(eth.topic, "eth/usd"), _price(twap.topic, "btc/usd"),
                     _price("crypto_prices", "btcusdt"), _trade("0xaa"), _trade("0xbb"), _trade("0xcc")):  # fmt: skip
            stream.queue.put_nowait(item)
        stream.queue.put_nowait(StreamStatus(stream="rtds", state=StreamState.RECONNECTING, timestamp_ms=1))
        out["s1"] = await pull(s1, 3)
        out["s2"] = await pull(s2, 3)
        out["cw"] = await pull(cw, 2)
        out["cx"] = await pull(cx, 2)
        cx.follow(["0xCC"])  # a copy feed's target added later
        out["wallets_after_follow"] = set(stream.wallets or ())
        await s2.close()  # eth/usd only s2 wanted: forgotten; btc/usd stays (s1 still wants it)
        out["sent"] = list(stream.sent)
        await cw.close()
        await cx.close()
        out["left"] = set(hub.subscriptions)
        await hub.close()
        return out

    r = asyncio.run(go())
    assert r["made"] == 1  # one connection for four consumers
    assert r["first"] == [btc, twap]  # opened by the first consumer; the others' subscriptions added on it
    assert sorted(map(str, r["all"])) == sorted(map(str, [btc, twap, act, eth]))  # merged: btc/usd, activity once
    assert r["wallets"] == {"0xaa", "0xbb"}  # the union of the copy feeds' targets
    assert [(e.topic, e.symbol) for e in r["s1"][:2]] == [(btc.topic, "btc/usd"), (twap.topic, "btc/usd")]
    assert [(e.topic, e.symbol) for e in r["s2"][:2]] == [(btc.topic, "btc/usd"), (eth.topic, "eth/usd")]
    assert [e.wallet for e in r["cw"][:1]] == ["0xaa"] and [e.wallet for e in r["cx"][:1]] == ["0xbb"]
    for name in ("s1", "s2", "cw", "cx"):  # the drop reached every consumer
        assert isinstance(r[name][-1], StreamStatus) and r[name][-1].state is StreamState.RECONNECTING
    assert r["wallets_after_follow"] == {"0xaa", "0xbb", "0xcc"}
    assert r["sent"] == [("subscribe", [act]), ("subscribe", [eth]), ("unsubscribe", [eth])]
    assert r["left"] == {btc, twap}


def test_rtds_unsubscribe_keeps_a_topic_another_filter_still_uses() -> None:
    """RTDS's unsubscribe names topic and type; the sim (and maybe the venue) ends every filter of the pair:
    the stream sends it only when no kept subscription shares the pair."""
    from pmbot.polymarket.streams import RtdsStream

    class Conn:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, message: str) -> None:
            self.sent.append(message)

    btc, eth = RtdsSubscription.chainlink("btc/usd"), RtdsSubscription.chainlink("eth/usd")

    async def go() -> tuple[list[str], tuple[RtdsSubscription, ...]]:
        stream = RtdsStream("ws://127.0.0.1:1", [btc, eth])
        conn = Conn()
        stream._conn = conn  # type: ignore[assignment]
        await stream.unsubscribe([eth])
        kept = stream.subscriptions
        await stream.unsubscribe([btc])
        return conn.sent, kept

    sent, kept = asyncio.run(go())
    assert kept == (btc,)
    assert len(sent) == 1 and "btc/usd" in sent[0] and "eth/usd" not in sent[0] and "unsubscribe" in sent[0]
    assert btc.matches(_price(btc.topic, "BTC/USD")) and not btc.matches(_price(btc.topic, "eth/usd"))
    assert not btc.matches(_trade("0xaa")) and RtdsSubscription.activity().matches(_trade("0xaa"))


def test_a_silent_topic_marks_its_consumer_stale_and_reconnects_the_shared_connection() -> None:
    FakeRtds.made = []

    async def go() -> tuple[list[Any], int]:
        hub = RtdsHub(FakeRtds)  # type: ignore[arg-type]
        quiet = hub.consumer([RtdsSubscription.activity()], wallets=["0xaa"], stale_after=0.6,
                             stale_reconnect_after=1.6)  # fmt: skip
        busy = hub.consumer([RtdsSubscription.chainlink("btc/usd")])
        await quiet.__aenter__()
        await busy.__aenter__()
        stream = FakeRtds.made[0]
        stream.queue.put_nowait(StreamStatus(stream="rtds", state=StreamState.CONNECTED, timestamp_ms=1))
        got: list[Any] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.6
        while loop.time() < end:
            import time

            stream.topic_seen["crypto_prices_chainlink"] = time.monotonic()  # prices keep the socket busy
            stream.queue.put_nowait(_price("crypto_prices_chainlink", "btc/usd"))
            await asyncio.sleep(0.1)
            while quiet._queue:
                got.append(await quiet.__anext__())
        reconnects = stream.reconnects
        await hub.close()
        return got, reconnects

    got, reconnects = asyncio.run(go())
    states = [g.state for g in got if isinstance(g, StreamStatus)]
    assert StreamState.STALE in states  # its own topic went silent, though the connection was busy
    assert not any(isinstance(g, CryptoPrice) for g in got)
    assert reconnects >= 1


def test_a_subscription_made_while_the_consumer_is_joining_is_counted_once() -> None:
    """A sniper arms a market while its consumer waits for the hub: the subscription must not be counted both
    by the join and by itself (it would outlive the consumer: subscribed for good)."""
    FakeRtds.made = []
    btc, eth = RtdsSubscription.chainlink("btc/usd"), RtdsSubscription.chainlink("eth/usd")

    async def go() -> tuple[tuple[RtdsSubscription, ...], tuple[RtdsSubscription, ...]]:
        hub = RtdsHub(FakeRtds)  # type: ignore[arg-type]
        keep = hub.consumer([btc])
        await keep.__aenter__()
        c = hub.consumer([btc])
        await hub._lock.acquire()  # the hub is busy with another consumer
        joining = asyncio.create_task(c.__aenter__())
        await asyncio.sleep(0)
        arming = asyncio.create_task(c.subscribe([eth]))
        await asyncio.sleep(0)
        hub._lock.release()
        await joining
        await arming
        during = hub.subscriptions
        await c.close()
        left = hub.subscriptions
        await hub.close()
        return during, left

    during, left = asyncio.run(go())
    assert set(during) == {btc, eth}
    assert left == (btc,)  # eth/usd went with the consumer; btc/usd stays for the other one


def test_the_rtds_hub_subscribes_and_unsubscribes_topics_on_the_live_sim_connection(sim: SimServer) -> None:
    from pmbot.polymarket.streams import RtdsStream
    from pmbot.polymarket.streams.base import Backoff

    url = sim.env()["PMBOT_RTDS_URL"]
    hub = RtdsHub(lambda subs: RtdsStream(url, subs, backoff=Backoff(base=0.05, cap=0.2), stale_after=None))
    spot, binance = RtdsSubscription.chainlink("btc/usd"), RtdsSubscription.crypto_prices("btcusdt")

    def subs_at_sim() -> list[tuple[str, str]]:
        return sim.call(lambda v: sorted((s.topic, s.filters) for c in v.hub.rtds for s in c.subs))

    async def go() -> dict[str, Any]:
        a = hub.consumer([spot], name="sniper")
        await a.__aenter__()
        await eventually(lambda: subs_at_sim() == [(spot.topic, spot.filters)], "the first subscription")
        b = hub.consumer([binance], name="other")
        await b.__aenter__()  # joins the live connection: subscribed on it, no new socket
        await eventually(lambda: len(subs_at_sim()) == 2, "the second topic on the same connection")
        await asyncio.to_thread(sim.advance, 3)
        got_a = [await asyncio.wait_for(a.__anext__(), 5) for _ in range(4)]
        got_b = [await asyncio.wait_for(b.__anext__(), 5) for _ in range(4)]
        await a.close()
        await eventually(lambda: subs_at_sim() == [(binance.topic, binance.filters)], "unsubscribed at the sim")
        opened = _opened(sim)
        await b.close()
        await hub.close()
        return {"a": got_a, "b": got_b, "opened": opened}

    r = asyncio.run(go())
    assert r["opened"]["rtds"] == 1
    assert {p.topic for p in r["a"] if isinstance(p, CryptoPrice)} == {spot.topic}
    assert {p.topic for p in r["b"] if isinstance(p, CryptoPrice)} == {binance.topic}
    assert any(isinstance(x, StreamStatus) and x.state is StreamState.CONNECTED for x in r["b"])  # told it joined
