"""Review of `HubConsumer.state` (8cd7d04): the copy feed now shows its market channel's state from the
hub's shards, so that state must never read "connected" while the books behind it are blind.

Break found: a shard whose stream task died (`StreamBase._on_task_done`: a bug in the reader loop, the hub
tells every consumer with the exception) kept the state of its last StreamStatus, "connected". The copy
feed's recovery (`_market_lost`) opens a new consumer on the same hub, lands on the same dead shard, and
read "connected" for good: blind books shown as a healthy channel. Over real sockets against `pmbot sim`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pmbot.polymarket.models import StreamState, StreamStatus
from pmbot.runner.hub import MarketHub
from pmbot.sim.testing import SimServer
from tests.test_review_feed_resync import sim_stream_factory
from tests.test_streams_sim import until


class _BrokenBackoff:
    """The reader loop's own bug: its reconnect delay raises, so the stream task dies."""

    def delay(self, attempt: int, rng: Any) -> float:
        raise RuntimeError("a bug in the reader loop")


async def _drain(consumer: Any, sink: list[Any]) -> None:
    try:
        async for item in consumer:
            sink.append(item)
    except RuntimeError as e:
        sink.append(e)


async def test_a_consumer_on_a_shard_whose_task_died_is_not_connected(sim: SimServer) -> None:
    tokens, make = sim_stream_factory(sim)
    hub = MarketHub(make)
    first = hub.consumer(tokens)
    got: list[Any] = []
    sim.set_faults(ws_drop_every=1.5)  # the first connection drops after 1.5 s
    try:
        async with first:
            reader = asyncio.create_task(_drain(first, got))
            await until(lambda: first.state is StreamState.CONNECTED)
            assert any(isinstance(x, StreamStatus) for x in got)
            sim.clear_faults()
            hub.shards[0].stream.backoff = _BrokenBackoff()  # type: ignore[assignment]  # its reconnect raises
            await until(lambda: any(isinstance(x, RuntimeError) for x in got), timeout=10)
            await reader
        # what CopyFeed._market_lost does: a new consumer of the same tokens on the same hub
        second = hub.consumer(tokens)
        async with second:
            await asyncio.sleep(0.3)
            assert not any(b.synced for t, b in hub.books.items() if t in tokens)  # blind: nothing follows them
            assert second.state is not StreamState.CONNECTED
            assert hub.states()[hub.shards[0].name] != "connected"
            # and then the hub revives the dead shard on a new stream (REVIVE_S): its tokens are followed again
            await until(lambda: second.state is StreamState.CONNECTED, timeout=10)
            await until(lambda: all(t in hub.books and hub.books[t].synced for t in tokens), timeout=10)
            assert len(hub.shards) == 1 and hub.shards[0].deaths == 1
    finally:
        await hub.close()


@pytest.mark.parametrize(
    ("states", "want"),
    [
        ({"connected"}, StreamState.CONNECTED),
        ({"connected", "stale"}, StreamState.STALE),
        ({"connected", "reconnecting"}, StreamState.RECONNECTING),
        ({"connected", "failed"}, StreamState.RECONNECTING),
        ({"failed"}, StreamState.RECONNECTING),
        ({"connected", "connecting"}, None),  # part of its books has no connection yet
        ({"connecting"}, None),
    ],
)
async def test_the_consumer_state_is_the_worst_of_its_shards(states: set[str], want: StreamState | None) -> None:
    class _Quiet:
        def __init__(self, ts: Any) -> None:
            self.books: dict[str, Any] = {}

        async def subscribe(self, ts: Any) -> None:
            return None

        async def close(self) -> None:
            return None

        async def __aenter__(self) -> Any:
            await asyncio.Event().wait()

        async def __aexit__(self, *exc: object) -> None:
            return None

    hub = MarketHub(_Quiet, per_connection=1)  # type: ignore[arg-type]
    tokens = [str(n) for n in range(len(states))]
    c = hub.consumer(tokens)
    async with c:
        for shard, state in zip(hub.shards, sorted(states), strict=True):
            shard.state = state
        assert c.state is want
    await hub.close()
