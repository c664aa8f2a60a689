"""A throwaway PostgreSQL server for the test session, and a fresh database per test.

``postgres_url`` starts one server per session: a data directory under the system temp dir,
TCP on 127.0.0.1 and a free port only (no unix socket), trust auth, durability off for speed.
When the process is root it runs the server binaries as the ``postgres`` user (PostgreSQL
refuses to run as root). ``postgres_db`` clones ``template0`` into a new database for each test
and drops it afterwards.

If PostgreSQL cannot start, the tests that need it fail with a one-line reason. The one
exception: outside CI (``CI`` unset) with no PostgreSQL installed, they skip and say how to
install it. See docs/testing.md.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

SUPERUSER = "postgres"
INSTALL_HINT = "apt-get install -y postgresql"
LOG_ERROR = re.compile(r"\b(?:FATAL|PANIC|ERROR|error):.*")
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
#: Only where to listen, durability as PostgreSQL ships it (benchmarks: bench_scale.py --postgres).
DURABLE_SETTINGS = {
    key: SERVER_SETTINGS[key] for key in ("listen_addresses", "unix_socket_directories")
}


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def find_bindir() -> Path | None:
    """Debian's PostgreSQL 15 first, then ``pg_config --bindir``, PATH, other Debian versions."""
    candidates = [Path("/usr/lib/postgresql/15/bin")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    debian = Path("/usr/lib/postgresql").glob("*/bin")  # "15", "17", "9.6": newest first
    candidates += sorted(
        debian,
        key=lambda b: [int(n) for n in b.parent.name.split(".") if n.isdigit()],
        reverse=True,
    )
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerError(Exception):
    """PostgreSQL did not start: a one-line message, and the tool's full output."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class PostgresServer:
    """One PostgreSQL cluster in a temp dir: ``start()``, ``url``, ``stop()``."""

    def __init__(self, bindir: Path, settings: Mapping[str, str] = SERVER_SETTINGS) -> None:
        self.bindir = bindir
        self.settings = settings
        self.root = Path(tempfile.mkdtemp(prefix="klingbridge-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.prefix: list[str] = []  # how to run the server binaries

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*self.prefix, str(self.bindir / tool), *args]
        return subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)

    def start(self, attempts: int = 3) -> None:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: hand over to postgres
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerError("running as root and there is no 'postgres' user") from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        init = self._run(
            "initdb",
            *("-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8", "--no-locale"),
            *("--auth=trust", "--no-sync", "--no-instructions"),
        )
        if init.returncode != 0:
            output = init.stderr or init.stdout
            raise ServerError(f"initdb failed: {last_line(output)}", output)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in self.settings.items())
        for _ in range(attempts):  # another process may take the free port before we bind it
            self.port = free_port()
            started = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                                "-l", str(self.log), "-o", f"-p {self.port}")  # fmt: skip
            if started.returncode == 0:
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "could not bind" not in log:
                break
        output = log or started.stderr
        raise ServerError(f"pg_ctl start failed: {last_line(output)}", output)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))
        shutil.rmtree(self.root, ignore_errors=True)


def last_line(text: str) -> str:
    """The most telling line of a tool's output: the last error (without the log's timestamp
    prefix), else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [found[0] for line in lines if (found := LOG_ERROR.search(line))]
    return (errors or lines or ["(no output)"])[-1]


def with_database(url: str, name: str) -> str:
    return f"{url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/postgres`` of a server living for the session."""
    bindir = find_bindir()
    if bindir is None:
        reason = f"PostgreSQL binaries (initdb, pg_ctl) not found: {INSTALL_HINT}"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bindir)
    failure = ""
    try:
        server.start()
    except (ServerError, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        sys.stderr.write(getattr(exc, "output", ""))  # the whole log, under "Captured stderr"
        failure = f"PostgreSQL did not start: {exc}"
    if failure:
        pytest.fail(failure, pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


def create_database(server_url: str) -> str:
    """A new empty database (a copy of ``template0``); returns its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return with_database(server_url, name)


def drop_database(server_url: str, database_url: str) -> None:
    """Drop the database, closing any connection a test left open."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """The URL of a fresh, empty database for this test, dropped afterwards."""
    database_url = create_database(postgres_url)
    try:
        yield database_url
    finally:
        drop_database(postgres_url, database_url)
