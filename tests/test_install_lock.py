"""The environment the tests run in is exactly uv.lock, and uv.lock matches pyproject.toml.

`make install` builds .venv with `uv sync --locked`; these tests fail when someone pip-installs or
upgrades a package by hand, or edits the dependencies without `make lock`. They read the files
themselves (no uv needed), so they also hold on a machine where uv lives only in .uv/.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "uv.lock"
PYPROJECT = ROOT / "pyproject.toml"
EXTRAS = ("dev",)  # what `make install` syncs
FIX = "run `make install` (or `make lock` after editing pyproject.toml)"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Lock:
    packages: dict[str, list[dict[str, Any]]]
    root: dict[str, Any]


def _load_lock() -> Lock:
    data = tomllib.loads(LOCK.read_text())
    packages: dict[str, list[dict[str, Any]]] = {}
    for p in data["package"]:
        packages.setdefault(_norm(p["name"]), []).append(p)
    (root,) = packages["pmbot"]
    return Lock(packages, root)


def _applies(dep: dict[str, Any]) -> bool:
    marker = dep.get("marker")
    return marker is None or Marker(marker).evaluate()


def _pick(lock: Lock, dep: dict[str, Any]) -> dict[str, Any]:
    candidates = lock.packages[_norm(dep["name"])]
    if "version" in dep:  # the lock forked this package by marker; the edge says which version
        candidates = [p for p in candidates if p["version"] == dep["version"]]
    assert len(candidates) == 1, f"uv.lock: cannot tell which {dep['name']} applies"
    return candidates[0]


def required_here(lock: Lock) -> dict[str, str]:
    """Name → locked version of every package pmbot[dev] needs on this interpreter and platform."""
    need: dict[str, str] = {}
    seen: set[tuple[str, str, str]] = set()
    stack: list[tuple[dict[str, Any], tuple[str, ...]]] = [(lock.root, EXTRAS)]
    while stack:
        pkg, extras = stack.pop()
        name = _norm(pkg["name"])
        need[name] = pkg["version"]
        edges = list(pkg.get("dependencies", []))
        for extra in extras:
            edges += pkg.get("optional-dependencies", {}).get(extra, [])
        for dep in edges:
            if not _applies(dep):
                continue
            target = _pick(lock, dep)
            for extra in ("", *dep.get("extra", [])):
                key = (_norm(target["name"]), target["version"], extra)
                if key not in seen:
                    seen.add(key)
                    stack.append((target, (extra,) if extra else ()))
    return need


def installed() -> dict[str, str]:
    """Name → version of every distribution in this interpreter's environment (the venv)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions(path=[p for p in sys.path if p.endswith("site-packages")]):
        found[_norm(dist.metadata["Name"])] = dist.version
    return found


def test_installed_set_is_exactly_the_lock() -> None:
    need = required_here(_load_lock())
    have = installed()
    missing = sorted(f"{n}=={v}" for n, v in need.items() if n not in have)
    wrong = sorted(f"{n}: installed {have[n]}, locked {v}" for n, v in need.items() if n in have and have[n] != v)
    extra = sorted(f"{n}=={v}" for n, v in have.items() if n not in need)
    assert (missing, wrong, extra) == ([], [], []), f"the environment differs from uv.lock; {FIX}"


def test_installed_requirements_are_satisfied() -> None:
    """What `pip check` does: every installed package's own requirements hold, e.g. polymarket-client's
    websockets < 16 and eth-abi < 6 against what pmbot's other dependencies pull in."""
    have = installed()
    broken = []
    for dist in metadata.distributions(path=[p for p in sys.path if p.endswith("site-packages")]):
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra nobody asked for, or another platform
            version = have.get(_norm(req.name))
            if version is None or not req.specifier.contains(version, prereleases=True):
                broken.append(f"{dist.metadata['Name']} needs {req}, installed: {version}")
    assert broken == []


def test_polymarket_client_imports_with_the_locked_websockets() -> None:
    """The dev reference SDK loads whole on the locked set (its WebSocket client included)."""
    import importlib
    import pkgutil

    import polymarket
    import websockets

    modules = [m.name for m in pkgutil.walk_packages(polymarket.__path__, "polymarket.")]
    for name in modules:
        importlib.import_module(name)
    assert len(modules) > 50
    assert SpecifierSet("<16").contains(websockets.__version__)


def _requirements(reqs: list[str], extra: str | None) -> set[tuple[str, str, str]]:
    out = set()
    for text in reqs:
        r = Requirement(text)
        # the requirement's own marker (e.g. uvloop's platforms), then the extra's, as uv writes them
        marker = " and ".join(([str(r.marker)] if r.marker else []) + ([f"extra == '{extra}'"] if extra else []))
        marker = str(Marker(marker)) if marker else ""  # one quoting for both sides
        out.add((_norm(r.name), str(SpecifierSet(str(r.specifier))), marker))
    return out


def test_lock_matches_pyproject() -> None:
    """The lock was resolved from the dependencies pyproject.toml declares now (uv lock --check, offline)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    declared = _requirements(project["dependencies"], None)
    for extra, reqs in project.get("optional-dependencies", {}).items():
        declared |= _requirements(reqs, extra)
    locked = {
        (
            _norm(r["name"]),
            str(SpecifierSet(r.get("specifier", ""))),
            str(Marker(r["marker"])) if r.get("marker") else "",
        )
        for r in _load_lock().root["metadata"]["requires-dist"]
    }
    assert declared == locked, f"uv.lock is stale: run `make lock`\nonly in pyproject: {declared - locked}\n" + (
        f"only in uv.lock: {locked - declared}"
    )


@pytest.mark.parametrize(
    ("name", "below"),
    [
        ("typer", "0.30"),
        ("click", "9"),
        ("websockets", "16"),  # polymarket-client (dev) pins < 16; pmbot's streams are tested on 15.x here
        ("web3", "9"),
        ("pydantic", "3"),
        ("pydantic-settings", "3"),
        ("redis", "9"),
    ],
)
def test_majors_we_depend_on_are_bounded(name: str, below: str) -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    (spec,) = [Requirement(r).specifier for r in reqs if _norm(Requirement(r).name) == name]
    assert any(s.operator == "<" for s in spec), f"{name} needs an upper bound on its major"
    (locked,) = _load_lock().packages[name]
    assert SpecifierSet(f"<{below}").contains(locked["version"])


def test_lock_walk_sees_markers_and_extras() -> None:
    """The walk above is only worth something if it follows extras and drops other platforms' packages."""
    lock = _load_lock()
    need = required_here(lock)
    assert {"polymarket-client", "pytest", "h2"} <= need.keys()  # dev extra; httpx[http2] via polymarket-client
    assert "pywin32" in lock.packages and "pywin32" not in need  # Windows only
    assert "pmbot" in need


def test_building_pmbot_warns_nothing(tmp_path: Path) -> None:
    """`make install` builds pmbot with setuptools: no wall of deprecation warnings (SPDX `license`, …).

    Runs the locked setuptools' own metadata build on a copy of the project files with every warning
    turned into an error.
    """
    (tmp_path / "pmbot").mkdir()
    (tmp_path / "pmbot" / "__init__.py").write_text("")
    for name in ("pyproject.toml", "README.md"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "out").mkdir()
    code = "from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel('out'))"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deprecat" not in (done.stdout + done.stderr).lower()
    meta = (tmp_path / "out" / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: MIT" in meta
