"""`pmbot run-all`: the host (one executor, one market hub, supervised units) against `pmbot sim` over
real sockets, supervision (restart with backoff, stopped after N crashes, the others untouched), pause /
resume through the control channel, status, the market hub's sharding, config and bad input."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pmbot.app import App
from pmbot.cli import main
from pmbot.runner.host import Host, HostOptions
from pmbot.runner.supervisor import SupervisorPolicy
from pmbot.runner.units import SnipeUnit
from pmbot.sim.testing import SimServer
from pmbot.strategies.snipe import SnipeStrategy


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def opts(**kw: Any) -> HostOptions:
    base: dict[str, Any] = dict(
        venue_clock=False,  # the test's App clock is the manual sim's
        tick_s=0.02,
        rediscover_s=0.5,
        status_interval_s=0.2,
        snapshot_interval_s=3600,
        settle_every_s=3600,
        policy=SupervisorPolicy(max_crashes=3, window_s=60, backoff_s=0.05, backoff_max_s=0.2),
    )
    base.update(kw)
    return HostOptions(**base)


async def drive(sim: SimServer, host: Host, until: float, *, step: float = 1.0) -> None:
    while sim.now() < until:
        await asyncio.to_thread(sim.advance, step)
        await asyncio.sleep(0.01)


@pytest.fixture
def wall_sim(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sim on the wall clock (a `pmbot run-all` subcommand reads the wall clock), env pointed at it."""
    import time

    with SimServer(seed=7, start=time.time(), manual=False) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


def snipe(name: str, token: str) -> SnipeUnit:
    return SnipeUnit(name, SnipeStrategy.validate_config({}), token_ids=(token,))


def test_two_snipers_share_one_executor_and_one_market_connection(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    app = App(clock=sim.now)
    units = [snipe("snipe-a", cur["token_ids"][0]), snipe("snipe-b", cur["token_ids"][1])]
    host = Host(app, units, dry_run=True, options=opts())

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop=stop))
        await asyncio.wait_for(host.ready.wait(), 10)
        await asyncio.sleep(0.5)
        await drive(sim, host, cur["end"] + 5)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 15)

    asyncio.run(go())
    assert host.hub is not None and len(host.hub.shards) == 1  # both tokens on one connection
    ma, mb = units[0].totals(), units[1].totals()
    # the same market (both tokens belong to it), two instances: each enters once, under its own key
    assert (ma.signals, ma.fills, mb.signals, mb.fills) == (1, 1, 1, 1)
    assert ma.wins + ma.losses == 1 and mb.wins + mb.losses == 1  # resolved on the shared channel
    store = app.store
    orders = store.list_orders()
    assert all(o.dry_run for o in orders)
    # pre-armed: both outcomes signed ahead, the likely one fired, the other retired unsent
    filled = [o for o in orders if o.status.value == "filled"]
    assert sorted(o.strategy for o in filled) == ["snipe-a", "snipe-b"]
    assert all(o.status.value == "not_sent" for o in orders if o not in filled)
    assert {o.wallet for o in orders} == {host.handle.executor.wallet}
    procs = [p for p in (store.get_state("runtime:processes") or {})["processes"].values()]
    assert procs and procs[0]["state"] == "stopped"
    logs = store.list_execution_logs(event="metrics_snapshot")
    assert any((e.metadata or {}).get("kind") == "final" for e in logs)
    # the dashboard and the summary render what the host exposes
    from rich.console import Console

    from pmbot.commands.run_all_view import dashboard, final_table, log_lines, snapshot

    console = Console(file=io.StringIO(), width=140)
    console.print(dashboard(host))
    console.print(final_table(snapshot(host)))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(r"ran [0-9.]+s, shut down in [0-9.]+s", shown)  # not "stopped in" the shutdown time
    for text in ("Strategies", "snipe-a", "snipe-b", "Executor", "ack p99", "Streams", "market-0", "Last events"):
        assert text in shown, text
    assert any(line.startswith("snipe-a (snipe) stopped: signals=1") for line in log_lines(host))
    app.close()


# ------------------------------------------------------------------------------------- supervision


