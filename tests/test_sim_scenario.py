"""The generated btc-15m scenario (determinism, fair-value books, windows, resolution), the clock,
and recorded JSONL scenarios (writer → reader → replay over real sockets)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from pmbot.errors import InputError
from pmbot.sim.clock import SimClock
from pmbot.sim.factory import make_venue
from pmbot.sim.scenario import p_up, window_title
from pmbot.sim.scenario_file import ScenarioWriter, read_scenario
from pmbot.sim.testing import HARDHAT_KEYS, SimServer
from pmbot.sim.venue import Venue

SAMPLES = Path("/work/shared/polymarket-samples")
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="recorded samples not available")
START = 1_795_000_000.0


def venue(seed: int = 7) -> Venue:
    return make_venue(seed=seed, start=START, manual=True)


def fingerprint(v: Venue) -> Any:
    books = [v.book_snapshot(t) for m in v.markets for t in m.token_ids]
    return (
        [(m.slug, m.condition_id, m.token_ids, m.open_price, m.winner) for m in v.markets],
        [(b.bids, b.asks) if b else None for b in books],
        [(t.id, t.size, t.price, t.taker.maker_address) for t in v.engine.trades.values()],
    )


def test_same_seed_same_world_and_another_seed_another() -> None:
    a, b = venue(), venue()
    a.advance(120)
    b.advance(60)
    b.advance(60)  # advancing in steps or at once gives the same world
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(venue(8))


def test_market_identity_follows_the_btc_15m_series() -> None:
    v = venue()
    series = [m for m in v.markets if not m.standing]  # plus one standing V1 market
    assert [m.version for m in v.markets if m.standing] == ["v1"]
    assert [m.start_ts - series[0].start_ts for m in series] == [900 * k for k in range(7)]
    assert [m.closed for m in series] == [True] * 3 + [False] * 4
    cur = v.current_market()
    assert cur is not None and cur.start_ts <= START < cur.end_ts and cur.start_ts % 900 == 0
    assert cur.slug == f"btc-updown-15m-{cur.start_ts}"
    assert cur.question == "Bitcoin Up or Down - November 18, 6:00AM-6:15AM ET"
    assert window_title(1_767_200_400) == "Bitcoin Up or Down - December 31, 12:00PM-12:15PM ET"
    for m in series:
        # V2 positions: the 32-byte condition id with the outcome index as the last byte
        assert len(m.condition_id) == 66 and m.condition_id.endswith("00") and m.version == "v2"
        assert [int(t) - int(m.condition_id, 16) for t in m.token_ids] == [0, 1]
        assert (m.tick, m.min_size, m.neg_risk, m.fee_rate, m.fee_exponent, m.taker_only) == (
            D("0.01"),
            D(5),
            False,
            D("0.07"),
            1,
            True,
        )
    assert v.whale.address == venue().whale.address and v.whale.name == "distinct-baguette"


def test_books_track_fair_value_and_stay_on_the_grid() -> None:
    v = venue()
    cur = v.current_market()
    assert cur is not None
    for _ in range(10):
        v.advance(49)  # to 3 s before the end
        assert v.path is not None
        fair = D(p_up(v.path, cur, int(v.now())))
        bid, ask = v.best_up(cur)
        assert bid is not None and ask is not None and bid < ask
        assert bid - D("0.02") <= fair <= ask + D("0.02")
        snap = v.book_snapshot(cur.token_ids[0])
        assert snap is not None
        assert all(D("0.01") <= p <= D("0.99") and p % D("0.01") == 0 for p, _ in snap.bids + snap.asks)
    # With seconds left the book sits near 0 or 1 on the likely side.
    bid, ask = v.best_up(cur)
    assert bid is not None and ask is not None and (ask <= D("0.15") or bid >= D("0.85"))


def test_resolution_closes_the_window_and_opens_the_next() -> None:
    v = venue()
    cur = v.current_market()
    assert cur is not None and cur.open_price is not None
    v.advance(cur.end_ts - v.now())
    assert cur.closed and cur.close_price is not None
    assert cur.winner == (0 if cur.close_price >= cur.open_price else 1)
    assert cur.outcome_prices(None) == (["1", "0"] if cur.winner == 0 else ["0", "1"])
    nxt = v.current_market()
    assert nxt is not None and nxt.start_ts == cur.end_ts and nxt.open_price is not None
    assert len([m for m in v.markets if not m.closed and not m.standing]) == 4  # a new upcoming window was listed
    assert v.engine.live_orders() == [] and v.book_snapshot(cur.token_ids[0]) is None


def test_whale_positions_become_redeemable_after_resolution(sim: SimServer) -> None:
    cur = sim.current_market()
    sim.advance(cur["end"] - sim.now() + 1)
    rows = httpx.get(f"{sim.url}/data-api/positions", params={"user": sim.whale_address}).json()
    resolved = [r for r in rows if r["conditionId"] == cur["condition_id"]]
    assert resolved and all(r["redeemable"] for r in resolved)
    assert {r["curPrice"] for r in resolved} <= {0, 1}


def test_clock_real_time_scaled_and_manual() -> None:
    wall = [100.0]
    fast = SimClock(1000.0, speed=10, wall=lambda: wall[0])
    wall[0] += 1.5
    assert fast.now() == 1015.0
    fast.advance(5)
    assert fast.now() == 1020.0
    manual = SimClock(1000.0, manual=True, wall=lambda: wall[0])
    wall[0] += 100
    assert manual.now() == 1000.0
    manual.advance(2.5)
    assert manual.now_ms() == 1_002_500
    with pytest.raises(ValueError, match="forward"):
        manual.advance(-1)


# -- recorded scenarios ---------------------------------------------------------------------------
def _recording(tmp_path: Path) -> tuple[Path, list[tuple[int, str, Any]]]:
    market = json.loads((SAMPLES / "gamma_markets_list_2026-09.json").read_text())[0]
    events: list[tuple[int, str, Any]] = []
    for line in (SAMPLES / "ws_market_messages_2026.jsonl").read_text().splitlines():
        msg = json.loads(line)
        events.append((int(msg["timestamp"]), "market", msg))
    for line in (SAMPLES / "rtds_activity_trades.jsonl").read_text().splitlines()[:2]:
        msg = json.loads(line)
        events.append((msg["timestamp"], "rtds", msg))
    user = json.loads((SAMPLES / "ws_user_order_placement.json").read_text())
    events.append((1790272270000, "user", user))
    log = {
        "address": "0xE111180000d2663C0091e4f400237545B87B996B",
        "topics": [
            "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee",
            "0x" + "11" * 32,
            "0x" + "00" * 12 + "22" * 20,
            "0x" + "00" * 12 + "33" * 20,
        ],
        "data": "0x" + "00" * 224,
        "blockNumber": "0x10",
        "transactionHash": "0x" + "44" * 32,
        "logIndex": "0x0",
        "removed": False,
    }
    events.append((1790272271000, "chain", log))
    path = tmp_path / "rec.jsonl"
    with ScenarioWriter(path) as w:
        w.header([market], created_ms=1790272250000)
        for ts, source, data in events:
            w.write(ts, source, data)
    return path, events


@needs_samples
def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    path, events = _recording(tmp_path)
    rec = read_scenario(path)
    assert rec.created_ms == 1790272250000 and rec.markets[0]["slug"]
    assert [(e.ts, e.source, e.data) for e in rec.events] == sorted(events, key=lambda e: e[0])


@needs_samples
def test_replay_rebroadcasts_the_recording_and_keeps_books(tmp_path: Path) -> None:
    path, events = _recording(tmp_path)
    market = json.loads((SAMPLES / "gamma_markets_list_2026-09.json").read_text())[0]
    yes, no = json.loads(market["clobTokenIds"])
    assets = sorted({e[2]["asset_id"] for e in events if e[1] == "market" and "asset_id" in e[2]} | {yes, no})
    with SimServer(scenario=path, manual=True) as sim:
        creds = sim.creds("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        with (
            connect(f"{sim.ws_url}/ws/market") as mws,
            connect(f"{sim.ws_url}/rtds") as rws,
            connect(f"{sim.ws_url}/ws/user") as uws,
            connect(f"{sim.ws_url}/rpc") as cws,
        ):
            mws.send(json.dumps({"assets_ids": assets, "type": "market", "initial_dump": False}))
            rws.send(json.dumps({"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"}]}))
            uws.send(json.dumps({"auth": creds, "type": "user"}))
            cws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["logs", {}]}))
            sub_id = json.loads(cws.recv(timeout=5))["result"]
            for ws, ping, pong in ((mws, "PING", "PONG"), (rws, "ping", "pong"), (uws, "PING", "PONG")):
                ws.send(ping)
                assert ws.recv(timeout=5) == pong  # subscribed before time moves
            sim.advance(60)
            market_msgs = [json.loads(mws.recv(timeout=5)) for _ in range(7)]
            rtds_msgs = [json.loads(rws.recv(timeout=5)) for _ in range(2)]
            user_msg = json.loads(uws.recv(timeout=5))
            chain_msg = json.loads(cws.recv(timeout=5))
        gamma = httpx.get(f"{sim.url}/gamma/markets", params={"slug": market["slug"]}).json()
        assert gamma == [market]  # served exactly as recorded
        assert market_msgs == [e[2] for e in sorted(events, key=lambda e: e[0]) if e[1] == "market"]
        assert rtds_msgs == sorted((e[2] for e in events if e[1] == "rtds"), key=lambda m: m["timestamp"])
        assert user_msg == next(e[2] for e in events if e[1] == "user")
        assert chain_msg["params"] == {"subscription": sub_id, "result": next(e[2] for e in events if e[1] == "chain")}
        # /book = the recorded book with the recorded price changes applied.
        expected = {
            x["price"]: x["size"]
            for x in next(e[2] for e in events if e[2].get("asset_id") == yes and e[2]["event_type"] == "book")["bids"]
        }
        for e in events:
            for ch in e[2].get("price_changes", []) if e[1] == "market" else []:
                if ch["asset_id"] == yes and ch["side"] == "BUY":
                    expected[ch["price"]] = ch["size"]
        book = httpx.get(f"{sim.url}/book", params={"token_id": yes}).json()
        assert {x["price"]: x["size"] for x in book["bids"]} == {p: s for p, s in expected.items() if D(s) > 0}
        assert HARDHAT_KEYS  # replay leaves the trading API up (orders match only other sim orders)


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ('{"format":"other"}\n', 1, "not a pmbot scenario"),
        ('{"format":"pmbot-scenario","version":1,"markets":[]}\nnot json\n', 2, "not valid JSON"),
        ('{"format":"pmbot-scenario","version":1,"markets":[]}\n{"ts":1,"source":"nope","data":{}}\n', 2, "source"),
        ('{"format":"pmbot-scenario","version":1,"markets":[]}\n\n{"ts":"x","source":"rtds","data":{}}\n', 3, "ts"),
        ('{"format":"pmbot-scenario","version":2,"markets":[]}\n', 1, "version"),
    ],
)
def test_malformed_scenarios_name_the_line(tmp_path: Path, content: str, line: int, what: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=what) as err:
        read_scenario(path)
    assert f"bad.jsonl:{line}:" in err.value.message


def test_writer_refuses_events_before_the_header(tmp_path: Path) -> None:
    with ScenarioWriter(tmp_path / "x.jsonl") as w, pytest.raises(ValueError, match="header"):
        w.write(1, "market", {})
