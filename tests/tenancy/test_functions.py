"""Functions: every function of schema ``crm`` crm_app may execute is called with org B as the org and with B's
data (``tests/tenancy/cases.py``), in every binding mode; nothing of B is read or changed, and the table of
calls covers the catalog."""

from __future__ import annotations

import psycopg
import pytest

from tests.tenancy.cases import ANY, CASES, Case
from tests.tenancy.helpers import MODES, Conn, Facts, Mode, assert_nothing_of_b, attempt, snapshot

# SECURITY DEFINER trigger functions: they cannot be called (0A000, in CASES), only fired; they are attacked
# through the writes that fire them (test_python_layer.py::test_an_org_cannot_claim_another_orgs_crm_account)
TRIGGER_FUNCTIONS = {"crm.connection_account_unique()"}


def _executable_functions(conn: Conn) -> dict[str, bool]:
    """signature -> SECURITY DEFINER, for every function of schema crm that crm_app may execute."""
    return {
        str(r[0]): bool(r[1])
        for r in conn.execute(
            "SELECT p.oid::regprocedure::text, p.prosecdef FROM pg_proc AS p "
            "WHERE p.pronamespace = 'crm'::regnamespace AND has_function_privilege('crm_app', p.oid, 'EXECUTE')"
        )
    }


def _all_functions(conn: Conn) -> set[str]:
    return {
        str(r[0])
        for r in conn.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'crm'::regnamespace"
        )
    }


def test_the_table_covers_every_function_the_app_role_may_execute(su: Conn) -> None:
    """A function crm_app may execute fails here until it has adversarial calls in CASES (and a removed one must
    go). CASES also keep calls of functions crm_app may no longer execute (issue 13: the workers' functions):
    those must be refused (42501) in every mode."""
    executable = set(_executable_functions(su))
    covered = {c.signature for c in CASES}
    assert executable - covered == set(), "functions crm_app may execute without adversarial calls"
    assert covered - _all_functions(su) == set(), "CASES name functions that are gone"


def test_security_definer_functions_are_attacked_with_b_as_org_and_as_data(su: Conn) -> None:
    """SECURITY DEFINER functions bypass row-level security: each is called with B as p_org_id and with
    B's emails / domains / companies as text and filters while bound to A."""
    definers = {sig for sig, definer in _executable_functions(su).items() if definer}
    assert definers, "the search helpers are SECURITY DEFINER"
    for sig in definers - TRIGGER_FUNCTIONS:
        calls = [c for c in CASES if c.signature == sig]
        assert any(c.expect == "CX003" for c in calls), f"{sig}: no call naming org B"
        assert sum(1 for c in calls if c.expect != "CX003") >= 3, f"{sig}: too few calls with B's data"
    # their search_path is pinned (no object of the caller's can be slipped in)
    for sig in definers:
        row = su.execute("SELECT proconfig FROM pg_proc WHERE oid = %s::regprocedure", (sig,)).fetchone()
        assert row is not None and any(str(c).startswith("search_path=") for c in row[0] or []), sig


ALLOWED_ERRORS = {"42501", "CX001", "CX002", "CX003", "CX004"}


def _check_case(
    case: Case,
    mode: Mode,
    outcome: object,
    after: dict[str, str],
    before: dict[str, str],
    facts: Facts,
    executable: bool = True,
) -> str | None:
    """None when the call behaved; else what went wrong. A function crm_app may not execute must be refused
    for lack of the privilege, whatever the binding and the arguments."""
    if after != before:
        changed = sorted(k for k in before if after.get(k) != before[k])
        return f"changed B's data in {changed}"
    if not executable:
        denied = isinstance(outcome, psycopg.errors.InsufficientPrivilege)
        denied = denied and "permission denied for function" in str(outcome)
        return None if denied else f"crm_app may not execute it, yet: {outcome!r}"
    if isinstance(outcome, psycopg.Error):
        state = outcome.sqlstate or ""
        if mode == "bound_a" and isinstance(case.expect, str):
            return None if state == case.expect else f"raised {state} {outcome}, expected {case.expect}"
        if mode == "bound_a" and case.expect is not ANY:
            return f"raised {state} {outcome}, expected {case.expect!r}"
        allowed = ALLOWED_ERRORS | ({"22P02"} if mode == "malformed" else set())
        if case.expect == "0A000":
            allowed = {"0A000"}
        return None if state in allowed else f"raised an unexpected {state}: {outcome}"
    if mode == "bound_a" and case.expect is not ANY and outcome != case.expect:
        return f"returned {outcome!r}, expected {case.expect!r}"
    try:
        assert_nothing_of_b(outcome, facts, case.absent)
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("mode", list(MODES))
def test_every_function_with_b_ids_reads_and_changes_nothing_of_b(su: Conn, facts: Facts, mode: Mode) -> None:
    before = snapshot(su)
    executable = set(_executable_functions(su))
    failures = []
    for case in CASES:
        params = case.params(facts)
        outcome, after = attempt(su, mode, case.sql, params)
        problem = _check_case(case, mode, outcome, after, before, facts, case.signature in executable)
        if problem:
            failures.append(f"{case.sql} {params!r}: {problem}")
    assert failures == [], "\n".join(failures)
    assert snapshot(su) == before
