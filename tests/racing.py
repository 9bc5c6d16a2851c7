"""Run functions in threads that switch as often as the interpreter can: between any two bytecodes' worth
of calls, so a check-then-act race on shared state shows up in a test instead of once in a million orders."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable


def race(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
