"""Recorded scenarios: JSONL, one header line then one event per line.

    {"format":"pmbot-scenario","version":1,"created_ms":…,"markets":[<Gamma market objects, raw>]}
    {"ts": <epoch ms>, "source": "market"|"rtds"|"user"|"chain", "data": <raw wire message>}

`pmbot record` writes with `ScenarioWriter`; `pmbot sim serve --scenario FILE` reads with
`read_scenario` (malformed input → InputError naming the line).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pmbot.errors import InputError
from pmbot.sim.wire import dumps

FORMAT = "pmbot-scenario"
VERSION = 1
SOURCES = ("market", "rtds", "user", "chain")


@dataclass(frozen=True)
class RecordedEvent:
    ts: int  # epoch ms
    source: str
    data: Any  # the message exactly as received (dict, or list for batched frames)


@dataclass
class RecordedScenario:
    created_ms: int
    markets: list[dict[str, Any]]
    events: list[RecordedEvent] = field(default_factory=list)


def _line(obj: Any) -> str:
    return dumps(obj) + "\n"


class ScenarioWriter:
    """Append-only writer. Call `header(markets)` once, then `write(ts, source, data)` per message."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._has_header = False

    def header(self, markets: list[dict[str, Any]], created_ms: int | None = None) -> None:
        if self._has_header:
            raise ValueError("header already written")
        created = created_ms if created_ms is not None else time.time_ns() // 1_000_000
        self._write({"format": FORMAT, "version": VERSION, "created_ms": created, "markets": markets})
        self._has_header = True

    def write(self, ts: int, source: str, data: Any) -> None:
        if not self._has_header:
            raise ValueError("write the header first")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}")
        self._write({"ts": int(ts), "source": source, "data": data})

    def _write(self, obj: Any) -> None:
        if self._fh is None:
            raise ValueError("writer is closed")
        self._fh.write(_line(obj))

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ScenarioWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_scenario(path: str | Path) -> RecordedScenario:
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read scenario {p}: {e.strerror}") from None
    with fh:
        scenario: RecordedScenario | None = None
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                raise InputError(f"{p}:{n}: not valid JSON") from None
            if not isinstance(obj, dict):
                raise InputError(f"{p}:{n}: expected a JSON object")
            if scenario is None:
                if obj.get("format") != FORMAT:
                    raise InputError(f'{p}:{n}: not a pmbot scenario (missing "format": "{FORMAT}" header)')
                if obj.get("version") != VERSION:
                    raise InputError(f"{p}:{n}: unsupported scenario version {obj.get('version')!r}")
                markets = obj.get("markets")
                if not isinstance(markets, list) or not all(isinstance(m, dict) for m in markets):
                    raise InputError(f'{p}:{n}: header "markets" must be a list of Gamma market objects')
                for m in markets:
                    if "conditionId" not in m or "clobTokenIds" not in m:
                        raise InputError(f"{p}:{n}: header market lacks conditionId/clobTokenIds")
                created = obj.get("created_ms", 0)
                if not isinstance(created, int):
                    raise InputError(f"{p}:{n}: created_ms must be an integer")
                scenario = RecordedScenario(created_ms=created, markets=markets)
                continue
            ts, source = obj.get("ts"), obj.get("source")
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise InputError(f'{p}:{n}: "ts" must be an integer (epoch ms)')
            if source not in SOURCES:
                raise InputError(f'{p}:{n}: "source" must be one of {", ".join(SOURCES)}')
            if "data" not in obj:
                raise InputError(f'{p}:{n}: missing "data"')
            scenario.events.append(RecordedEvent(ts, source, obj["data"]))
    if scenario is None:
        raise InputError(f"{p}: empty scenario file")
    # Recorders see some streams slightly out of order; replay in time order, stable otherwise.
    scenario.events.sort(key=lambda e: e.ts)
    return scenario
