"""Hostile CLI arguments, in process (``crmindex.cli.main``): any text for --org, REF, the query, --source,
--after, numbers. The exit code is 0, 1 (runtime failure) or 2 (usage), stderr is one clear line (argparse's
usage text for usage errors), never a Python traceback, never an uncaught exception."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmindex.cli import main
from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts
from tests.conftest import PgServer
from tests.fuzz_strategies import LEAK_MARKERS, fuzz, hostile_text, module_db
from tests.orgs import ORG_A, ORG_B

ORG = str(ORG_A)  # the CLI takes it as text
CONNECT_ORG = str(ORG_B)  # only `connect` writes here: nothing ever syncs it


@pytest.fixture(scope="module")
def dsn(pg_server: PgServer, template_db: str) -> Iterator[str]:
    for d in module_db(pg_server, template_db):
        with psycopg.connect(d, autocommit=True) as conn:
            ensure_org(conn, uuid.UUID(ORG), "Fuzz Org")
            upsert_contacts(
                conn,
                uuid.UUID(ORG),
                "hubspot",
                [
                    ContactRow(
                        crm_record_id="77", first_name="Stan", email="stan@acme.com", job_title="VP Sales"
                    )
                ],
            )
        yield d


def _arg(text: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    # argv as an OS gives it: no NUL in a real argv, but undecodable bytes arrive as lone surrogates
    return (hostile_text(80) if text is None else text) | st.sampled_from(
        ["", "-", "--", "--help", "-x", "#1", "#-1", "#99999999999999999999", "stan@acme.com"]
    )


ORGS = (
    st.sampled_from([ORG, ORG.upper(), "{" + ORG + "}", str(uuid.UUID(int=0))]) | st.uuids().map(str) | _arg()
)
NUMBERS = st.integers().map(str) | st.sampled_from(
    ["0", "-1", "1e3", "2147483648", "99999999999999999999", "x"]
)


@st.composite
def argv(draw: st.DrawFn) -> list[str]:
    command = draw(
        st.sampled_from(["search", "materialize", "status", "connect", "sync", "reconcile", "requeue"])
    )
    if command == "search":
        args = ["search", draw(_arg()), "--org", draw(ORGS)]
        args += draw(st.sampled_from([[], ["--json"]]))
        if draw(st.booleans()):
            args += ["--limit", draw(NUMBERS)]
        if draw(st.booleans()):
            args += ["--after", draw(_arg() | st.sampled_from(["0:1", "1.5:99"]))]
    elif command == "materialize":
        args = ["materialize", draw(_arg()), "--org", draw(ORGS)]
        args += draw(st.sampled_from([[], ["--json"], ["--reason", "copilot"], ["--reason", "bogus"]]))
    elif command == "status":
        args = ["status", *draw(st.sampled_from([[], ["--json"]]))]
        if draw(st.booleans()):
            args += ["--org", draw(ORGS)]
    elif command == "connect":
        source = draw(st.sampled_from(["hubspot", "attio"]) | _arg(hostile_text(10)))
        args = ["connect", source, "--org", draw(st.sampled_from([CONNECT_ORG]) | _arg())]
        args += [
            draw(st.sampled_from(["--portal-id", "--workspace-id"])),
            draw(_arg(hostile_text(30)) | NUMBERS),
        ]
        if draw(st.booleans()):
            args += ["--token-env", draw(_arg(hostile_text(20)) | st.just("FUZZ_TOKEN"))]
        if draw(st.booleans()):
            args += ["--webhook-secret-env", draw(_arg(hostile_text(20)))]
        if draw(st.booleans()):
            args += ["--base-url", "http://127.0.0.1:9"]  # never a fuzzed host: nothing here may call out
    elif command in ("sync", "reconcile"):
        args = [command, "--org", draw(ORGS)]
        if draw(st.booleans()):
            args += ["--source", draw(st.sampled_from(["hubspot", "attio"]) | _arg(hostile_text(10)))]
        args += ["--quiet"] if command == "sync" else []
    else:
        args = ["drain", "requeue", "--org", draw(ORGS)]
        args += ["--queue", draw(st.sampled_from(["writeback", "inbox", "jobs"]) | _arg(hostile_text(10)))]
    # an extra unknown token now and then
    if draw(st.integers(0, 9)) == 0:
        args.insert(draw(st.integers(0, len(args))), draw(_arg()))
    return args


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) with stdout/stderr as a process has them in a UTF-8 locale: stdout strict, stderr
    backslashreplace (so argparse may echo an undecodable argument; our own output must be encodable)."""
    capsys.readouterr()
    out_buf, err_buf = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_buf, encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(err_buf, encoding="utf-8", errors="backslashreplace")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            code = exc.code if isinstance(exc.code, int) else 2
            assert code in (0, 2)
        out.flush()
        err.flush()
    return code, out_buf.getvalue().decode(), err_buf.getvalue().decode()


