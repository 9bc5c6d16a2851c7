"""Review of the sim's POST /order speed-ups and their neighbours (3cb9e2c, 8cd7d04, def8cdd).

- `OrderIndex` must equal a scan of the history (`live user orders, in insertion order`) after ANY dict
  operation: dict's own pop/popitem/clear/update/setdefault/|= bypass __setitem__/__delitem__, and a user
  order popped that way stayed in `live_orders()` (cancel-all would still cancel it, a balance check still
  count it); a key replaced by a non-user order kept the old user order in the side index.
- `order_digest`'s "0x" = zero must not make the sim take a non-string metadata/builder (0, false, [], {},
  null) that the venue's JSON decoding refuses: the old code refused them (by accident), the new one took
  them and recovered the right signer.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account

from pmbot.sim.engine import CANCELED, LIVE, MATCHED, Order, OrderIndex
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.sim.verify import SignatureError, order_digest, recover_order_signer


def _order(n: int, *, user: bool, market: Any) -> Order:
    return Order(
        id=f"o{n}", market=market, index=0, side="BUY", price=Decimal("0.5"), original_size=Decimal(5),
        order_type="GTC", owner="k", maker_address="0xa", created_at=n, is_user=user,
    )  # fmt: skip


def _scan(index: dict[str, Order]) -> list[str]:
    return [o.id for o in index.values() if o.status == LIVE and o.is_user]


@pytest.mark.parametrize("seed", range(40))
def test_the_order_index_equals_a_scan_after_any_dict_operation(seed: int) -> None:
    rng = random.Random(seed)
    market = object()  # Order only carries it
    index = OrderIndex()
    n = 0

    def fresh() -> Order:
        nonlocal n
        n += 1
        return _order(n, user=rng.random() < 0.7, market=market)

    for _ in range(300):
        keys = list(index)
        op = rng.choice(["set", "set", "del", "pop", "popitem", "update", "setdefault", "ior", "status", "replace"])
        if op == "set":
            o = fresh()
            index[o.id] = o
        elif op == "del" and keys:
            del index[rng.choice(keys)]
        elif op == "pop" and keys:
            index.pop(rng.choice(keys))
        elif op == "popitem" and keys:
            index.popitem()
        elif op == "update":
            new = [fresh() for _ in range(rng.randrange(3))]
            index.update({o.id: o for o in new})
        elif op == "setdefault":
            o = fresh()
            index.setdefault(rng.choice([*keys, o.id]) if keys else o.id, o)
        elif op == "ior":
            o = fresh()
            index |= {o.id: o}
        elif op == "status" and keys:
            index[rng.choice(keys)].status = rng.choice([CANCELED, MATCHED])  # final: never LIVE again
        elif op == "replace" and keys:  # a key given another order (a user one or not), in place
            k = rng.choice(keys)
            o = fresh()
            o.id = k
            index[k] = o
        if rng.random() < 0.3:
            assert [o.id for o in index.live_user()] == _scan(index), op
    assert [o.id for o in index.live_user()] == _scan(index)
    if index:
        index.clear()
    assert index.live_user() == []


def _signed(**fields: Any) -> dict[str, Any]:
    acct = Account.from_key(HARDHAT_KEYS[1])
    order: dict[str, Any] = {
        "salt": "12345", "maker": acct.address, "signer": acct.address,
        "tokenId": "478906253986673131381833279182678778796176991657430079257241223424241241600",
        "makerAmount": "1000000", "takerAmount": "2000000", "side": "BUY", "signatureType": 0,
        "timestamp": "1700000000000", "metadata": "0x" + "00" * 32, "builder": "0x" + "00" * 32,
    }  # fmt: skip
    digest = order_digest(order, neg_risk=False)
    order["signature"] = "0x" + bytes(Account._sign_hash(digest, HARDHAT_KEYS[1]).signature).hex()
    order.update(fields)
    return order


@pytest.mark.parametrize("field", ["metadata", "builder"])
@pytest.mark.parametrize("value", [0, False, [], {}, None, 1, ["0x"]], ids=repr)
def test_a_non_string_bytes32_field_is_refused(field: str, value: Any) -> None:
    with pytest.raises(SignatureError):
        recover_order_signer(_signed(**{field: value}), neg_risk=False)


@pytest.mark.parametrize("field", ["metadata", "builder"])
@pytest.mark.parametrize("value", ["0x", "", "0x" + "00" * 32, "0x00", "DELETE"])
def test_an_empty_or_absent_bytes32_field_is_zero(field: str, value: str) -> None:
    """The signer writes "0x" as zero (pmbot.polymarket.signing zero-fills): the sim agrees."""
    order = _signed()
    if value == "DELETE":
        del order[field]
    else:
        order[field] = value
    assert recover_order_signer(order, neg_risk=False)[1] == Account.from_key(HARDHAT_KEYS[1]).address


def _ids_scan(sim: SimServer) -> list[str]:
    return sim.call(lambda v: [o.id for o in v.engine.orders.values() if o.status == LIVE and o.is_user])


def _ids_index(sim: SimServer) -> list[str]:
    return sim.call(lambda v: [o.id for o in v.engine.live_orders()])


def test_live_orders_equal_a_scan_through_the_paths_the_fuzz_does_not_take(sim: SimServer) -> None:
    """Over real sockets: GTD expiry, cancel-all, cancel-market-orders, DELETE /orders, the balance-driven
    cancel (CANCELED_NOT_ENOUGH_BALANCE), a cancel of a fak_live deferred order, and the generator's prune."""
    from pmbot.sim.generate import _prune

    a, b = SimTrader(sim, HARDHAT_KEYS[1]), SimTrader(sim, HARDHAT_KEYS[2])
    up, down = sim.current_market()["token_ids"]
    nxt = next(m for m in sim.markets() if not m["closed"] and m["token_ids"][0] != up)["token_ids"][0]
    seen: list[str] = []

    def rest(t: SimTrader, token: str, cents: int, **kw: Any) -> str:
        r = t.post_order(token, "BUY", Decimal(cents) / 100, Decimal(5), **kw)
        assert r.status_code == 200 and r.json()["success"], r.text
        return str(r.json()["orderID"])

    def same(what: str) -> None:
        got = _ids_index(sim)
        assert got == _ids_scan(sim), what
        seen.append(f"{what}:{len(got)}")

    try:
        gtd = rest(a, up, 10, order_type="GTD", expiration=int(sim.now()) + 120)
        for cents in (11, 12, 13):
            rest(a, up, cents)
            rest(b, down, cents)
        rest(a, nxt, 14)
        same("rested")
        sim.advance(130)  # the GTD expires
        same("gtd expired")
        assert gtd not in _ids_index(sim)
        r = a.request("DELETE", "/cancel-market-orders", {"asset_id": nxt})
        assert r.json()["canceled"], r.text
        same("cancel-market-orders")
        first = _ids_index(sim)[0]
        assert a.request("DELETE", "/orders", [first]).status_code == 200
        same("DELETE /orders")
        sim.fund(b.address, pusd=Decimal("0.6"))  # covers one 5 x 0.11 bid: the newest are cancelled
        same("balance cancel")
        sim.fund(b.address, pusd=Decimal(1000))
        sim.set_faults(fak_live=2)
        for _ in range(2):
            r = b.post_order(up, "BUY", Decimal("0.99"), amount=Decimal(2), order_type="FAK")
            assert r.json().get("status") == "live", r.text
        same("deferred")
        deferred = sim.call(lambda v: [o.id for o in v._deferred])
        assert deferred, "fak_live deferred nothing"
        b.request("DELETE", "/order", {"orderID": deferred[0]})
        same("deferred cancelled")
        sim.advance(2)  # the other one settles
        same("deferred settled")
        assert a.request("DELETE", "/cancel-all").status_code == 200
        same("cancel-all")
        rest(b, nxt, 15)
        sim.advance(max(sim.current_market()["end"] - sim.now() + 5, 1))  # resolution
        same("resolved")
        sim.call(_prune)
        same("pruned")
    finally:
        a.close()
        b.close()
    # each step did what it says (counts of live user orders after it)
    assert seen[:4] == ["rested:8", "gtd expired:7", "cancel-market-orders:6", "DELETE /orders:5"], seen
    counts = dict(x.rsplit(":", 1) for x in seen)
    assert int(counts["balance cancel"]) < 5 and int(counts["deferred"]) == int(counts["balance cancel"]) + 2, seen
    assert counts["cancel-all"] == "0" and counts["resolved"] == "1", seen