class FakeUnit:
    """A unit that raises `fail` times (then runs until stopped), counting its runs and pauses."""

    kind = "fake"

    def __init__(self, name: str, fail: int = 0) -> None:
        self.name, self.fail, self.runs, self.paused = name, fail, 0, False
        self.heartbeat_ms: int | None = None

    async def run(self, ctx: Any, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.runs <= self.fail:
            raise RuntimeError(f"boom {self.runs}")
        await stop.wait()

    def pause(self, reason: str) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def metrics(self) -> dict[str, Any]:
        return {}


def test_a_crashing_unit_is_restarted_with_backoff_then_stopped_and_the_others_run_on() -> None:
    from pmbot.control import Command
    from pmbot.runner.supervisor import Supervisor

    flaky, bad, good = FakeUnit("flaky", fail=2), FakeUnit("bad", fail=99), FakeUnit("good")
    events: list[tuple[str, str]] = []

    async def go() -> Supervisor:
        sup = Supervisor([flaky, bad, good], None, policy=SupervisorPolicy(max_crashes=3, window_s=60,
                         backoff_s=0.01, backoff_max_s=0.05), on_event=lambda n, t: events.append((n, t)))  # fmt: skip
        sup.start()
        for _ in range(500):
            if sup.units["bad"].state == "crashed" and sup.units["flaky"].state == "running":
                break
            await asyncio.sleep(0.01)
        sup.apply([Command("pause", "good")])
        assert good.paused and sup.units["good"].state == "paused"
        sup.apply([Command("resume", "good")])
        assert not good.paused and sup.units["good"].state == "running"
        await sup.stop(timeout_s=2)
        return sup

    sup = asyncio.run(go())
    assert flaky.runs == 3 and sup.units["flaky"].restarts == 2  # two crashes, then it ran until stopped
    assert bad.runs == 3 and sup.units["bad"].state == "crashed"  # the third crash in the window: stopped
    assert "3 crashes" in sup.units["bad"].detail and "boom 3" in sup.units["bad"].detail
    assert good.runs == 1  # never restarted by the others' crashes
    assert sup.units["good"].state == sup.units["flaky"].state == "stopped"
    assert ("bad", sup.units["bad"].detail) in events


def test_a_strategy_error_is_a_crash_of_its_unit() -> None:
    from pmbot.runner.core import DecisionLog
    from pmbot.runner.units import StrategyCrashedError, SupervisedRunner
    from pmbot.strategies.base import Strategy, StrategyConfig
    from pmbot.strategies.events import TimerTick
    from pmbot.strategies.memview import MemoryView

    class Broken(Strategy[StrategyConfig]):
        name = "broken"

        def on_event(self, event: Any) -> None:
            raise ZeroDivisionError("x")

    view = MemoryView(clock=lambda: 1)
    runner = SupervisedRunner(Broken(view, {}), view, None, DecisionLog(None, mode="dry-run", run_id="r"),  # type: ignore[arg-type]
                              beat=lambda: None)  # fmt: skip

    async def go() -> None:
        await runner.start()
        with pytest.raises(StrategyCrashedError, match="ZeroDivisionError"):
            await runner.deliver(TimerTick(ts_ms=1))

    asyncio.run(go())


# ------------------------------------------------------------------------- control, status, streams


def test_pause_resume_and_status_from_another_terminal(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    app = App(clock=sim.now)
    units = [snipe("snipe-a", cur["token_ids"][0]), snipe("snipe-b", cur["token_ids"][0])]
    # one instance per connection: the market's two tokens take two shards of the hub
    host = Host(app, units, dry_run=True, options=opts(per_connection=1))
    seen: dict[str, Any] = {}

    async def eventually(cond: Any, what: str) -> None:
        for _ in range(500):
            if cond():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(what)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop=stop))
        await asyncio.wait_for(host.ready.wait(), 10)
        await eventually(lambda: units[0].runner is not None and units[0].runner.view.book(cur["token_ids"][1]),
                         "books on the second shard")  # fmt: skip
        code, out, err = await asyncio.to_thread(invoke, "pause", "snipe-a")
        assert code == 0, err
        await eventually(lambda: units[0].runner is not None and units[0].runner.strategy.paused, "the pause")
        assert not units[1].runner.strategy.paused  # type: ignore[union-attr]
        await asyncio.sleep(0.5)  # a status round
        code, out, err = await asyncio.to_thread(invoke, "status", "--json")
        assert code == 0, err
        seen["status"] = json.loads(out)
        code, out, err = await asyncio.to_thread(invoke, "status")
        seen["status_text"] = out
        code, out, err = await asyncio.to_thread(invoke, "pause", "nobody")
        seen["bad_pause"] = (code, err)
        code, _, err = await asyncio.to_thread(invoke, "resume", "snipe-a")
        assert code == 0, err
        await eventually(lambda: not units[0].runner.strategy.paused, "the resume")  # type: ignore[union-attr]
        await drive(sim, host, cur["end"] + 3)
        stop.set()
        await asyncio.wait_for(task, 15)

    asyncio.run(go())
    assert host.hub is not None and len(host.hub.shards) == 2
    procs = [p for p in seen["status"]["processes"] if p["alive"]]
    assert len(procs) == 1
    p = procs[0]
    assert p["command"] == "run-all" and p["mode"] == "dry-run" and p["uptime_s"] >= 0
    assert p["strategies"]["snipe-a"]["state"] == "paused" and p["strategies"]["snipe-b"]["state"] == "running"
    assert p["strategies"]["snipe-b"]["heartbeat_age_s"] is not None
    # the market shards, and the one RTDS connection both snipers' reference prices share (with its topic)
    assert set(p["streams"]) == {"market-0", "market-1", "rtds", "rtds:crypto_prices_chainlink"}
    assert all(p["streams"][s]["age_s"] is not None for s in ("market-0", "market-1"))
    assert p["kill_switch"]["tripped"] is False and p["open_orders"] == 0
    assert "snipe-a" in seen["status_text"] and "paused" in seen["status_text"] and "market-1" in seen["status_text"]
    code, err = seen["bad_pause"]
    assert code == 2 and "no running strategy named 'nobody'" in err
    # paused for a while, then resumed before the window: it still entered once
    assert units[0].totals().signals == 1 and units[1].totals().signals == 1
    app.close()


