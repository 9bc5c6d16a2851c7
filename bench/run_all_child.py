"""The process `bench_run_all` measures: `pmbot run-all`'s host (pmbot.runner.host) with a sniper over every
market of the sim's current window and the copier of its whale, dry-run, on the venue's clock. Prints one
JSON line: start → first subscription, event → decision samples (from the socket read of the event's frame:
see bench_run_all), CPU time while following, peak RSS, shutdown time, what it followed.

    python -m bench.run_all_child --duration 20     (PMBOT_* point at the sim; set by the benchmark)
"""

from __future__ import annotations

import time

T0 = time.time()  # before the imports: "start" is the process start

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402


async def run(duration_s: float) -> dict[str, Any]:
    from pmbot.app import App
    from pmbot.commands.run_all_cmd import build_units
    from pmbot.runner.host import Host, HostOptions
    from pmbot.runner.units import SnipeUnit
    from pmbot.strategies.snipe import SnipeStrategy

    app = App()
    copy = build_units(app, "copy")[0]
    snipe = SnipeUnit("snipe", SnipeStrategy.validate_config({}), series=("btc-updown-15m",), max_markets=200)
    host = Host(app, [snipe, copy], dry_run=True, options=HostOptions(measure=True, snapshot_interval_s=3600))
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop=stop))
    await asyncio.wait_for(host.ready.wait(), 60)
    t_ready, cpu_ready = time.monotonic(), _cpu_s()
    await asyncio.sleep(duration_s)
    followed_s, cpu_s = time.monotonic() - t_ready, _cpu_s() - cpu_ready
    assert host.hub is not None
    followed, shards = len(host.hub.token_ids), len(host.hub.shards)
    armed = len(snipe.feed.armed) if snipe.feed is not None else 0
    t_stop = time.monotonic()
    stop.set()
    await task
    shutdown_s = time.monotonic() - t_stop
    samples = [n for u in (snipe, copy) for r in _all_runners(u) for n in r.decide_ns]
    hub = host.hub
    assert hub is not None
    out = {
        "first_subscription_s": None if hub.first_subscription_ms is None else hub.first_subscription_ms / 1000 - T0,
        "decide_ns": samples,
        "handle_ns": [n for u in (snipe, copy) for r in _all_runners(u) for n in r.handle_ns],
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": cpu_s,
        "followed_s": followed_s,
        "shutdown_s": shutdown_s,
        "shards": shards,
        "tokens": followed,
        "hub_events": hub.events,
        "snipe_markets": armed,
        "copy": copy.metrics(),
    }
    app.close()
    return out


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


_kept: dict[int, list[Any]] = {}


def _all_runners(unit: Any) -> list[Any]:
    return _kept.get(id(unit), []) + list(unit.runners)


def main() -> int:
    from pmbot.runner import units

    # keep each run's runners (the unit drops them when it stops) so that their samples can be read
    orig = units._UnitBase._finished

    def keep(self: Any) -> None:
        _kept.setdefault(id(self), []).extend(self.runners)
        orig(self)

    units._UnitBase._finished = keep  # type: ignore[method-assign]
    from bench.harness import run_pmbot  # run as `-m bench.run_all_child`

    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=20.0)
    args = p.parse_args()
    print(json.dumps(run_pmbot(run(args.duration)), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