def test_a_flapping_book_is_not_warned_of_every_snapshot(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """def8cdd warns once per snapshot. The feed asks for a snapshot as soon as a book is contradicted, so a
    book the venue keeps contradicting (wrong again on the first change after each snapshot) warned once per
    cycle: with a change a second, 3,600 warnings an hour per token (72,000 for run-all's 20 tokens) where it
    used to be one. Through the real Translator: an hour of such cycles, one a second."""
    import logging

    from pmbot.polymarket import book as book_mod
    from pmbot.polymarket.models import BookLevel, BookSnapshot, LevelChange, OrderBook, PriceChange
    from pmbot.runner.feed import Translator
    from pmbot.store.models import Side

    now = [1000.0]
    monkeypatch.setattr(book_mod, "_clock", lambda: now[0])
    token, cid = "1001", "0xc"
    t = Translator({token: cid})
    snap = BookSnapshot(
        OrderBook(token, cid, (BookLevel(Decimal("0.40"), Decimal(10)),), (BookLevel(Decimal("0.50"), Decimal(3)),), 1)
    )
    wrong = PriceChange(
        cid, (LevelChange(token, Side.BUY, Decimal("0.39"), Decimal(5), Decimal("0.41"), Decimal("0.50")),), 2
    )
    with caplog.at_level(logging.WARNING):
        for s in range(3600):
            now[0] = 1000.0 + s
            t.translate(snap, s * 1000)
            t.translate(wrong, s * 1000 + 500)
            assert t.take_resync() == [token]  # blinded and asked for again every cycle
    warned = [r for r in caplog.records if "disagrees with the venue" in r.getMessage()]
    assert t.books[token].mismatches == 3600
    assert len(warned) == 60  # once a minute, not 3,600


@pytest.mark.parametrize("value", [0, None, False, "0x", "", "ABSENT"], ids=repr)
def test_post_order_with_an_odd_metadata_over_the_wire(sim: SimServer, value: Any) -> None:
    """POST /order over a real socket: a non-string metadata is refused ("invalid signature", nothing
    placed); "0x", "" or none at all is the zero word the order was signed with, and is placed."""
    t = SimTrader(sim, HARDHAT_KEYS[1])
    try:
        body = t.order_body(sim.current_market()["token_ids"][0], "BUY", Decimal("0.30"), Decimal(5))
        if value == "ABSENT":
            del body["order"]["metadata"]
        else:
            body["order"]["metadata"] = value
        r = t.request("POST", "/order", body)
        placed = sim.call(lambda v: len(v.engine.live_orders()))
        if isinstance(value, str):
            assert r.status_code == 200 and r.json()["success"], r.text
            assert placed == 1
        else:
            assert r.status_code == 400 and "invalid signature" in r.text, r.text
            assert placed == 0
    finally:
        t.close()
