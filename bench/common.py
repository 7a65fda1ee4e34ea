"""Shared helpers for the benchmark scripts: a cluster or DATABASE_URL, results JSON, percentiles."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
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


def write_results(name: str, figures: dict[str, Any]) -> Path:
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
