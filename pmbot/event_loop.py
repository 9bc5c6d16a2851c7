"""Which asyncio event loop the trading commands run on: uvloop where it is installed, else asyncio's own.

Why uvloop. The order path crosses the event loop several times per order (the group-commit turn, the
socket write, the answer's read, the futures that wake the caller), and every Python-level step of the
standard loop runs with caches that the venue's process and the disk's wait have cooled. uvloop (libuv,
written in Cython) does those steps in C. Measured on this machine, same run, parts interleaved: intent
→ POST received p50 −8 to −10 % for the executor, every stage a little faster (bench/bench_executor.py
reports it; the SDK peer is measured on asyncio's loop, as its own users run it).

`[event_loop]` / PMBOT_EVENT_LOOP: "auto" (uvloop when importable: not on Windows), "uvloop" (an error
if it is missing), "asyncio" (the standard loop, e.g. to rule the loop out when something misbehaves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from pmbot.errors import ConfigError

EventLoopName = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(name: EventLoopName = "auto") -> LoopFactory | None:
    """The factory for `asyncio.Runner(loop_factory=...)`; None for asyncio's default loop."""
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


def loop_name(factory: LoopFactory | None) -> str:
    """For status lines and benchmarks: "uvloop" or "asyncio"."""
    return "asyncio" if factory is None else factory.__module__.split(".")[0]


__all__ = ["EventLoopName", "LoopFactory", "loop_factory", "loop_name"]
