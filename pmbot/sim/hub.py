"""Fan-out of events to WebSocket connections. Each connection owns a queue of ready-to-send text;
the venue (running on the event loop thread) only ever does `put_nowait`, and one writer task per
connection drains it, so a slow client never blocks the venue."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pmbot.sim.faults import Faults
from pmbot.sim.wire import dumps

MALFORMED_FRAME = '{"event_type": "book", "asset_id": '  # truncated JSON, like a cut-off frame


class StampedText(str):
    """A frame with the benchmarks' stamps: `on_write()` runs right before a connection's writer hands it to
    the socket, `on_send()` once it has gone out (both once per connection that sends it)."""

    on_write: Callable[[], None] | None = None
    on_send: Callable[[], None] | None = None


def _stamped(text: str, on_send: Callable[[], None] | None) -> str:
    if on_send is None:
        return text
    out = StampedText(text)
    out.on_send = on_send
    return out


@dataclass(eq=False)
class Conn:
    kind: str
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    sent: int = 0

    def push(self, text: str) -> None:
        self.queue.put_nowait(text)

    def close(self) -> None:
        self.queue.put_nowait(None)


@dataclass(eq=False)
class MarketConn(Conn):
    assets: set[str] = field(default_factory=set)
    custom: bool = False


@dataclass(eq=False)
class UserConn(Conn):
    api_key: str = ""
    markets: set[str] = field(default_factory=set)  # condition ids; empty = all


@dataclass(frozen=True)
class RtdsSub:
    topic: str
    type: str
    filters: str


@dataclass(eq=False)
class RtdsConn(Conn):
    connection_id: str = ""
    subs: list[RtdsSub] = field(default_factory=list)


@dataclass(eq=False)
class RpcConn(Conn):
    subs: dict[str, dict[str, Any]] = field(default_factory=dict)  # subscription id → log filter


class Hub:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.market: set[MarketConn] = set()
        self.user: set[UserConn] = set()
        self.rtds: set[RtdsConn] = set()
        self.rpc: set[RpcConn] = set()
        # Since start: connections opened per channel ("rtds", "rpc") and eth_subscribe calls ("rpc_subscribe"),
        # so a test can count what a client opened (not only what is open now).
        self.opened: Counter[str] = Counter()

    def all(self) -> list[Conn]:
        return [*self.market, *self.user, *self.rtds, *self.rpc]

    def remove(self, conn: Conn) -> None:
        for group in (self.market, self.user, self.rtds, self.rpc):
            group.discard(conn)

    # -- market channel ------------------------------------------------------------------------
    def market_listeners(self, assets: Iterable[str], *, custom: bool = False) -> list[MarketConn]:
        wanted = set(assets)
        return [c for c in self.market if c.assets & wanted and (c.custom or not custom)]

    def to_market(self, assets: Iterable[str], build: Callable[[], Any], *, custom: bool = False) -> None:
        """Send build() to connections subscribed to any of `assets` (built only if someone listens)."""
        conns = self.market_listeners(assets, custom=custom)
        if conns:
            text = dumps(build())
            for c in conns:
                c.push(text)

    def to_custom(self, build: Callable[[], Any]) -> None:
        """Send build() to every market connection with `custom_feature_enabled` (e.g. `new_market`,
        which is about a market nobody can have subscribed to yet)."""
        conns = [c for c in self.market if c.custom]
        if conns:
            text = dumps(build())
            for c in conns:
                c.push(text)

    # -- user channel --------------------------------------------------------------------------
    def to_user(self, api_key: str, condition_id: str, build: Callable[[], Any]) -> None:
        conns = [c for c in self.user if c.api_key == api_key and (not c.markets or condition_id in c.markets)]
        if conns:
            text = dumps(build())
            for c in conns:
                c.push(text)

    def to_all_users(self, msg: Any) -> None:
        text = dumps(msg)
        for c in self.user:
            c.push(text)

    # -- RTDS ----------------------------------------------------------------------------------
    def to_rtds(
        self,
        topic: str,
        type_: str,
        accept: Callable[[RtdsSub], bool],
        envelope: Callable[[], dict],
        on_send: Callable[[], None] | None = None,
    ) -> None:
        """Send to every connection with a subscription on `topic` (type `type_` or "*") that `accept`s.

        The envelope carries the connection's id, so it is serialised per connection. `on_send()` runs when
        a frame of it has gone out (once per connection)."""
        body: dict[str, Any] | None = None
        for c in self.rtds:
            if any(s.topic == topic and s.type in (type_, "*") and accept(s) for s in c.subs):
                if body is None:
                    body = envelope()
                c.push(_stamped(dumps({**body, "connection_id": c.connection_id}), on_send))

    def to_rtds_raw(self, topic: str, type_: str, msg: Any) -> None:
        """Re-broadcast a recorded envelope unchanged (replay)."""
        text = dumps(msg)
        for c in self.rtds:
            if any(s.topic == topic and s.type in (type_, "*") for s in c.subs):
                c.push(text)

    # -- JSON-RPC ------------------------------------------------------------------------------
    def to_rpc(self, log: dict[str, Any], on_send: Callable[[], None] | None = None) -> None:
        for c in self.rpc:
            for sub_id, flt in c.subs.items():
                if log_matches(flt, log):
                    msg = {
                        "jsonrpc": "2.0",
                        "method": "eth_subscription",
                        "params": {"subscription": sub_id, "result": log},
                    }
                    c.push(_stamped(dumps(msg), on_send))


def log_matches(flt: dict[str, Any], log: dict[str, Any]) -> bool:
    """eth_subscribe("logs") filter semantics: address = one or a list; topics positional, None = any,
    a list = any of."""
    address = flt.get("address")
    if address:
        wanted = [address] if isinstance(address, str) else list(address)
        if log["address"].lower() not in {a.lower() for a in wanted}:
            return False
    for i, want in enumerate(flt.get("topics") or []):
        if want is None:
            continue
        if i >= len(log["topics"]):
            return False
        options = [want] if isinstance(want, str) else list(want)
        if log["topics"][i].lower() not in {o.lower() for o in options if o is not None}:
            return False
    return True