def test_prometheus_metrics_are_scraped_over_http(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from pmbot.metrics_http import MetricsExporter, serve

    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    app = App(clock=sim.now)
    exporter = MetricsExporter()
    server = serve(exporter, 0)
    host = Host(app, [snipe("snipe-a", cur["token_ids"][0])], dry_run=True, options=opts(metrics_interval_s=0.1),
                exporter=exporter)  # fmt: skip
    scraped: dict[str, Any] = {}

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop=stop))
        await asyncio.wait_for(host.ready.wait(), 10)
        await drive(sim, host, cur["end"] + 3)
        await asyncio.sleep(0.3)
        body = (await asyncio.to_thread(httpx.get, server.url)).text
        scraped["families"] = {f.name: f for f in text_string_to_metric_families(body)}
        stop.set()
        await asyncio.wait_for(task, 15)

    try:
        asyncio.run(go())
    finally:
        server.close()
        app.close()
    fams = scraped["families"]
    assert server.host == "127.0.0.1"
    intents = [s for s in fams["pmbot_intents"].samples if s.name == "pmbot_intents_total"]
    assert intents and intents[0].value == 1 and intents[0].labels == {"mode": "dry-run"}
    states = {
        (s.labels["strategy"], s.labels["pmbot_strategy_state"]): s.value for s in fams["pmbot_strategy_state"].samples
    }
    assert states[("snipe-a", "running")] == 1
    assert any(s.labels.get("stream") == "market-0" for s in fams["pmbot_stream_lag_seconds"].samples)
    assert any(
        s.name == "pmbot_intent_ack_seconds_count" and s.value == 1 for s in fams["pmbot_intent_ack_seconds"].samples
    )


# ----------------------------------------------------------------------------------- the command


