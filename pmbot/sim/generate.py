"""Write the built-in `btc-15m` scenario offline: run the sim venue on a manual clock, in process, and
capture what its market channel and RTDS would send, as a recorded scenario (pmbot.sim.scenario_file).

`pmbot sim scenario --hours 24 --out FILE` writes it; `pmbot backtest snipe --scenario btc-15m` builds
it in memory the same way. The header lists every market as Gamma showed it before its window opened
(accepting orders, not closed), so a backtest arms them like a live run would."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from pmbot.errors import InputError
from pmbot.sim.clock import SimClock
from pmbot.sim.hub import MarketConn, RtdsConn, RtdsSub
from pmbot.sim.markets import SimMarket, gamma_market
from pmbot.sim.scenario_file import RecordedEvent, RecordedScenario, ScenarioWriter
from pmbot.sim.testing import DEFAULT_START
from pmbot.sim.venue import Venue

__all__ = ["MAX_HOURS", "generate_btc_15m", "write_btc_15m"]

MAX_HOURS = 24 * 14


def generate_btc_15m(hours: float, *, seed: int = 7, start: float = DEFAULT_START) -> RecordedScenario:
    """`hours` of the built-in scenario from `start` (epoch s), as recorded events in time order."""
    import random

    if not 0 < hours <= MAX_HOURS:
        raise InputError(f"--hours must be > 0 and at most {MAX_HOURS}, got {hours:g}")
    venue = Venue(seed=seed, clock=SimClock(start, manual=True), rng=random.Random(seed))
    venue.start_btc_15m()
    market_conn = MarketConn(kind="market", custom=True)
    rtds_conn = RtdsConn(
        kind="rtds", connection_id="recorder", subs=[RtdsSub("crypto_prices_chainlink", "*", '{"symbol":"btc/usd"}')]
    )
    venue.hub.market.add(market_conn)
    venue.hub.rtds.add(rtds_conn)
    headers: list[dict[str, object]] = []
    events: list[RecordedEvent] = []
    known: set[str] = set()

    def arm_new(now: float) -> None:
        for m in venue.markets:
            if m.condition_id in known or m.closed:
                continue
            known.add(m.condition_id)
            headers.append(_gamma(m, now))
            market_conn.assets |= set(m.token_ids)
            for token in m.token_ids:
                snap = venue.book_snapshot(token)
                if snap is not None:
                    events.append(RecordedEvent(int(now * 1000), "market", snap.ws_dict()))

    def drain(ts_ms: int) -> None:
        for conn, source in ((market_conn, "market"), (rtds_conn, "rtds")):
            q = conn.queue
            while not q.empty():
                text = q.get_nowait()
                if text is not None:
                    events.append(RecordedEvent(ts_ms, source, json.loads(text)))

    now = venue.clock.now()
    arm_new(now)
    for n in range(int(hours * 3600)):
        venue.advance(1)
        now = venue.clock.now()
        drain(int(now * 1000))
        arm_new(now)
        if n % 900 == 899:
            _prune(venue)
    return RecordedScenario(created_ms=int(start * 1000), markets=headers, events=events)


def write_btc_15m(path: str | Path, hours: float, *, seed: int = 7, start: float = DEFAULT_START) -> int:
    """Generate and write to `path` (JSONL). Returns how many events were written."""
    scenario = generate_btc_15m(hours, seed=seed, start=start)
    out = Path(path)
    tmp = out.with_name(out.name + ".partial")
    try:
        with ScenarioWriter(tmp) as w:
            w.header(scenario.markets, created_ms=scenario.created_ms)
            for e in scenario.events:
                w.write(e.ts, e.source, e.data)
        tmp.replace(out)  # a half-written scenario never takes the name
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write scenario {out}: {e.strerror}") from None
    return len(scenario.events)


def _prune(venue: Venue) -> None:
    """Forget what only a served sim needs (Data API history, settled orders) for closed markets: the
    venue scans its fills and orders every simulated second, so a day of history would make generation
    quadratic. Offline generation serves no Data API."""
    venue.fills = [f for f in venue.fills if not f.order.market.closed]
    orders = venue.engine.orders
    for oid in [oid for oid, o in orders.items() if o.market.closed and o.status != "LIVE"]:
        del orders[oid]
    venue.chain_logs.clear()


def _gamma(m: SimMarket, now: float) -> dict[str, object]:
    return gamma_market(m, now, best_bid=None, best_ask=None, liquidity=Decimal(0))
