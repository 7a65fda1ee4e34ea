"""Shared helpers for the benchmark scripts: a cluster or DATABASE_URL, results JSON, percentiles.

Honest figures (issue 18 item 7): every script records the load average before and after its run and the CPU
count beside its figures (:class:`LoadWatch`), and :func:`write_results` refuses to write them (exit status 3,
a message on stderr) when the 1-minute load average before or after the run exceeded the CPU count, unless
the run was started with ``--allow-busy`` (or ``CRMINDEX_BENCH_ALLOW_BUSY=1``), in which case the JSON says
``"busy_override": true``. A busy reading at the end is taken again for up to ``$CRMINDEX_BENCH_SETTLE`` seconds
while the run's own load dies down (:meth:`LoadWatch.finish`). Use in a script::

    ap = argparse.ArgumentParser(...)
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)          # refuses at once if the machine is already busy
    ...
    write_results("name", figures, load)  # records "load" and refuses if it got busy
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from crmindex.platform.migrate import migrate
from crmindex.platform.pgcluster import LocalCluster

RESULTS = Path(__file__).resolve().parent / "results"
BIG_ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")


def org_uuid(i: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{i + 1:012d}")


def _migrate(dsn: str) -> None:
    """Apply the migrations (from $CRMINDEX_MIGRATIONS_DIR when set: development against another folder)."""
    folder = os.environ.get("CRMINDEX_MIGRATIONS_DIR")
    if folder:
        migrate(dsn, directory=Path(folder))
    else:
        migrate(dsn)


@contextlib.contextmanager
def bench_database(name: str = "crmindex_bench", settings: dict[str, str] | None = None) -> Iterator[str]:
    """A fresh migrated database: on $DATABASE_URL's server if set, else on a throwaway local cluster."""
    external = os.environ.get("DATABASE_URL")
    if external:
        with psycopg.connect(external, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        dsn = make_conninfo(external, dbname=name)
        _migrate(dsn)
        yield dsn
        return
    defaults = {"shared_buffers": "1GB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
    defaults.update(settings or {})
    with LocalCluster(fast=False, settings=defaults) as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        dsn = cluster.dsn(name)
        _migrate(dsn)
        yield dsn


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


ALLOW_BUSY_ENV = "CRMINDEX_BENCH_ALLOW_BUSY"
WAIT_QUIET_ENV = "CRMINDEX_BENCH_WAIT_QUIET"
SETTLE_ENV = "CRMINDEX_BENCH_SETTLE"
DEFAULT_SETTLE_S = 120.0
BUSY_EXIT = 3


@dataclass(frozen=True)
class GuardDecision:
    """Whether results may be written, and why not."""

    write: bool
    busy: bool
    busy_override: bool
    reason: str


def guard_decision(
    before_1m: float, after_1m: float | None, cpus: int | None, allow_busy: bool
) -> GuardDecision:
    """Pure: may results measured between load averages ``before_1m`` and ``after_1m`` be written?

    Busy = the 1-minute load average before or after (``None``: not measured yet) exceeds the CPU count (an
    unknown CPU count counts as 1). A busy run is written only with ``allow_busy``, and then says so.
    """
    limit = max(cpus or 1, 1)
    samples = [("before", before_1m)] + ([("after", after_1m)] if after_1m is not None else [])
    over = [f"{when} {value:.2f}" for when, value in samples if value > limit]
    if not over:
        return GuardDecision(True, False, False, "")
    reason = f"1-minute load average {' and '.join(over)} exceeds the CPU count {limit}"
    if allow_busy:
        return GuardDecision(True, True, True, reason + " (--allow-busy: written, marked busy_override)")
    return GuardDecision(
        False,
        True,
        False,
        reason + ": figures from a busy machine are not written (rerun quietly, or --allow-busy)",
    )


def add_load_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--allow-busy",
        action="store_true",
        help="write results even when the load average exceeded the CPU count (the JSON says busy_override)",
    )


def _env_allow_busy() -> bool:
    return os.environ.get(ALLOW_BUSY_ENV, "").strip().lower() in {"1", "true", "yes"}


@dataclass
class LoadWatch:
    """The load average before a benchmark run (and, at :meth:`finish`, after it) with the CPU count."""

    allow_busy: bool
    before: tuple[float, float, float] = field(default_factory=lambda: os.getloadavg())
    cpus: int | None = field(default_factory=lambda: os.cpu_count())
    after: tuple[float, float, float] | None = None
    at_end: tuple[float, float, float] | None = None
    settled_s: float = 0.0

    @classmethod
    def begin(cls, args: argparse.Namespace | None = None, *, check: bool = True) -> LoadWatch:
        """Record the load now; with ``check``, refuse (exit) if the machine is already busy.

        ``$CRMINDEX_BENCH_WAIT_QUIET`` seconds (default 0): first wait up to that long for the 1-minute load
        average to fall to the CPU count (``make bench`` runs the scripts one after another: each waits for the
        previous one's load to die down)."""
        allow = bool(getattr(args, "allow_busy", False)) or _env_allow_busy()
        watch = cls(allow_busy=allow)
        wait_s = float(os.environ.get(WAIT_QUIET_ENV, "0") or 0)
        deadline = time.monotonic() + wait_s
        while check and not allow and watch.decision().busy and time.monotonic() < deadline:
            print(
                f"bench: waiting for a quiet machine: {watch.decision().reason}", file=sys.stderr, flush=True
            )
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
            watch = cls(allow_busy=allow)
        if check:
            watch._enforce(watch.decision())
        return watch

    def decision(self) -> GuardDecision:
        return guard_decision(
            self.before[0], self.after[0] if self.after else None, self.cpus, self.allow_busy
        )

    def finish(self) -> GuardDecision:
        """Record the load after the run and refuse (exit) if it is busy.

        The 1-minute average at the end still holds the run's own work (its clients, its PostgreSQL): a busy
        reading is taken again every few seconds for up to ``$CRMINDEX_BENCH_SETTLE`` seconds (default 120: the
        run's own share decays by e^(-t/60)); the last reading is ``loadavg_after``, the first ``loadavg_at_end``.
        Load that does not die down once the run has stopped is someone else's."""
        self.at_end = self.after = os.getloadavg()
        settle = float(os.environ.get(SETTLE_ENV, str(DEFAULT_SETTLE_S)) or 0)
        deadline = time.monotonic() + settle
        while not self.allow_busy and self.decision().busy and time.monotonic() < deadline:
            print(
                f"bench: letting the run's own load settle: {self.decision().reason}",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            self.after = os.getloadavg()
            self.settled_s = round(settle - max(0.0, deadline - time.monotonic()), 1)
        decision = self.decision()
        self._enforce(decision)
        return decision

    @staticmethod
    def _enforce(decision: GuardDecision) -> None:
        if not decision.write:
            print(f"bench: refusing to write results: {decision.reason}", file=sys.stderr, flush=True)
            raise SystemExit(BUSY_EXIT)
        if decision.busy:
            print(f"bench: warning: {decision.reason}", file=sys.stderr, flush=True)

    def as_json(self) -> dict[str, Any]:
        decision = self.decision()
        return {
            "cpus": self.cpus,
            "loadavg_before": [round(v, 2) for v in self.before],
            "loadavg_after": [round(v, 2) for v in self.after] if self.after else None,
            "loadavg_at_end": [round(v, 2) for v in self.at_end] if self.at_end else None,
            "settled_s": self.settled_s,
            "busy": decision.busy,
            "busy_override": decision.busy_override,
        }


# a script that never made its own watch is judged from the moment this module was imported
_PROCESS_WATCH = LoadWatch(allow_busy=False)


def write_results(name: str, figures: dict[str, Any], load: LoadWatch | None = None) -> Path:
    """Write ``bench/results/<name>.json`` with the load record, or exit (:data:`BUSY_EXIT`) if it was busy."""
    if load is None:
        load = _PROCESS_WATCH
        load.allow_busy = load.allow_busy or _env_allow_busy() or "--allow-busy" in sys.argv[1:]
    load.finish()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load": load.as_json(),
        "busy_override": load.decision().busy_override,
        **figures,
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
