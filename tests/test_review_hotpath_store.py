"""Review of the hot path (issue 13): `set_order_status` as one guarded UPDATE (SQLite) must move exactly
as the SELECT-then-UPDATE it replaced (and PostgreSQL's, unchanged) for every pair of statuses: a final
status stays final (the same one may be set again, with its event), anything else moves; a refused move
writes nothing and names both statuses; an unknown key is "no order with key …"."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal as D

import pytest

from pmbot.errors import StoreError
from pmbot.store.base import Store
from pmbot.store.models import OrderStatus
from tests.test_store_contract import order

PAIRS = list(itertools.product(list(OrderStatus), repeat=2))


def test_every_pair_of_statuses_moves_as_before(store: Store) -> None:
    for i, (start, to) in enumerate(PAIRS):
        key = f"p{i}"
        store.insert_order(order(key, status=start, venue_order_id="0xfirst", error="first"))
        before = store.get_order(key)
        events = store.order_events(key)
        assert before is not None and before.status is start
        if start.is_final and to is not start:
            with pytest.raises(
                StoreError, match=re.escape(f"order {key!r} is already {start.value}; cannot become {to.value}")
            ):
                store.set_order_status(key, to, venue_order_id="0xsecond", error="second", filled_size=D(3))
            assert store.get_order(key) == before, (start, to)
            assert store.order_events(key) == events, (start, to)
            continue
        store.set_order_status(key, to, venue_order_id="0xsecond", filled_size=D(3), detail="moved")
        got = store.get_order(key)
        assert got is not None and got.status is to, (start, to)
        assert got.venue_order_id == "0xsecond" and got.error == "first" and got.filled_size == 3
        after = store.order_events(key)
        assert len(after) == len(events) + 1 and after[-1].status is to and after[-1].detail == "moved"
        store.set_order_status(key, to)  # the same status again: allowed, nothing else changes
        again = store.get_order(key)
        assert again is not None and again.venue_order_id == "0xsecond" and again.filled_size == 3


def test_an_unknown_key_is_no_order_and_writes_nothing(store: Store) -> None:
    for status in OrderStatus:
        with pytest.raises(StoreError, match=re.escape("no order with key 'nope'")):
            store.set_order_status("nope", status)
    assert store.order_events("nope") == []