def test_a_second_run_all_of_the_same_mode_refuses_with_one_line(
    wall_sim: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pmbot.config import load_settings
    from pmbot.executor.lock import user_lock_dir
    from pmbot.runner.host import RunAllLock

    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    settings = load_settings(env_file=None).settings
    held = RunAllLock(user_lock_dir(), "dry-run", "paper", settings.database_url)
    held.acquire()
    try:
        code, _out, err = invoke("run-all", "--strategies", "snipe", "--no-dashboard", "--duration", "5s")
    finally:
        held.release()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "another pmbot run-all (dry-run) is running (pid" in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--strategies", "bogus"), "no strategy kind or instance named bogus"),
        (("--log-format", "xml"), "--log-format must be text or json"),
        (("--duration", "0s"), "--duration must be longer than 0s"),
        (("--metrics-port", "70000"), "--metrics-port must be 0-65535"),
        (("--metrics-host", "::1"), "--metrics-host needs --metrics-port"),
        (("--strategies", ","), "--strategies needs at least one"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: tuple[str, ...], message: str, sim_env: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "data" / "pmbot.db"
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{db}")
    code, _out, err = invoke("run-all", "--no-dashboard", *args)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not db.parent.exists()  # no database, no logs/


def test_unknown_series_and_bad_instances_are_refused_before_anything_is_written(
    wall_sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "data" / "pmbot.db"
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{db}")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[strategies]]\nkind = "snipe"\nname = "eth"\nseries = ["eth-updown-1h"]\n')
    code, _, err = invoke("-c", str(cfg), "run-all", "--no-dashboard", "--duration", "3s")
    assert code == 2 and "strategy eth: unknown series eth-updown-1h" in err, err
    assert not db.parent.exists()
    cfg.write_text('[[strategies]]\nkind = "snipe"\nname = "a"\n[[strategies]]\nkind = "snipe"\nname = "a"\n')
    code, _, err = invoke("-c", str(cfg), "run-all", "--no-dashboard")
    assert code == 2 and "two instances named 'a'" in err, err
    cfg.write_text('[[strategies]]\nkind = "snipe"\nname = "a"\nwindow_s = 0\n')
    code, _, err = invoke("-c", str(cfg), "run-all", "--no-dashboard")
    assert code == 2 and "strategies[0] (a).window_s" in err, err
    cfg.write_text('[[strategies]]\nkind = "grid"\nname = "a"\n')
    code, _, err = invoke("-c", str(cfg), "run-all", "--no-dashboard")
    assert code == 2 and "strategies.0.kind" in err, err
    assert not db.parent.exists()


def test_strategies_flag_takes_kinds_names_and_the_seed_aliases() -> None:
    from pmbot.commands.run_all_cmd import select
    from pmbot.config import SnipeSettings, StrategyEntry

    entries: list[Any] = [(StrategyEntry(kind="snipe", name="fast"), SnipeSettings()),
                          (StrategyEntry(kind="copy", name="whale"), None)]  # fmt: skip
    assert [e.name for e, _ in select(entries, "sniper")] == ["fast"]
    assert [e.name for e, _ in select(entries, "copy_trader")] == ["whale"]
    assert [e.name for e, _ in select(entries, "snipe,copy")] == ["fast", "whale"]
    assert [e.name for e, _ in select(entries, "whale")] == ["whale"]
    assert len(select(entries, None)) == 2


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_the_command_end_to_end_logs_per_strategy_and_stores_final_metrics(
    wall_sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{data / 'pmbot.db'}")
    code, out, err = invoke("--debug", "run-all", "--strategies", "sniper", "--no-dashboard", "--duration", "2s",
                            "--log-format", "json", "--metrics-port", "0")  # fmt: skip
    assert code == 0, err
    assert "run-all dry-run run" in out and "snipe" in out
    logs = data / "logs"
    assert (logs / "orchestrator.log").is_file() and (logs / "sniper.log").is_file()
    assert oct(logs.stat().st_mode & 0o777) == "0o700"
    lines = [json.loads(x) for x in (logs / "orchestrator.log").read_text().splitlines()]
    assert any("strategies started" in x["message"] for x in lines)
    code, out, err = invoke("stats", "--history", "--json")
    assert code == 0, err
    history = json.loads(out)
    rows = history if isinstance(history, list) else history.get("history", [])
    assert any(r.get("kind") == "final" and r.get("mode") == "dry-run" for r in rows), out


def test_secrets_never_reach_a_log_the_database_or_stderr(
    wall_sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_executor import KEY

    data = tmp_path / "data"
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{data / 'pmbot.db'}")
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    monkeypatch.setenv("PMBOT_EXECUTOR__HEARTBEAT", "true")
    code, out, err = invoke("--debug", "run-all", "--live", "--yes", "--strategies", "snipe", "--no-dashboard",
                            "--duration", "3s", "--metrics-port", "0")  # fmt: skip
    assert code == 0, err
    assert (data / "logs" / "orchestrator.log").stat().st_size > 0
    code, status, _ = invoke("status", "--json")
    procs = json.loads(status)["processes"]
    assert procs and procs[0]["mode"] == "live" and procs[0]["state"] == "stopped"  # it really ran live
    creds = wall_sim.creds(__import__("pmbot.polymarket.signing", fromlist=["OrderSigner"]).OrderSigner(KEY).address)
    bare = KEY.removeprefix("0x")
    needles = {bare.lower(), bare.upper(), str(int(bare, 16)), creds["secret"], creds["passphrase"]}
    haystacks = {"stdout": out.encode(), "stderr": err.encode()}
    for p in _files_under(data) + _files_under(tmp_path / "home"):
        haystacks[str(p)] = p.read_bytes()
    assert len(haystacks) > 4
    for where, blob in haystacks.items():
        low = blob.lower()
        for needle in needles:
            assert needle.lower().encode() not in low, f"a secret in {where}"


def test_snipe_and_copy_in_one_process_share_the_executor_and_the_market_channel(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pmbot.commands.run_all_cmd import build_units

    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    app = App(clock=sim.now)
    copy = build_units(app, "copy")[0]  # the default copy instance: the seed's whale, dry-run
    units = [snipe("snipe", cur["token_ids"][0]), copy]
    host = Host(app, units, dry_run=True, options=opts(tick_s=0.05))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop=stop))
        await asyncio.wait_for(host.ready.wait(), 15)
        await asyncio.sleep(0.8)  # the streams subscribe
        while sim.now() < cur["end"] + 5:
            await asyncio.to_thread(sim.advance, 1)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 15)

    asyncio.run(go())
    s, c = units[0].totals(), units[1].totals()
    # the sniper entered once (its FOK may find the depth taken by a copy: one paper book for both)
    assert s.signals == 1 and s.intents == 1
    assert c.signals > 0 and c.intents > 0  # the whale's fills were mirrored
    orders = app.store.list_orders()
    wallets = {o.wallet for o in orders}
    assert len(wallets) == 1  # one executor for both
    assert "snipe" in {o.strategy for o in orders} and any(o.strategy.startswith("copy") for o in orders)
    assert host.hub is not None and len(host.hub.shards) == 1  # the copy feed's markets ride the same connection
    assert app.store.list_copy_decisions(mode="dry-run")
    app.close()


# --------------------------------------------------------------------------------------- market hub


class FakeMarketStream:
    """A MarketStream stand-in: records subscriptions; the test pushes events into it."""

    made: ClassVar[list[FakeMarketStream]] = []

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = list(tokens)
        self.subscribed: list[list[str]] = [list(tokens)]
        self.unsubscribed: list[list[str]] = []
        self.books: dict[str, Any] = {}
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False
        FakeMarketStream.made.append(self)

    async def subscribe(self, tokens: list[str]) -> None:
        self.tokens += tokens
        self.subscribed.append(list(tokens))

    async def unsubscribe(self, tokens: list[str]) -> None:
        self.tokens = [t for t in self.tokens if t not in tokens]
        self.unsubscribed.append(list(tokens))

    async def __aenter__(self) -> FakeMarketStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True

    def __aiter__(self) -> FakeMarketStream:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


def test_the_market_hub_shards_counts_references_and_routes_by_token() -> None:
    from pmbot.polymarket.models import LastTrade
    from pmbot.runner.hub import MarketHub
    from pmbot.store.models import Side

    FakeMarketStream.made = []

    def trade(token: str) -> LastTrade:
        return LastTrade(market="m", token_id=token, price=Decimal("0.5"), size=Decimal(1), side=Side.BUY,
                         timestamp_ms=1)  # fmt: skip

    async def go() -> dict[str, Any]:
        hub = MarketHub(FakeMarketStream, per_connection=2)  # type: ignore[arg-type]
        a = hub.consumer(["t1", "t2", "t3"])
        b = hub.consumer(["t3", "t4"])
        picky = hub.consumer(every_token=True, accept=lambda item, tokens: "t4" in tokens)
        await a.__aenter__()
        await b.__aenter__()
        await picky.__aenter__()
        shards = [s.tokens for s in FakeMarketStream.made]
        for t in ("t1", "t3", "t4"):
            shard = hub._token_shard[t]
            shard.stream.queue.put_nowait(trade(t))
        got_a, got_b = [], []
        for _ in range(2):
            got_a.append((await asyncio.wait_for(a.__anext__(), 2)).token_id)
        for _ in range(2):
            got_b.append((await asyncio.wait_for(b.__anext__(), 2)).token_id)
        got_picky = (await asyncio.wait_for(picky.__anext__(), 2)).token_id
        assert not picky._queue  # only what it accepts was queued for it
        await a.close()  # t1, t2 unsubscribed; t3 stays (b follows it)
        unsub = [u for s in FakeMarketStream.made for u in s.unsubscribed]
        await hub.close()
        return {"shards": shards, "a": got_a, "b": got_b, "unsub": unsub, "left": hub.token_ids, "picky": got_picky}

    r = asyncio.run(go())
    assert r["shards"] == [["t1", "t2"], ["t3", "t4"]]  # 2 per connection: two connections for 4 tokens
    assert sorted(r["a"]) == ["t1", "t3"] and sorted(r["b"]) == ["t3", "t4"]  # t3 fanned out to both
    assert sorted(t for u in r["unsub"] for t in u) == ["t1", "t2"]
    assert set(r["left"]) == {"t3", "t4"}
    assert r["picky"] == "t4"


def test_a_copy_strategy_whose_code_raises_is_restarted_then_stopped_and_the_sniper_runs_on(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pmbot.commands.run_all_cmd import build_units
    from pmbot.strategies.copy import CopyStrategy
    from pmbot.strategies.events import TargetFill

    def broken(self: Any, event: Any) -> None:
        if isinstance(event, TargetFill):
            raise RuntimeError("copy bug")

    monkeypatch.setattr(CopyStrategy, "on_event", broken)
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    app = App(clock=sim.now)
    units = [snipe("snipe", cur["token_ids"][0]), build_units(app, "copy")[0]]
    host = Host(app, units, dry_run=True, options=opts(tick_s=0.05, policy=SupervisorPolicy(
        max_crashes=2, window_s=600, backoff_s=0.05, backoff_max_s=0.1)))  # fmt: skip

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop=stop))
        await asyncio.wait_for(host.ready.wait(), 15)
        await asyncio.sleep(0.8)
        assert host.supervisor is not None
        while sim.now() < cur["end"] + 5:
            await asyncio.to_thread(sim.advance, 1)
            await asyncio.sleep(0.05)
        # A crashed copy unit stops its feed before it is restarted, and a loaded machine may take a while
        # to close the feed's sources: wait for the supervisor's verdict, not a fixed time.
        deadline = asyncio.get_running_loop().time() + 30
        while host.supervisor.units["copy"].state != "crashed" and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 15)

    asyncio.run(go())
    assert host.supervisor is not None
    st = host.supervisor.units["copy"]
    assert st.state == "crashed" and st.restarts == 1, (st.state, st.restarts, st.detail)
    assert "2 crashes" in st.detail and "copy bug" in st.detail
    assert host.supervisor.units["snipe"].restarts == 0
    assert units[0].totals().signals == 1  # the sniper entered as if nothing happened
    app.close()
