"""Mixed load, small: bench/mixed_load's whole run (search clients, a webhook stream, 4 `crmindex drain`
processes, copilot write-backs and bulk bursts, materializations and a reconcile, all at once against
FakeHubSpot at a low rate limit) on a few thousand contacts. The figures are the bench's; this test holds
the run to its correctness claims: the rate limit held in every window, nothing lost, index == CRM.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.mixed_load import Params, phones_that_may_be_last, run


@pytest.mark.slow
def test_everything_at_once_keeps_the_limit_and_loses_nothing(db_dsn: str) -> None:
    p = Params(
        contacts=3_000,
        others=2,
        other_contacts=500,
        idle_s=4,
        load_s=24,
        search_clients=4,
        think_ms=50,
        queries=10,
        webhook_rate=40,
        limit=40,  # low, so the drainers run into it
        headroom=0.9,  # 1 s of the 10 s window for the jitter between a permit and the request's arrival
        copilot_rate=8,
        burst_every=5,
        burst_size=300,
        materialize_rate=1,
        settle_s=120,
    )
    said: list[str] = []
    fig: dict[str, Any] = run(db_dsn, p, say=said.append)

    # the CRM's limit held in every rolling window, and we ran into it (the drainers were at the limit)
    rate = fig["rate_limit"]
    assert rate["held_in_every_window"], rate
    assert rate["requests_429"] == 0, rate
    assert rate["max_requests_in_any_10s_window"] >= p.limit * 0.8, rate

    # every delivery accepted and applied; every write-back landed; the index equals the fake CRM
    assert fig["stream"]["events"] >= p.webhook_rate * p.load_s * 0.8, fig["stream"]
    assert fig["stream"]["deliveries_not_2xx"] == 0, fig["stream"]
    inbox = fig["webhook_apply_lag"]["inbox_status"]
    assert set(inbox) == {"completed"} and inbox["completed"] == fig["stream"]["deliveries"], inbox
    wb = fig["writeback_queue"]
    assert set(wb["status"]) == {"completed"}, wb
    assert len(wb["bursts"]) >= 2 and all(b["all_landed_after_s"] is not None for b in wb["bursts"]), wb
    v = fig["verification"]
    assert v["titles_checked"] > 500 and v["phones_checked"] > 400, v
    assert v["title_mismatches"] == 0 and v["phone_mismatches"] == 0, v["examples"]

    # the other load ran and did not fail
    assert fig["search"]["errors"] == 0, fig["search"]
    assert fig["search"]["idle"]["n"] > 20 and fig["search"]["load"]["n"] > 100, fig["search"]
    assert fig["materialize"]["n"] >= p.load_s * 0.5 and fig["materialize"]["errors"] == 0, fig["materialize"]
    assert fig["copilot_writes"]["errors"] == 0 and fig["copilot_writes"]["queued"] > 100, fig[
        "copilot_writes"
    ]
    assert "error" not in fig["reconcile"] and fig["reconcile"]["seconds"] > 0, fig["reconcile"]
    assert fig["drainer_exit_codes"] == [0] * p.drainers, fig["drainer_log_tail"]


def test_a_phone_written_by_overlapping_calls_may_be_either() -> None:
    """The copilot and a bulk edit write one contact's phone from two threads: a write that returned before the last
    one began committed first (its phone may not be the contact's); one whose call overlapped the last may have
    committed after it (either phone may be)."""
    assert phones_that_may_be_last([(0.0, 1.0, "a"), (2.0, 3.0, "b")]) == {"b"}
    assert phones_that_may_be_last([(2.0, 3.0, "b"), (0.0, 1.0, "a")]) == {"b"}
    assert phones_that_may_be_last([(0.0, 2.0, "a"), (1.0, 3.0, "b")]) == {"a", "b"}
    assert phones_that_may_be_last([(0.0, 5.0, "a"), (1.0, 2.0, "b"), (6.0, 7.0, "c")]) == {"c"}
    assert phones_that_may_be_last([(0.0, 5.0, "a"), (1.0, 2.0, "b")]) == {"a", "b"}
