"""Access to the recorded Polymarket payloads in ../shared/polymarket-samples (real wire data)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_CANDIDATES = [
    Path(os.environ.get("PMBOT_SAMPLES_DIR", "")),
    Path(__file__).resolve().parents[2] / "shared" / "polymarket-samples",
    Path("/work/shared/polymarket-samples"),
]


def samples_dir() -> Path:
    for path in _CANDIDATES:
        if str(path) not in ("", ".") and (path / "README.md").is_file():
            return path
    pytest.skip("the recorded samples (../shared/polymarket-samples) are not on this machine")


def load(name: str) -> Any:
    return json.loads((samples_dir() / name).read_text())
