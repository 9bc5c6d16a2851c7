"""Which asyncio event loop the trading commands run on: uvloop where it is installed, else asyncio's own.

Why uvloop. The order path crosses the event loop several times per order (the group-commit turn, the
socket write, the answer's read, the futures that wake the caller); uvloop (libuv, in Cython) does those
steps in C. Measured on this machine (bench/bench_executor.py, parts interleaved; 2026-12-01, six runs):
intent → POST received p50 faster in four runs (−0.01 to −0.09 ms) and slower in two (+0.05, +0.11), so
small and within this VM's noise for the executor; where the loop carries more of the work it shows
more: run-all event → decision p99 1.48 ms against 1.83 ms on asyncio's loop.

`[event_loop]` / PMBOT_EVENT_LOOP: "auto" (uvloop when importable: not on Windows), "uvloop" (an error
if it is missing), "asyncio" (the standard loop, e.g. to rule the loop out when something misbehaves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, get_args

from pmbot.errors import ConfigError

EventLoopName = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def loop_factory(name: str = "auto") -> LoopFactory | None:
    """The factory for `asyncio.Runner(loop_factory=...)`; None for asyncio's default loop."""
    if name not in get_args(EventLoopName):
        raise ConfigError(f"unknown event loop {name!r}", hint="auto, uvloop or asyncio (PMBOT_EVENT_LOOP)")
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ConfigError(
                "event_loop is uvloop but uvloop is not installed", hint="install it, or set PMBOT_EVENT_LOOP=auto"
            ) from None
        return None
    return uvloop.new_event_loop


def loop_for(main: Coroutine[Any, Any, Any], name: str) -> LoopFactory | None:
    """`loop_factory(name)`; when it is refused (uvloop asked for and missing, an unknown name), `main` is
    closed first: it never ran, and Python would otherwise follow the one-line error with "coroutine …
    was never awaited"."""
    try:
        return loop_factory(name)
    except BaseException:
        main.close()
        raise


def run(main: Coroutine[Any, Any, T], name: str = "auto") -> T:
    """`asyncio.run(main)` on the named loop."""
    with asyncio.Runner(loop_factory=loop_for(main, name)) as runner:
        return runner.run(main)


def loop_name(factory: LoopFactory | None) -> str:
    """For status lines and benchmarks: "uvloop" or "asyncio"."""
    return "asyncio" if factory is None else factory.__module__.split(".")[0]


__all__ = ["EventLoopName", "LoopFactory", "loop_factory", "loop_for", "loop_name", "run"]
