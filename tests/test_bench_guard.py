"""The benchmark load guard (issue 18 item 7): when figures may be written, and what the JSON says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.common as common
from bench.common import BUSY_EXIT, LoadWatch, guard_decision


def test_quiet_machine_writes_without_override() -> None:
    d = guard_decision(1.0, 1.9, 2, allow_busy=False)
    assert d.write and not d.busy and not d.busy_override and d.reason == ""


def test_load_equal_to_cpu_count_is_not_busy() -> None:
    assert not guard_decision(2.0, 2.0, 2, allow_busy=False).busy


def test_busy_before_refuses() -> None:
    d = guard_decision(2.01, 0.5, 2, allow_busy=False)
    assert not d.write and d.busy and not d.busy_override
    assert "before 2.01" in d.reason and "CPU count 2" in d.reason


def test_busy_after_refuses() -> None:
    d = guard_decision(0.5, 7.3, 2, allow_busy=False)
    assert not d.write and "after 7.30" in d.reason and "before" not in d.reason


def test_before_only_check_ignores_the_missing_after() -> None:
    assert guard_decision(1.0, None, 2, allow_busy=False).write
    assert not guard_decision(3.0, None, 2, allow_busy=False).write


def test_allow_busy_writes_and_says_so() -> None:
    d = guard_decision(9.0, 8.0, 2, allow_busy=True)
    assert d.write and d.busy and d.busy_override


def test_allow_busy_on_a_quiet_machine_is_no_override() -> None:
    d = guard_decision(0.1, 0.2, 2, allow_busy=True)
    assert d.write and not d.busy_override


def test_unknown_cpu_count_counts_as_one() -> None:
    assert guard_decision(0.9, 0.9, None, allow_busy=False).write
    assert not guard_decision(1.5, 0.9, None, allow_busy=False).write


def test_write_results_refuses_a_busy_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setenv(common.SETTLE_ENV, "0")
    monkeypatch.setattr(common.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    watch = LoadWatch(allow_busy=False, before=(0.5, 0.5, 0.5), cpus=2)
    with pytest.raises(SystemExit) as exc:
        common.write_results("guard_probe", {"x": 1}, watch)
    assert exc.value.code == BUSY_EXIT
    assert not (tmp_path / "guard_probe.json").exists()


def test_write_results_records_load_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(common.os, "getloadavg", lambda: (3.5, 2.0, 1.0))
    watch = LoadWatch(allow_busy=True, before=(0.5, 0.4, 0.3), cpus=2)
    doc = json.loads(common.write_results("guard_probe", {"x": 1}, watch).read_text())
    assert doc["busy_override"] is True
    assert doc["load"] == {
        "cpus": 2,
        "loadavg_before": [0.5, 0.4, 0.3],
        "loadavg_after": [3.5, 2.0, 1.0],
        "loadavg_at_end": [3.5, 2.0, 1.0],
        "settled_s": 0.0,
        "busy": True,
        "busy_override": True,
    }
    assert doc["x"] == 1


def test_begin_refuses_at_once_when_already_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(common.ALLOW_BUSY_ENV, raising=False)
    monkeypatch.setenv(common.WAIT_QUIET_ENV, "0")
    monkeypatch.setattr(common.os, "getloadavg", lambda: (64.0, 1.0, 1.0))
    with pytest.raises(SystemExit):
        LoadWatch.begin(None)


def test_begin_waits_for_the_load_to_fall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(common.ALLOW_BUSY_ENV, raising=False)
    monkeypatch.setenv(common.WAIT_QUIET_ENV, "60")
    loads = iter([(5.0, 1.0, 1.0), (3.0, 1.0, 1.0), (1.5, 1.0, 1.0)])
    monkeypatch.setattr(common.os, "getloadavg", lambda: next(loads))
    slept: list[float] = []
    monkeypatch.setattr(common.time, "sleep", slept.append)
    watch = LoadWatch.begin(None)
    assert watch.before[0] == 1.5 and len(slept) == 2


def test_finish_lets_the_runs_own_load_settle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy reading at the end is taken again while the run's own load decays; a quiet one is written."""
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setenv(common.SETTLE_ENV, "60")
    loads = iter([(3.2, 1.0, 1.0), (2.4, 1.0, 1.0), (1.8, 1.0, 1.0)])
    monkeypatch.setattr(common.os, "getloadavg", lambda: next(loads))
    monkeypatch.setattr(common.time, "sleep", lambda s: None)
    watch = LoadWatch(allow_busy=False, before=(0.5, 0.4, 0.3), cpus=2)
    doc = json.loads(common.write_results("guard_probe", {}, watch).read_text())
    assert doc["load"]["loadavg_at_end"][0] == 3.2 and doc["load"]["loadavg_after"][0] == 1.8
    assert doc["busy_override"] is False and doc["load"]["busy"] is False
