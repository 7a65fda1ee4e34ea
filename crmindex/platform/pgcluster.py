"""A throwaway local PostgreSQL cluster (the embedded default for the demo, tests and benchmarks).

PostgreSQL refuses to run as root, so when we are root the server runs as the ``postgres`` OS user
(``runuser``); we connect over a Unix socket in a directory we choose, as the database superuser
``postgres`` with trust authentication (the socket directory is private to this run).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SUPPORTED_MAJORS = (17, 16, 15)


class ClusterError(RuntimeError):
    """The local PostgreSQL cluster could not be found, created or started."""


def find_bindir(require_cron: bool = True) -> Path:
    """The bin directory of the newest supported PostgreSQL server installed (15-17).

    ``CRMINDEX_PG_BINDIR`` overrides the search.
    """
    override = os.environ.get("CRMINDEX_PG_BINDIR")
    if override:
        path = Path(override)
        if not (path / "postgres").exists():
            raise ClusterError(f"CRMINDEX_PG_BINDIR={override} holds no postgres binary")
        return path
    for major in SUPPORTED_MAJORS:
        bindir = Path(f"/usr/lib/postgresql/{major}/bin")
        if (bindir / "postgres").exists():
            if require_cron and not Path(f"/usr/lib/postgresql/{major}/lib/pg_cron.so").exists():
                raise ClusterError(
                    f"PostgreSQL {major} is installed without pg_cron: install postgresql-{major}-cron "
                    "(`make bootstrap` does it when run as root)"
                )
            return bindir
    raise ClusterError(
        "no PostgreSQL server 15-17 found under /usr/lib/postgresql: install one "
        "(`make bootstrap` does it when run as root)"
    )


def _run_as() -> list[str]:
    """The command prefix that runs a server binary as a non-root user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ClusterError("running as root needs a `postgres` OS user to run the server") from exc
    return ["runuser", "-u", "postgres", "--"]


def _free_port(socket_dir: Path) -> int:
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randint(20000, 59999)
        if not (socket_dir / f".s.PGSQL.{port}").exists():
            return port
    raise ClusterError("no free port for the local cluster")


@dataclass
class LocalCluster:
    """Creates, starts and removes a private PostgreSQL cluster.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    base_dir: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    cron_database: str = "crmindex"
    fast: bool = True  # fsync off etc.: for tests and the demo, never for data you keep
    keep: bool = False
    port: int = 0
    bindir: Path = field(init=False)
    _owns_dir: bool = field(init=False, default=False)
    _started: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.bindir = find_bindir()

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "sock"

    @property
    def major(self) -> int:
        return int(self.bindir.parent.name)

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}&port={self.port}"

    def _server_settings(self) -> dict[str, str]:
        base = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'pg_cron'",
            "cron.database_name": f"'{self.cron_database}'",
            # pg_cron's launcher connects with libpq: over our socket, since nothing listens on TCP
            "cron.host": f"'{self.socket_dir}'",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "work_mem": "16MB",
            "maintenance_work_mem": "256MB",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
        }
        if self.fast:
            base.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
        base.update(self.settings)
        return base

    def start(self) -> LocalCluster:
        if self._started:
            return self
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="crmindex-pg-"))
            self._owns_dir = True
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        prefix = _run_as()
        if prefix:
            for path in (self.base_dir, self.socket_dir):
                shutil.chown(path, user="postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    *prefix,
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                "initdb",
            )
            conf = "\n".join(f"{k} = {v}" for k, v in self._server_settings().items())
            with (self.data_dir / "postgresql.auto.conf").open("a") as fh:
                fh.write("\n" + conf + "\n")
        if not self.port:
            self.port = _free_port(self.socket_dir)
        self._pg_ctl_start(prefix)
        self._started = True
        return self

    def _pg_ctl_start(self, prefix: list[str]) -> None:
        """Start the server on ``self.port`` and wait (up to 60 s) until it accepts connections."""
        log = str(self.base_dir / "server.log") if self.base_dir else "/dev/null"
        self._run(
            [*prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-o", f"-p {self.port}", "-l", log,
             "-w", "-t", "60", "start"],
            "pg_ctl start",
        )  # fmt: skip

    def restart(self) -> None:
        """Stop (fast) and start again on the same port: for tests of reconnecting clients."""
        prefix = _run_as()
        self._run(
            [*prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            "pg_ctl stop",
        )
        self._pg_ctl_start(prefix)

    def stop(self) -> None:
        if self._started:
            with contextlib.suppress(ClusterError):
                self._run(
                    [
                        *_run_as(),
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    "pg_ctl stop",
                )
            self._started = False
        if self._owns_dir and not self.keep and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _run(self, cmd: Sequence[str], what: str) -> None:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log = ""
            if self.base_dir is not None and (self.base_dir / "server.log").exists():
                log = (self.base_dir / "server.log").read_text(errors="replace")[-2000:]
            raise ClusterError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()}\n{log}".strip())

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
