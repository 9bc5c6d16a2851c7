"""Issue 14 §2, executor side: pre-armed orders (`Executor.arm` / `fire` / `retire`) against `pmbot sim`
over real sockets, with a real SQLite store.

The guarantee under test: nothing is ever sent that is not already recorded (the `armed` record, with
its order hash, is the write-ahead record of the POST), an armed order is sent at most once, one never
sent ends `not_sent`, and one sent before a crash is reconciled by its hash on restart (SIGKILL test:
this module is also the worker process, `python -m tests.test_armed worker …`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from pmbot.errors import InputError
from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.sim.testing import SimServer
from pmbot.store.models import OrderStatus, OrderType, Side
from tests.test_executor import KEY, Rig, best_ask, intent, settings_for

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


def both_sides(sim: SimServer, tag: str, price: str = "0.02") -> list[OrderIntent]:
    return [intent(sim, f"{tag}-up", price=price, token=0), intent(sim, f"{tag}-down", price=price, token=1)]


# --------------------------------------------------------------------------------------- in process


async def test_arm_stores_signed_orders_and_sends_nothing_then_fire_sends_one(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    armed = await ex.arm(both_sides(rig.sim, "w1"))
    assert [a.status for a in armed] == [OrderStatus.ARMED] * 2 and all(a.order_hash for a in armed)
    for a in armed:
        rec = rig.store.get_order(a.key)
        assert rec is not None and rec.status is OrderStatus.ARMED and rec.venue_order_id == a.order_hash
    assert rig.sim.received_orders() == []  # armed is recorded, never sent
    assert sorted(ex.armed()) == sorted(a.key for a in armed)

    res = await ex.fire(armed[0].key)
    assert res.status is OrderStatus.LIVE and res.venue_order_id == armed[0].order_hash
    assert len(rig.sim.received_orders()) == 1
    assert {o["id"] for o in rig.sim.open_orders()} == {armed[0].order_hash}
    events = [e.status for e in rig.store.order_events(armed[0].key)]
    assert events == [OrderStatus.ARMED, OrderStatus.SUBMITTED, OrderStatus.LIVE]

    assert ex.retire([a.key for a in armed]) == [armed[1].key]  # the fired one is not armed any more
    rec = rig.store.get_order(armed[1].key)
    assert rec is not None and rec.status is OrderStatus.NOT_SENT
    with pytest.raises(InputError):
        await ex.fire(armed[1].key)
    assert len(rig.sim.received_orders()) == 1


async def test_an_armed_order_is_sent_at_most_once(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (a,) = await ex.arm([intent(rig.sim, "once", price="0.02")])
    results = await asyncio.gather(*(ex.fire(a.key) for _ in range(20)))
    assert sum(not r.duplicate for r in results) == 1
    assert {r.status for r in results} == {OrderStatus.LIVE}
    again = await ex.fire(a.key)
    assert again.duplicate and again.status is OrderStatus.LIVE
    # the same key armed or submitted again is a duplicate, not a second order
    (b,) = await ex.arm([intent(rig.sim, "once", price="0.02")])
    assert b.duplicate and b.status is OrderStatus.LIVE
    sub = await ex.submit(intent(rig.sim, "once", price="0.02"))
    assert sub.duplicate
    assert len(rig.sim.received_orders()) == 1


async def test_a_key_armed_twice_is_armed_once(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    first = await ex.arm([intent(rig.sim, "twice", price="0.02")] * 3)
    assert len(first) == 1
    second = await ex.arm([intent(rig.sim, "twice", price="0.02")])
    assert first[0].status is OrderStatus.ARMED and second[0].duplicate and second[0].status is OrderStatus.ARMED
    dup = await ex.submit(intent(rig.sim, "twice", price="0.02"))  # a submit of an armed key: its record
    assert dup.duplicate and dup.status is OrderStatus.ARMED
    assert len(rig.store.list_orders()) == 1 and rig.sim.received_orders() == []


async def test_a_price_check_that_refuses_keeps_it_armed(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (a,) = await ex.arm([intent(rig.sim, "pc", price="0.02")])
    res = await ex.fire(a.key, price_check=lambda: "best ask left the band")
    assert res.status is OrderStatus.ARMED and res.code == "price_check" and rig.sim.received_orders() == []
    rec = rig.store.get_order(a.key)
    assert rec is not None and rec.status is OrderStatus.ARMED
    res = await ex.fire(a.key, price_check=lambda: None)
    assert res.status is OrderStatus.LIVE and len(rig.sim.received_orders()) == 1


async def test_the_risk_gate_decides_at_fire_time(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__MAX_ORDER_NOTIONAL="1"))
    try:
        ex = (await r.executor(dry_run=False)).executor
        small, big = await ex.arm([intent(sim, "small", price="0.02"), intent(sim, "big", price="0.50", size="10")])
        assert big.status is OrderStatus.ARMED  # arming checks nothing of the caps: the moment of firing does
        res = await ex.fire(big.key)
        assert res.status is OrderStatus.REJECTED and res.code == "max_order_notional"
        rec = r.store.get_order(big.key)
        assert rec is not None and rec.status is OrderStatus.REJECTED and "notional" in (rec.error or "")
        ex.risk.trip("test")
        res = await ex.fire(small.key)
        assert res.status is OrderStatus.REJECTED
        assert sim.received_orders() == []
    finally:
        await r.close()


@pytest.mark.parametrize("limit", ["kill_switch", "daily_loss", "open_orders", "exposure"])
async def test_every_cap_that_can_change_after_arming_is_checked_at_fire(
    sim: SimServer, tmp_path: Path, db_url: str, limit: str
) -> None:
    """The fire skips only what cannot change since arming (the frozen intent's own validation); a cap
    reached after the order was armed, and after its headers were worked out ahead, refuses it."""
    extra = {"PMBOT_RISK__MAX_OPEN_ORDERS": "1", "PMBOT_RISK__MAX_TOTAL_EXPOSURE": "0.5"}
    r = Rig(sim, tmp_path, settings_for(sim, db_url, **extra))
    try:
        ex = (await r.executor(dry_run=False)).executor
        # each fits alone (0.2 and 0.4 USDC, fees aside); both together are past the exposure cap
        first, second = await ex.arm(
            [intent(sim, "cap-1", price="0.02"), intent(sim, "cap-2", price="0.02", size="20")]
        )
        ex.refresh()  # as the runner does between ticks: risk state read, headers worked out ahead
        if limit == "kill_switch":
            ex.risk.trip("the operator's kill switch")
        elif limit == "daily_loss":
            ex.risk.add_realized(-ex.risk.limits.daily_loss_limit)
        else:  # the first order rests: one open order (the cap), 0.2 USDC of the 0.5 exposure
            assert (await ex.fire(first.key)).status is OrderStatus.LIVE
            if limit == "exposure":
                ex.risk.limits = ex.risk.limits.model_copy(update={"max_open_orders": 10})
        res = await ex.fire(second.key)
        codes = {
            "kill_switch": "kill_switch",
            "daily_loss": "daily_loss_limit",
            "open_orders": "max_open_orders",
            "exposure": "max_total_exposure",
        }
        assert res.status is OrderStatus.REJECTED and res.code == codes[limit]
        rec = r.store.get_order(second.key)
        assert rec is not None and rec.status is OrderStatus.REJECTED
        sent_first = limit in ("open_orders", "exposure")
        assert len(sim.received_orders()) == (1 if sent_first else 0)
    finally:
        await r.close()


async def test_headers_worked_out_ahead_are_exactly_the_posts_own(rig: Rig) -> None:
    """refresh() works out each armed order's L2 headers for this second and the next; they are the ones
    l2_headers gives for that body and second, and the sim (which verifies the HMAC) takes the fire."""
    from pmbot.polymarket.auth import l2_headers

    ex = (await rig.executor(dry_run=False)).executor
    armed = await ex.arm(both_sides(rig.sim, "hdr"))
    ex.refresh()
    trading = ex.trading
    assert trading is not None and trading.creds is not None
    now = int(rig.sim.now())
    preps = [p for a in armed if (p := ex._armed[a.key].prep) is not None]
    assert len(preps) == 2
    assert set(trading._ahead) == {(p.text, ts) for p in preps for ts in (now, now + 1)}
    for (text, ts), (creds, address, headers) in trading._ahead.items():
        assert creds is trading.creds and address == trading.signer.address
        assert headers == l2_headers(address, creds, "POST", "/order", text, ts)
    res = await ex.fire(armed[0].key)
    assert res.status is OrderStatus.LIVE and len(rig.sim.received_orders()) == 1
    assert (preps[0].text, now) not in trading._ahead  # used once, then dropped


async def test_headers_ahead_are_not_used_with_other_credentials_or_in_another_second(rig: Rig) -> None:
    """Headers worked out ahead are used only in their own second and with the credentials (and address)
    they were made with: here they are poisoned, then the credentials object replaced (same key, as a
    re-derivation gives) or the clock moved on; each fire computes its own, and the sim takes it."""
    from pmbot.polymarket.models import ApiCreds

    ex = (await rig.executor(dry_run=False)).executor
    trading = ex.trading
    assert trading is not None and trading.creds is not None
    armed = await ex.arm(both_sides(rig.sim, "hdr2"))

    def poison() -> None:
        ex.refresh()
        assert trading._ahead
        for key, (creds, address, headers) in list(trading._ahead.items()):
            trading._ahead[key] = (creds, address, {**headers, "POLY_SIGNATURE": "not-a-signature"})

    poison()
    c = trading.creds
    trading.creds = ApiCreds(api_key=c.api_key, secret=c.secret, passphrase=c.passphrase)
    assert (await ex.fire(armed[0].key)).status is OrderStatus.LIVE
    poison()
    rig.sim.advance(3)  # past the seconds worked out
    assert (await ex.fire(armed[1].key)).status is OrderStatus.LIVE
    assert len(rig.sim.received_orders()) == 2
    ex.refresh()
    assert all(ts >= int(rig.sim.now()) for _, ts in trading._ahead)  # seconds past are dropped


async def test_a_venue_unreachable_at_fire_time_leaves_it_armed(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (a,) = await ex.arm([intent(rig.sim, "down", price="0.02")])
    assert ex.trading is not None and ex.trading.poster is not None
    p = ex.trading.poster
    await p.aclose()
    p._closed = False
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        real, p.port = p.port, s.getsockname()[1]
        res = await ex.fire(a.key)
    assert res.status is OrderStatus.ARMED and res.code == "venue_unreachable" and rig.sim.received_orders() == []
    assert not ex.risk.open_keys()  # nothing stays reserved for an order that was not sent
    p.port = real
    res = await ex.fire(a.key)
    assert res.status is OrderStatus.LIVE and len(rig.sim.received_orders()) == 1


async def test_a_lost_answer_after_fire_is_unknown_then_reconciled_by_hash(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (a,) = await ex.arm([intent(rig.sim, "lost", price="0.02")])
    rig.sim.set_faults(drop_order_responses=1)
    res = await ex.fire(a.key)
    rig.sim.clear_faults()
    assert res.status is OrderStatus.UNKNOWN
    ex.unknown_grace_s = 0
    await ex.reconcile()
    rec = rig.store.get_order(a.key)
    assert rec is not None and rec.status is OrderStatus.LIVE and rec.venue_order_id == a.order_hash
    assert len(rig.sim.received_orders()) == 1


async def test_past_its_window_an_armed_order_is_retired_not_sent(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    end_ms = int(rig.sim.now() * 1000) + 1000
    (a,) = await ex.arm([intent(rig.sim, "late", price="0.02")], retire_at_ms=end_ms)
    rig.sim.advance(2)
    res = await ex.fire(a.key)
    assert res.status is OrderStatus.NOT_SENT and res.code == "retired" and rig.sim.received_orders() == []
    # not_sent: the key may be armed again (nothing of it reached the venue)
    (again,) = await ex.arm([intent(rig.sim, "late", price="0.02")])
    assert again.status is OrderStatus.ARMED and not again.duplicate


async def test_close_retires_what_is_still_armed(rig: Rig) -> None:
    h = await rig.executor(dry_run=False)
    armed = await h.executor.arm(both_sides(rig.sim, "closing"))
    await h.close()
    rig.handles.remove(h)
    assert {rig.store.get_order(a.key).status for a in armed} == {OrderStatus.NOT_SENT}  # type: ignore[union-attr]
    assert rig.sim.received_orders() == []


async def test_cancel_of_an_armed_order_retires_it(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (a,) = await ex.arm([intent(rig.sim, "cx", price="0.02")])
    rec = await ex.cancel(a.key)
    assert rec.status is OrderStatus.NOT_SENT and ex.armed() == [] and rig.sim.received_orders() == []


async def test_dry_run_arm_and_fire_fill_on_paper(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    ask = best_ask(rig.sim)
    (a,) = await ex.arm([intent(rig.sim, "paper", price=str(ask), order_type=OrderType.FOK, size="5")])
    assert a.status is OrderStatus.ARMED and a.key.startswith("dry-run:") and a.order_hash is None
    res = await ex.fire(a.key)
    assert res.status is OrderStatus.FILLED and res.dry_run and res.filled_size == 5
    assert rig.sim.received_orders() == []


async def test_a_dry_run_fire_that_could_not_execute_stays_armed(rig: Rig) -> None:
    """Regression: a paper fire that could not execute (no book) ended `not_sent`; as live, it stays armed
    (record untouched, nothing reserved) and can be fired again or retired."""
    from pmbot.errors import VenueError

    h = await rig.executor(dry_run=True)
    ex = h.executor
    ask = best_ask(rig.sim)
    (a,) = await ex.arm([intent(rig.sim, "nobook", price=str(ask), order_type=OrderType.FOK, size="5")])
    assert ex.books is not None
    real = ex.books

    class NoBook:
        async def book(self, token_id: str) -> object:
            raise VenueError("book unavailable", detail="sim unreachable")

    ex.books = NoBook()  # type: ignore[assignment]
    res = await ex.fire(a.key)
    assert res.status is OrderStatus.ARMED and res.code == "no_book"
    rec = rig.store.get_order(a.key)
    assert rec is not None and rec.status is OrderStatus.ARMED and a.key in ex.armed()
    assert not ex.risk.open_keys()
    ex.books = real
    res = await ex.fire(a.key)
    assert res.status is OrderStatus.FILLED and res.filled_size == 5 and ex.armed() == []
    again = await ex.fire(a.key)
    assert again.duplicate and again.status is OrderStatus.FILLED  # fired once, answered from then on


# ------------------------------------------------------------------------------- SIGKILL and restart


def worker_intents(condition: str, tokens: Sequence[str], signal_ms: int) -> list[OrderIntent]:
    """Both sides of one window, resting GTC BUYs (nothing matches: the state after a restart is exact)."""
    return [
        OrderIntent(
            key=intent_key("armed-worker", condition, side),
            strategy="armed-worker",
            token_id=token,
            condition_id=condition,
            side=Side.BUY,
            price=Decimal("0.02"),
            size=Decimal(10),
            order_type=OrderType.GTC,
            signal_ms=signal_ms,
        )
        for side, token in zip(("up", "down"), tokens, strict=True)
    ]


async def _worker(args: argparse.Namespace) -> None:
    from pmbot.config import load_settings
    from pmbot.executor.factory import build_executor
    from pmbot.polymarket.factory import build_venue
    from pmbot.polymarket.http import RetryPolicy
    from pmbot.store import open_store
    from tests.executor_worker import _sim_clock

    settings = load_settings(env_file=None).settings
    clock = _sim_clock(args.sim_now)
    store = open_store(settings.database_url, clock=clock)
    venue = build_venue(settings, clock=clock, retry=RetryPolicy(attempts=3, base=0.01, cap=0.02), timeout=5.0)
    handle = await build_executor(settings, store, venue, dry_run=False, lock_dir=Path(args.lock_dir), clock=clock)
    ex = handle.executor
    await ex.start()
    await ex.prewarm()
    armed = await ex.arm(worker_intents(args.condition, args.tokens.split(","), int(clock() * 1000)))
    print(json.dumps({"armed": [[a.key, a.order_hash] for a in armed]}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    from pmbot.polymarket import fastpost

    write = fastpost._Conn.send

    def send_then_die(conn: fastpost._Conn, data: bytes) -> asyncio.Future[fastpost.Answer]:
        waiter = write(conn, data)  # the request is in the kernel's hands: it reaches the venue
        os.kill(os.getpid(), signal.SIGKILL)  # before a byte of the answer is read
        return waiter

    fastpost._Conn.send = send_then_die  # type: ignore[method-assign,assignment]
    await ex.fire(armed[0].key)
    print("survived", flush=True)


async def test_sigkill_right_after_an_armed_order_was_sent(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    from tests.test_executor_reliability import WORKER_LIMITS, eventually, live_restart

    m = sim.current_market()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(sim.env())
    env.update(WORKER_LIMITS)
    env.update({"PMBOT_PRIVATE_KEY": KEY, "PMBOT_DATABASE_URL": db_url, "PYTHONPATH": str(REPO)})
    cmd = [sys.executable, "-m", "tests.test_armed", "worker", "--condition", m["condition_id"],
           "--tokens", ",".join(m["token_ids"]), "--lock-dir", str(tmp_path / "locks"),
           "--sim-now", repr(sim.now())]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line, proc.communicate()
        (fired_key, fired_hash), (idle_key, idle_hash) = json.loads(line)["armed"]
        assert sim.received_orders() == []
        proc.stdin.write("fire\n")  # the worker SIGKILLs itself right after the POST is written
        proc.stdin.flush()
        await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    await eventually(lambda: len(sim.received_orders()) == 1, "the sim to take the order it was sent")

    rig = Rig(sim, tmp_path, settings_for(sim, db_url))
    try:
        left = {k: rig.store.get_order(k) for k in (fired_key, idle_key)}
        assert {r.status for r in left.values() if r} == {OrderStatus.ARMED}  # what the crash left: armed, both
        h, report = await live_restart(rig)
        assert report == {"live": 1, "rejected": 1}, report
        fired, idle = rig.store.get_order(fired_key), rig.store.get_order(idle_key)
        assert fired is not None and fired.status is OrderStatus.LIVE and fired.venue_order_id == fired_hash
        assert idle is not None and idle.status is OrderStatus.REJECTED and idle.venue_order_id == idle_hash
        assert {o["id"] for o in sim.open_orders()} == {fired_hash}
        # nothing is sent twice: the same window's intents, armed or submitted again, are duplicates
        intents = worker_intents(m["condition_id"], m["token_ids"], int(sim.now() * 1000))
        again = await h.executor.arm(intents)
        assert all(a.duplicate for a in again)
        results = await h.executor.submit_many([replace(i) for i in intents])
        assert all(r.duplicate for r in results)
        assert len(sim.received_orders()) == 1
    finally:
        await rig.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["worker"])
    parser.add_argument("--condition", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--lock-dir", required=True)
    parser.add_argument("--sim-now", type=float, required=True)
    asyncio.run(_worker(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
