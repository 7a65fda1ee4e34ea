"""The README's examples run as written (at small size), so they cannot rot."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import requests

README = Path(__file__).resolve().parent.parent / "README.md"
VENV_BIN = Path(sys.executable).parent


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _tour() -> list[str]:
    [block] = [b for b in _blocks("sh") if "crmindex migrate" in b and "crmindex sync" in b]
    lines: list[str] = []
    for raw in block.replace("\\\n", " ").splitlines():
        line = raw.split("  #")[0].strip()
        if line:
            lines.append(line)
    return lines


def test_the_tour_runs_as_written(db_dsn: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ.copy()
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    fake: subprocess.Popen[str] | None = None
    outputs: list[str] = []
    try:
        for line in _tour():
            line = line.replace("8765", str(port)).replace(".venv/bin/", "")
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                if value.startswith("$(") and value.endswith(")"):  # command substitution, as the shell does
                    value = subprocess.run(shlex.split(value[2:-1]), env=env, capture_output=True, text=True,
                                           check=True, timeout=60).stdout.strip()  # fmt: skip
                env[key] = db_dsn if key == "DATABASE_URL" else value
                continue
            if line.endswith("&"):
                fake = subprocess.Popen(shlex.split(line[:-1]), env=env, stdout=subprocess.PIPE, text=True)
                assert fake.stdout is not None
                fake.stdout.readline()
                continue
            if "materialize" in line:  # a real email of the seeded fake instead of the placeholder
                resp = requests.get(
                    f"http://127.0.0.1:{port}/crm/v3/objects/contacts?limit=1&properties=email",
                    headers={"Authorization": "Bearer test-token"},
                    timeout=10,
                )
                line = line.replace("someone@example.com", resp.json()["results"][0]["properties"]["email"])
                resp.close()
            proc = subprocess.run(
                shlex.split(line), env=env, capture_output=True, text=True, timeout=300, check=False
            )
            assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
            outputs.append(proc.stdout)
    finally:
        if fake is not None:
            fake.terminate()
            fake.wait(10)
            if fake.stdout is not None:
                fake.stdout.close()
    text = "\n".join(outputs)
    assert "nothing to apply" in text  # migrate ran on an already migrated database
    assert "2,000 records synced" in text or "records synced" in text
    assert "materialized" in text
    assert "contacts     2,000 indexed, 1 materialized" in text


def test_the_python_example_runs(db_dsn: str) -> None:
    [code] = [b for b in _blocks("python") if "upsert_contacts" in b]
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DATABASE_URL": db_dsn},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "inserted=1 updated=0 unchanged=0" in proc.stdout
    assert "Stan Lee" in proc.stdout
    assert "'lifecyclestage': 'salesqualifiedlead'" in proc.stdout


def test_the_psql_example_runs(db: psycopg.Connection[tuple[object, ...]]) -> None:
    db.execute("INSERT INTO crm.org (org_id) VALUES ('00000000-0000-4000-8000-000000000001')")
    [block] = [b for b in _blocks("sql") if "crm.upsert_contacts" in b]
    results = []
    for stmt in [s.strip() for s in block.split(";") if s.strip()]:
        results.append(db.execute(stmt).fetchall())  # type: ignore[call-overload]
    assert results[0] == [(1, 0, 0)]
    assert results[1] == [("Ana", "Chief Financial Officer", "c_suite", "finance", "stripe.com")]
    assert results[2] and results[2][0][0] == "Ana"
    assert results[3][0][0] == 1  # contacts indexed