@fuzz(150)
@given(args=argv())
def test_any_arguments_exit_cleanly_with_one_line(
    dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.delenv("FUZZ_TOKEN", raising=False)
    code, _, err = run([*args, "--dsn", dsn], capsys)
    assert code in (0, 1, 2), (args, code, err)
    assert "Traceback" not in err and 'File "' not in err
    if code == 0:
        return
    lines = err.strip().splitlines()
    assert lines, (args, code)
    if lines[0].startswith("usage:"):  # argparse's own usage error: usage text, then one "error:" line
        assert code == 2 and lines[-1].startswith("crmindex") and ": error: " in lines[-1]
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith(f"crmindex {args[0]}: ") or lines[0].startswith("crmindex drain: ")
        assert not any(m in lines[0] for m in LEAK_MARKERS if m not in ("ERROR:",)), lines[0]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["search", "q", "--org", "zzz"], 2, "--org must be an org uuid"),  # was a raw 22P02 traceback
        (["search", "a\x00b", "--org", ORG], 2, "NUL"),  # was psycopg.DataError
        (
            ["search", "\udcff", "--org", ORG],
            2,
            "surrogate",
        ),  # undecodable argv bytes: was UnicodeEncodeError
        (["search", "q", "--org", ORG, "--limit", "99999999999"], 2, "limit"),  # was a raw 42883
        (["materialize", "a\x00", "--org", ORG], 2, "NUL"),
        (["connect", "attio", "--org", ORG, "--workspace-id", "x" * 300], 2, "at most 200 characters"),
        (
            ["connect", "hubspot", "--org", ORG, "--portal-id", "1", "--token-env", "A B"],
            2,
            "not an environment variable name",
        ),
    ],
)
def test_regressions_arguments_that_used_to_crash(
    dsn: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, _, err = run([*argv, "--dsn", dsn], capsys)
    assert got == code
    assert message in err and len(err.strip().splitlines()) == 1
    assert "further information" not in err  # pydantic's closing line was the whole message


@pytest.mark.parametrize(
    "hostile", ["\r0", "a\nb", "\x1b[2Jx", "\u2028z"], ids=["cr", "lf", "escape", "line-separator"]
)
def test_usage_errors_escape_control_characters_in_the_echoed_argument(
    dsn: str, capsys: pytest.CaptureFixture[str], hostile: str
) -> None:
    """argparse echoes an unrecognized argument: a CR/LF/ESC in it must not split or rewrite the error line
    (CI found ``sync --org '' '\\r0'`` printing its error on two lines)."""
    code, _, err = run(["sync", "--org", ORG, hostile, "--quiet", "--dsn", dsn], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage:") and lines[-1].startswith("crmindex: error: unrecognized arguments")
    assert hostile.encode("unicode_escape").decode() in lines[-1] and "\x1b" not in err


def test_search_still_works_in_the_fuzzed_database(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["search", "stan", "--org", ORG, "--dsn", dsn], capsys)
    assert code == 0 and "stan@acme.com" in out
