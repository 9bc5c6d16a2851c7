"""Market identity under Protocol V2: Gamma `version` chooses the ids, position ids describe
themselves (module, market, outcome), one condition-id normaliser, combos refused by order commands,
and bad input (combos id, unknown version, 31-byte condition id as a token) is one line, exit 2,
nothing written."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmbot.cli import main
from pmbot.errors import InputError, VenueError
from pmbot.polymarket import identity
from pmbot.polymarket.identity import Module, Protocol
from pmbot.polymarket.schemas import rest
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import Query
from tests.sim_start import now_with_time_left

SAMPLES = Path("/work/shared/polymarket-samples")
# From gamma_markets_list_2026-09.json (a neg-risk V1 market that also lists its V2 position ids).
RECORDED_POSITION = "1162654702417329243518891277010413122836313410091608738884307871557302091776"
RECORDED_TOKEN = "23305969272951306317157739183583008201155714184462027894470739210983097393455"
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def position(module: int, market: int, outcome: int) -> str:
    return str((module << 248) | ((market & ((1 << 144) - 1)) << 104) | outcome)


# ------------------------------------------------------------------------------------------ ids


def test_position_ids_describe_themselves() -> None:
    info = identity.decode_position_id(RECORDED_POSITION)
    assert info is not None and info.module is Module.NEG_RISK and info.outcome_index == 0
    assert info.condition_id == "0x" + f"{int(RECORDED_POSITION):064x}"[:62] + "00"
    assert identity.protocol_of(RECORDED_POSITION) is Protocol.V2
    assert identity.protocol_of(RECORDED_TOKEN) is Protocol.V1 and identity.decode_position_id(RECORDED_TOKEN) is None
    assert identity.decode_position_id(position(3, 42, 1)).module is Module.COMBOS  # type: ignore[union-attr]
    assert identity.decode_position_id(position(9, 42, 1)) is None  # no such module
    assert identity.decode_position_id(str(2**256)) is None and not identity.is_v2_position_id("x")


def test_condition_id_normaliser() -> None:
    short = "0x01" + "ab" * 30  # Gamma's 31-byte V2 form
    assert identity.condition_id(short) == short + "00"
    full = "0x" + "AB" * 32
    assert identity.condition_id(full) == full.lower()
    for bad in ("0x" + "ab" * 31, "0x1234", "abc", "0x09" + "ab" * 30, ""):  # 31 bytes needs a module byte
        with pytest.raises(InputError):
            identity.condition_id(bad)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0x01" + "ab" * 30, "looks like a condition id (31 bytes)"),
        ("0x" + "ab" * 32, "looks like a condition id (32 bytes)"),
        ("12ab", "not a token id"),
        ("0x12", "not a token id"),
        (str(2**256), "below 2^256"),
    ],
)
def test_token_id_check_says_what_it_got(text: str, words: str) -> None:
    with pytest.raises(InputError) as e:
        identity.check_token_id(text)
    assert words in e.value.one_line()


def test_combos_are_refused_for_orders_but_readable() -> None:
    combos = position(3, 7, 0)
    assert identity.check_token_id(combos) == combos
    with pytest.raises(InputError, match="combos"):
        identity.check_orderable_token_id(combos)
    for ok in (RECORDED_TOKEN, RECORDED_POSITION, position(1, 5, 1)):
        assert identity.check_orderable_token_id(ok) == ok


# ---------------------------------------------------------------------------------------- gamma


def _recorded() -> dict:
    return json.loads((SAMPLES / "gamma_markets_list_2026-09.json").read_text())[0]


needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="recorded samples not available")


@needs_samples
def test_version_chooses_the_ids_even_when_both_are_present() -> None:
    raw = _recorded()
    m = rest.gamma_market(raw)  # version v1: clobTokenIds, although positionIds is there too
    assert m.protocol is Protocol.V1 and m.token_ids == tuple(json.loads(raw["clobTokenIds"])) and m.module is None
    v2 = copy.deepcopy(raw)
    v2["version"] = "v2"
    v2["conditionId"] = "0x" + f"{int(raw['positionIds'][0]):064x}"[:62]  # Gamma's 31-byte form
    m2 = rest.gamma_market(v2)
    assert m2.protocol is Protocol.V2 and m2.token_ids == tuple(raw["positionIds"])
    assert m2.module is Module.NEG_RISK and m2.condition_id == v2["conditionId"] + "00"  # the 32-byte form


@needs_samples
@pytest.mark.parametrize("version", ["v3", "V2", 2, "latest"])
def test_unknown_version_is_refused(version: object) -> None:
    raw = _recorded()
    raw["version"] = version
    with pytest.raises(VenueError, match="unknown market version"):
        rest.gamma_market(raw)


@needs_samples
def test_missing_version_with_position_ids_is_refused_but_old_recordings_still_parse() -> None:
    raw = _recorded()
    del raw["version"]
    with pytest.raises(VenueError, match="no `version`"):
        rest.gamma_market(raw)
    # Recordings from before Protocol V2 have neither `version` nor positionIds: V1, unambiguous.
    for name in ("gamma_market.json", "gamma_markets_by_slug.json", "gamma_market_closed_resolved.json"):
        data = json.loads((SAMPLES / name).read_text())
        for obj in data if isinstance(data, list) else [data]:
            assert rest.gamma_market(obj).protocol is Protocol.V1


def test_v2_outcome_ids_must_be_position_ids() -> None:
    raw = {"conditionId": "0x" + "11" * 32, "version": "v2", "positionIds": [RECORDED_TOKEN, RECORDED_POSITION]}
    with pytest.raises(VenueError, match="not a V2 position id"):
        rest.gamma_market(raw)


# ------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=12, start=now_with_time_left(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        yield sim


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _nothing_written(db_url: str, sim: SimServer) -> None:
    store = open_store(db_url)
    try:
        assert store.list_orders(query=Query()) == []
    finally:
        store.close()
    assert sim.received_orders() == []


@pytest.mark.parametrize(
    ("token", "words"),
    [
        (position(3, 99, 0), "combos position"),
        ("0x01" + "ab" * 30, "looks like a condition id (31 bytes)"),
    ],
)
@pytest.mark.parametrize("live", [False, True])
def test_bad_order_input_is_one_line_exit_2_nothing_written(
    live_sim: SimServer, db_url: str, token: str, words: str, live: bool
) -> None:
    args = ["order", "buy", token, "--price", "0.5", "--size", "10", "--key", "bad-1"]
    code, out, err = invoke(*(args + (["--live", "--yes"] if live else [])))
    assert code == 2 and "Traceback" not in err + out
    # One clear line (Click's usage lines may precede it: main's contract for usage errors).
    [line] = [x for x in err.splitlines() if words in x]
    assert line.lower().startswith("error: ")
    _nothing_written(db_url, live_sim)


def test_v2_and_v1_tokens_are_accepted_by_token_commands(live_sim: SimServer, db_url: str) -> None:
    markets = live_sim.markets()
    v2 = live_sim.current_market()["token_ids"][0]
    v1 = next(m for m in markets if m["slug"] == "will-bitcoin-close-the-month-above-100k")["token_ids"][0]
    assert identity.protocol_of(v2) is Protocol.V2 and identity.protocol_of(v1) is Protocol.V1
    for token in (v2, v1):
        code, out, err = invoke("book", token, "--json")
        assert code == 0, err
        assert json.loads(out)["token_id"] == token
        code, out, err = invoke("order", "buy", token, "--price", "0.05", "--size", "5", "--json")  # dry run
        assert code == 0, err
        assert json.loads(out)["mode"] == "dry-run"


def test_unknown_version_from_gamma_is_one_line_exit_2(live_sim: SimServer) -> None:
    def tamper(v) -> None:  # type: ignore[no-untyped-def]
        v.current_market().version = "v7"

    live_sim.call(tamper)
    code, out, err = invoke("markets", "--closing-within", "15m")
    assert code == 2 and "unknown market version 'v7'" in err and "Traceback" not in err + out


@needs_samples
def test_a_recorded_v2_market_replays_with_its_position_ids() -> None:
    from pmbot.sim.markets import market_from_gamma

    raw = _recorded()
    v1 = market_from_gamma(raw)
    assert v1.version == "v1" and list(v1.token_ids) == json.loads(raw["clobTokenIds"])
    raw["version"] = "v2"
    raw["conditionId"] = "0x" + f"{int(raw['positionIds'][0]):064x}"[:62]
    v2 = market_from_gamma(raw)
    assert v2.version == "v2" and list(v2.token_ids) == raw["positionIds"]
    assert v2.condition_id == raw["conditionId"] + "00"
