"""Real service processes for tests (redis-server, PostgreSQL), on 127.0.0.1 only.

A missing server binary skips the tests that need it, unless PMBOT_REQUIRE_SERVICES=1 (CI),
where it fails them: CI must never go green by skipping the real parts.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def require_services() -> bool:
    return os.environ.get("PMBOT_REQUIRE_SERVICES", "") == "1"


def missing(what: str, hint: str) -> None:
    msg = f"{what} not available ({hint})"
    if require_services():
        pytest.fail(msg + " and PMBOT_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server", "`make test` installs Debian's redis-server when run as root")
        self.binary = binary
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.port = self.port or free_port()
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- PostgreSQL -------------------------------------------------------------------------------------
# Debian's postgresql package (15 here). initdb and postgres refuse to run as root, so they run as the
# `postgres` user, in a data directory under /tmp (pytest's own tmp dirs are 0700 and untraversable).


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    binary = shutil.which("postgres")
    return Path(binary).parent if binary else None


AUTH_USER, AUTH_PASSWORD = "pmbot_auth", "right-password"


class PostgresServer:
    """A throw-away PostgreSQL cluster on a free 127.0.0.1 port; `url()` names a database in it."""

    def __init__(self, *, durable: bool = False) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            missing("PostgreSQL", "`make test` installs Debian's postgresql when run as root")
        self.bindir = bindir
        self.port = 0
        self.datadir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        # Tests check behaviour, not power-cut durability: without fsync a test database costs milliseconds.
        # The benchmarks start a durable one (fsync on, synchronous_commit on) and say so.
        self.durable = durable
        self._user: dict[str, str] = {}
        if os.geteuid() == 0:
            self._user = {"user": "postgres", "group": "postgres"}

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="pmbot-pg-", dir="/tmp"))
        self.datadir = root / "data"
        if self._user:
            shutil.chown(root, "postgres", "postgres")
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-instructions",
                "--no-sync",
                "--locale=C",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **self._user,  # type: ignore[call-overload]
        )
        # One role that must give a password (the rest trust 127.0.0.1): the wrong-credentials tests.
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(f"host all {AUTH_USER} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        self.port = free_port()
        # Durable (fsync, synchronous_commit on) as in production: the benchmarks state what they measure.
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(root),
                "-c",
                "max_connections=100",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "max_wal_size=2GB",
                "-c",
                "logging_collector=off",
                *([] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self._user,  # type: ignore[call-overload]
        )
        deadline = time.monotonic() + 30
        import psycopg

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with psycopg.connect(self.url(), connect_timeout=1, autocommit=True) as conn:
                    conn.execute(f"CREATE ROLE {AUTH_USER} LOGIN SUPERUSER PASSWORD '{AUTH_PASSWORD}'".encode())
                return
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start on port {self.port}")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None:
            # A throw-away cluster: "immediate" shutdown (no final checkpoint) unless it is a durable one.
            self.proc.send_signal(signal.SIGINT if self.durable else signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.datadir is not None:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)
            self.datadir = None


def pg_srv_truncate(url: str) -> None:
    """Empty every pmbot table of a migrated database (the schema and its partitions stay)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relkind IN ('r', 'p') AND NOT relispartition AND relname <> 'schema_migrations'"
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY".encode())
        conn.execute("ALTER SEQUENCE trades_id_seq RESTART")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
