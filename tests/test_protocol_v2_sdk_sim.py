"""polymarket-client 0.14 (the unified official SDK), pointed at `pmbot sim` through an `Environment`
with the sim's URLs: it lists markets (keyset route), reads a book, derives an API key, places, reads
back and cancels a resting order on a V2 market (ExchangeV3, domain "3") and on a V1 market
(CTFExchangeV2, domain "2"), with no error. An order signed by another key is refused. The sim checks
every signature with eth_account, not with pmbot's signer."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest
from polymarket import SecureClient
from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment
from polymarket.environments import Environment
from polymarket.errors import RequestRejectedError

from pmbot.polymarket import identity
from pmbot.sim.testing import SimServer

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # Hardhat #1: public
ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # Hardhat #2


def sim_environment(sim: SimServer) -> Environment:
    config = dataclasses.replace(
        PRODUCTION_CONFIG,
        clob_url=sim.url,
        gamma_url=f"{sim.url}/gamma",
        data_url=f"{sim.url}/data-api",
        clob_market_ws_url=f"{sim.ws_url}/ws/market",
        clob_user_ws_url=f"{sim.ws_url}/ws/user",
        rtds_ws_url=f"{sim.ws_url}/rtds",
        relayer_url=f"{sim.url}/relayer",
        rpc_url=f"{sim.url}/rpc",
    )
    return create_environment(name="pmbot-sim", config=config)


@pytest.fixture
def env_sim() -> Iterator[tuple[SimServer, Environment]]:
    with SimServer(seed=21) as sim:
        yield sim, sim_environment(sim)


def _resting_bid(sim: SimServer, token: str) -> Decimal:
    book = sim.book(token)
    assert book is not None and book["bids"], "the sim's market maker quotes both sides"
    return max(Decimal(str(b["price"])) for b in book["bids"]) - Decimal("0.05")


def test_the_sdk_trades_v2_and_v1_markets_on_the_sim(env_sim: tuple[SimServer, Environment]) -> None:
    sim, env = env_sim
    client = SecureClient.create(private_key=KEY, wallet=ADDRESS, environment=env)
    try:
        listed = list(client.list_markets(closed=False, page_size=2).iter_items())  # keyset, 3 pages
        by_version = {m.version: m for m in listed}
        assert set(by_version) == {"v1", "v2"}, [m.version for m in listed]
        cur = sim.current_market()
        v2_market = next(m for m in listed if m.slug == cur["slug"])
        v1_market = by_version["v1"]
        v2_token = v2_market.outcomes.yes.position_id
        v1_token = v1_market.outcomes.yes.token_id
        assert v2_token == cur["token_ids"][0] and identity.protocol_of(v2_token) is identity.Protocol.V2
        assert v1_token is not None and identity.protocol_of(v1_token) is identity.Protocol.V1
        for token in (v2_token, v1_token):
            book = client.get_order_book(token_id=token)
            assert book.bids and book.asks
            price = _resting_bid(sim, token)
            placed = client.place_limit_order(asset_id=token, price=price, size=Decimal(10), side="BUY")
            assert placed.order_id, placed
            again = client.get_order(order_id=placed.order_id)
            assert again.id == placed.order_id and again.price == price and again.asset_id == token
            assert again.condition_id == identity.condition_id(again.condition_id)  # the 32-byte form
            cancelled = client.cancel_order(order_id=placed.order_id)
            assert placed.order_id in cancelled.canceled
        received = sim.received_orders()
        assert [o["order"]["tokenId"] for o in received] == [v2_token, v1_token]
        assert sim.open_orders() == []
    finally:
        client.close()


def test_an_order_signed_by_another_key_is_refused(env_sim: tuple[SimServer, Environment]) -> None:
    sim, env = env_sim
    token = sim.current_market()["token_ids"][0]
    mine = SecureClient.create(private_key=KEY, wallet=ADDRESS, environment=env)
    other = SecureClient.create(
        private_key=OTHER_KEY, wallet="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", environment=env
    )
    try:
        forged = other.create_limit_order(asset_id=token, price=_resting_bid(sim, token), size=Decimal(10), side="BUY")
        # Relabel it as mine: maker and signer say ADDRESS, the signature is the other key's.
        forged = dataclasses.replace(forged, maker=ADDRESS, signer=ADDRESS)
        with pytest.raises(RequestRejectedError) as e:
            mine.post_order(forged)
        assert "invalid signature" in str(e.value)
        assert sim.received_orders() == [] and sim.open_orders() == []
    finally:
        mine.close()
        other.close()


def test_the_sdks_default_deposit_wallet_trades_on_the_sim(env_sim: tuple[SimServer, Environment]) -> None:
    """The unified SDK's default wallet: signature type 3, ERC-7739 wrapped, maker = signer = the
    deposit wallet; the sim recovers the owner key with eth_account and checks the trailer."""
    from polymarket._internal.wallet import derive_beacon_deposit_wallet_address

    sim, env = env_sim
    wallet = derive_beacon_deposit_wallet_address(ADDRESS, PRODUCTION_CONFIG.wallet_derivation)
    client = SecureClient.create(private_key=KEY, wallet=wallet, environment=env)
    try:
        v1 = next(m for m in sim.markets() if m["slug"] == "will-bitcoin-close-the-month-above-100k")
        for token in (sim.current_market()["token_ids"][0], v1["token_ids"][0]):
            placed = client.place_limit_order(
                asset_id=token, price=_resting_bid(sim, token), size=Decimal(10), side="BUY"
            )
            assert placed.order_id
            assert placed.order_id in client.cancel_order(order_id=placed.order_id).canceled
        orders = [b["order"] for b in sim.received_orders()]
        assert [o["signatureType"] for o in orders] == [3, 3]
        assert {o["maker"].lower() for o in orders} == {o["signer"].lower() for o in orders} == {wallet.lower()}
        assert all(len(o["signature"]) > 132 for o in orders)  # the ERC-7739 trailer
    finally:
        client.close()
