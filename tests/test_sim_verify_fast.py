"""The sim's two speed-ups of its POST /order check, against what they replace.

- `order_digest` (the domain separator cached, the struct hashed by eth_account) must equal eth_account's
  whole typed-data path (`order_digest_generic`) for every exchange, chain, side and field size.
- `Engine.live_orders()` reads a side index of user orders instead of scanning the whole order history: it
  must equal that scan after every kind of step (rest, cancel, fills as maker and taker, FOK kills, the
  fak_live fault's deferred orders, a market's resolution).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from pmbot.sim.engine import LIVE
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.sim.verify import order_digest, order_digest_generic, recover_order_signer

V1_TOKEN = "478906253986673131381833279182678778796176991657430079257241223424241241600"  # bits 40..103 set


def _order(rng: random.Random, token: str) -> dict[str, Any]:
    word = lambda: "0x" + rng.randbytes(32).hex()  # noqa: E731
    return {
        "salt": rng.randrange(1 << 64),
        "maker": "0x" + rng.randbytes(20).hex(),
        "signer": "0x" + rng.randbytes(20).hex(),
        "tokenId": token,
        "makerAmount": str(rng.randrange(1, 10**12)),
        "takerAmount": str(rng.randrange(1, 10**12)),
        "side": rng.choice(["BUY", "SELL"]),
        "signatureType": rng.randrange(4),
        "timestamp": str(rng.randrange(10**13)),
        "metadata": rng.choice(["0x", "0x" + "00" * 32, word()]),
        "builder": rng.choice(["0x", "0x" + "00" * 32, word()]),
    }


def test_the_cached_domain_digest_is_eth_accounts_digest() -> None:
    rng = random.Random(13)
    seen = set()
    for n in range(400):
        # V1 position ids (domain "2", neg-risk or not) and V2 ones (bits 40..103 clear: ExchangeV3, "3")
        token = V1_TOKEN if n % 2 else str(rng.randrange(1 << 40) | (rng.randrange(1 << 100) << 104))
        order = _order(rng, token)
        neg_risk, chain = bool(n % 3 == 0), rng.choice([137, 80002])
        got = order_digest(order, neg_risk=neg_risk, chain_id=chain)
        assert got == order_digest_generic(order, neg_risk=neg_risk, chain_id=chain), order
        seen.add(got)
    assert len(seen) == 400


def test_a_signed_order_recovers_its_signer_through_the_fast_digest(sim: SimServer) -> None:
    t = SimTrader(sim, HARDHAT_KEYS[1])
    body = t.order_body(sim.current_market()["token_ids"][0], "BUY", Decimal("0.40"), Decimal("10"))
    order_id, signer = recover_order_signer(body["order"], neg_risk=False)
    assert signer.lower() == t.address.lower()
    assert order_id == "0x" + order_digest_generic(body["order"], neg_risk=False).hex()
    tampered = {**body["order"], "makerAmount": str(int(body["order"]["makerAmount"]) + 1)}
    assert recover_order_signer(tampered, neg_risk=False)[1].lower() != t.address.lower()


def _scan(sim: SimServer) -> list[str]:
    return sim.call(lambda v: [o.id for o in v.engine.orders.values() if o.status == LIVE and o.is_user])


def _indexed(sim: SimServer) -> list[str]:
    return sim.call(lambda v: [o.id for o in v.engine.live_orders()])


def test_live_orders_from_the_index_equal_a_scan_of_the_history(sim: SimServer) -> None:
    rng = random.Random(5)
    traders = [SimTrader(sim, k) for k in HARDHAT_KEYS[:3]]
    market = sim.current_market()
    up, down = market["token_ids"]
    placed: list[tuple[SimTrader, str]] = []
    kinds: dict[str, int] = {}
    try:
        for step in range(160):
            t = rng.choice(traders)
            token = rng.choice([up, down])
            roll = rng.random()
            if step == 60:
                sim.set_faults(fak_live=6)  # FOK/FAK answered "live", settled a second later
            if roll < 0.45:  # rests (or crosses another trader's resting order)
                price = Decimal(rng.randrange(30, 71)) / 100
                side = rng.choice(["BUY", "SELL"]) if step > 20 else "BUY"  # SELLs of shares bought by the takes
                r = t.post_order(token, side, price, Decimal(5 + step % 7))
                if r.status_code == 200 and r.json().get("success"):
                    placed.append((t, r.json()["orderID"]))
                kind = "rest"
            elif roll < 0.65 and placed:  # cancel one (maybe already filled: refused, fine)
                owner, oid = placed.pop(rng.randrange(len(placed)))
                owner.request("DELETE", "/order", {"orderID": oid})
                kind = "cancel"
            elif roll < 0.85:  # takes: FOK BUY of $2..$6 at a generous price (or killed)
                t.post_order(token, "BUY", Decimal("0.99"), amount=Decimal(rng.randrange(2, 7)), order_type="FOK")
                kind = "take"
            else:
                sim.advance(rng.choice([0.5, 1, 3]))  # whale trades, requotes, deferred FOK/FAK settle
                kind = "time"
            kinds[kind] = kinds.get(kind, 0) + 1
            assert _indexed(sim) == _scan(sim), (step, kind)
        sim.advance(max(sim.current_market()["end"] - sim.now() + 5, 1))  # the market resolves: all cancelled
        assert _indexed(sim) == _scan(sim)
    finally:
        for t in traders:
            t.close()
    assert min(kinds.values()) >= 10, kinds
    states = sim.call(lambda v: {o.status for o in v.engine.orders.values() if o.is_user})
    assert {"LIVE", "CANCELED", "MATCHED"} <= states or "CANCELED_MARKET_RESOLVED" in states, states
