"""OrderFilled logs from ExchangeV3: V2 position ids decoded to market and outcome, combos skipped,
ExchangeV3 in the stream's address filter."""

from __future__ import annotations

from decimal import Decimal as D

from pmbot.polymarket.schemas import ws
from pmbot.polymarket.streams import ChainFillStream
from tests.test_streams_chain import WHALE, WHALE_LC, filled


def position(module: int, market: int, outcome: int) -> int:
    return (module << 248) | ((market & ((1 << 144) - 1)) << 104) | outcome


def test_v2_fill_names_its_market_and_outcome() -> None:
    token = position(1, 0xC0FFEE, 1)
    log = filled(maker=WHALE, taker=ws.EXCHANGE_V3, side=0, token=token, maker_amount=4_000_000,
                 taker_amount=10_000_000, tx="0x" + "01" * 32)  # fmt: skip
    log["address"] = ws.EXCHANGE_V3.lower()
    trade = ws.order_filled(log, [WHALE_LC], 1_000)
    assert trade is not None and trade.token_id == str(token) and trade.price == D("0.4") and trade.size == 10
    assert trade.condition_id == "0x" + f"{token:064x}"[:62] + "00" and trade.outcome_index == 1


def test_v1_fill_has_no_decoded_market_and_combos_are_skipped() -> None:
    v1 = int("23305969272951306317157739183583008201155714184462027894470739210983097393455")
    args = dict(maker=WHALE, taker=ws.EXCHANGE_V3, side=1, maker_amount=5_000_000, taker_amount=2_000_000)
    trade = ws.order_filled(filled(token=v1, tx="0x" + "02" * 32, **args), [WHALE_LC], 1)  # type: ignore[arg-type]
    assert trade is not None and trade.condition_id is None and trade.outcome_index is None
    combos = filled(token=position(3, 77, 0), tx="0x" + "03" * 32, **args)  # type: ignore[arg-type]
    assert ws.order_filled(combos, [WHALE_LC], 1) is None


def test_exchange_v3_is_in_the_default_address_filter() -> None:
    stream = ChainFillStream("ws://127.0.0.1:1", wallets=[WHALE])
    addresses = {a.lower() for f in stream.log_filters() for a in f["address"]}
    assert ws.EXCHANGE_V3.lower() in addresses and ws.CTF_EXCHANGE_V2.lower() in addresses
