"""service.health: the verdicts from heartbeats and statuses, and the status files' round trip."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from service import health

NOW = 1000.0


def _status(age: float, sessions: int = 0, shutting_down: bool = False) -> dict:
    return {"written": NOW - age, "active_sessions": sessions, "shutting_down": shutting_down}


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=4))
def test_alive_exactly_while_every_heartbeat_is_within_the_bound(ages):
    beats = {pid: NOW - age for pid, age in enumerate(ages, start=10)}
    alive, ready = health.verdicts(beats, {pid: _status(0) for pid in beats}, NOW, 30.0, 100)
    assert alive["ok"] == all(age <= 30.0 for age in ages)
    assert ready["ok"] == alive["ok"]  # statuses fresh, no load: ready is alive


@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 10), st.booleans()), min_size=1, max_size=4))
def test_ready_unless_shutting_down_stale_or_full(workers):
    beats = {pid: NOW for pid in range(len(workers))}
    statuses = {pid: _status(age, n, down) for pid, (n, age, down) in enumerate(workers)}
    _, ready = health.verdicts(beats, statuses, NOW, 30.0, 60)
    full = sum(n for n, _, _ in workers) >= 60
    stale = any(age > health.STALE_STATUS for _, age, _ in workers)
    down = any(d for _, _, d in workers)
    assert ready["ok"] == (not (full or stale or down))
    if down:
        assert ready["why"] == "shutting down"


def test_no_worker_is_neither_alive_nor_ready():
    alive, ready = health.verdicts({}, {}, NOW, 30.0, 10)
    assert (alive["ok"], alive["why"], ready["ok"]) == (False, "no worker runs", False)


def test_a_worker_without_a_status_is_not_ready():
    _, ready = health.verdicts({7: NOW}, {}, NOW, 30.0, 10)
    assert not ready["ok"] and ready["why"].startswith("overloaded: worker [7]")


def test_status_files_round_trip_and_junk_is_skipped(tmp_path):
    writer = health.StatusWriter(str(tmp_path), lambda: {"active_sessions": 3, "shutting_down": False})
    writer.write()
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"no": "pid"}')
    statuses = health.read_statuses(str(tmp_path))
    assert list(statuses) == [os.getpid()] and statuses[os.getpid()]["active_sessions"] == 3
