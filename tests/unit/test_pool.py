"""The pool's bookkeeping, with units that are plain objects (the end-to-end tests use browsers):
sizes and the launch bound, hand-out once, dead units discarded, capacity, eviction, drain."""

from __future__ import annotations

import threading
import time

import pytest

from service.pool import Pool, Unit


class FakeLaunched:
    def __init__(self) -> None:
        self.dead = False
        self.ended = False
        self.bidi = self
        self.context = "ctx"
        self.remote = False
        self.hung = False  # runs, but answers no BiDi question

    def alive(self) -> bool:
        return not self.dead

    def command(self, method, params, timeout):
        if self.dead or self.hung:
            raise ConnectionError("gone")
        return {}

    def shutdown(self) -> None:
        self.ended = True


class FakeListener:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Harness:
    def __init__(
        self, sizes: dict[str, int], slots: int = 10, max_launches: int = 1, gate: bool = False, room=None
    ):
        self.slots = slots
        self.used = 0
        self.lock = threading.Lock()
        self.made: list[Unit] = []
        self.gate = threading.Event()
        if not gate:
            self.gate.set()
        self.concurrent = 0
        self.peak = 0
        self.pool = Pool(sizes, self.make, self.reserve, self.release, max_launches, room=room)

    def make(self, kind: str) -> Unit:
        with self.lock:
            self.concurrent += 1
            self.peak = max(self.peak, self.concurrent)
        self.gate.wait(5)
        with self.lock:
            self.concurrent -= 1
        unit = Unit(kind, FakeLaunched(), FakeListener())
        self.made.append(unit)
        return unit

    def reserve(self) -> bool:
        with self.lock:
            if self.used >= self.slots:
                return False
            self.used += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.used -= 1


def until(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture()
def harness():
    made: list[Harness] = []

    def build(*args, **kwargs) -> Harness:
        made.append(Harness(*args, **kwargs))
        made[-1].pool.start()
        return made[-1]

    yield build
    for each in made:
        each.gate.set()
        each.pool.drain(5)


def test_fills_to_size_and_hands_each_unit_out_once(harness):
    h = harness({"chrome": 2})
    assert h.pool.wait_ready("chrome", 2, 5)
    first, second = h.pool.take("chrome"), h.pool.take("chrome")
    assert first is not None and second is not None and first is not second
    assert h.pool.wait_ready("chrome", 2, 5)  # replacements, new units
    third = h.pool.take("chrome")
    assert third not in (first, second)
    assert h.pool.take("firefox") is None  # no pool for that kind: open cold


def test_launches_are_bounded(harness):
    h = harness({"chrome": 3, "firefox": 2}, max_launches=2, gate=True)
    assert until(lambda: h.pool.launching() == 2)  # the filler starts what it may; the gate holds them
    h.gate.set()
    assert h.pool.wait_ready("chrome", 3, 5) and h.pool.wait_ready("firefox", 2, 5)
    assert h.peak == 2


def test_a_dead_unit_is_discarded_not_handed_out(harness):
    h = harness({"chrome": 2})
    assert h.pool.wait_ready("chrome", 2, 5)
    victim = h.made[0]
    victim.launched.dead = True
    taken = h.pool.take("chrome")
    assert taken is not None and taken is not victim
    assert victim.launched.ended and victim.listener.closed


def test_a_local_hand_out_asks_no_question_but_the_sweep_finds_a_hung_unit(harness, monkeypatch):
    h = harness({"chrome": 2})  # its first sweep is SWEEP (2 s) away
    assert h.pool.wait_ready("chrome", 2, 5)
    asked: list[str] = []
    for unit in h.made:
        original = unit.launched.command
        unit.launched.command = lambda *a, original=original: asked.append("q") or original(*a)
    taken = h.pool.take("chrome")
    assert taken is not None and asked == []  # processes and socket checked, no round trip
    monkeypatch.setattr("service.pool.SWEEP", 0.1)  # the sweeps after the first
    hung = next(unit for unit in h.made if unit is not taken)
    hung.launched.hung = True
    assert until(lambda: hung.launched.ended)  # the sweep asked it, and it did not answer
    assert hung.listener.closed
    assert h.pool.take("chrome") is not hung


def test_a_grid_unit_that_does_not_answer_is_not_handed_out(harness):
    h = harness({"chrome": 2})
    assert h.pool.wait_ready("chrome", 2, 5)
    for unit in h.made:
        unit.launched.remote = True  # no process of its in sight: a BiDi question decides
    victim = h.made[0]
    victim.launched.hung = True
    taken = h.pool.take("chrome")
    assert taken is not None and taken is not victim
    assert victim.launched.ended


def test_the_pool_holds_slots_and_gives_them_back(harness):
    h = harness({"chrome": 5}, slots=3)
    assert h.pool.wait_ready("chrome", 3, 5)
    assert h.used == 3 and h.pool.idle("chrome") == 3  # never past the capacity
    assert h.pool.evict()
    assert h.used == 2 or h.pool.launching()  # freed (the filler may already be refilling it)


def test_drain_ends_every_idle_unit_and_frees_its_slot(harness):
    h = harness({"chrome": 2, "firefox": 1})
    assert h.pool.wait_ready("chrome", 2, 5) and h.pool.wait_ready("firefox", 1, 5)
    h.pool.drain(5)
    assert all(unit.launched.ended and unit.listener.closed for unit in h.made)
    assert h.used == 0
    assert h.pool.take("chrome") is None
    h.pool.drain(5)  # idempotent


def test_a_launch_that_ends_during_drain_is_ended_too(harness):
    h = harness({"chrome": 1}, gate=True)
    assert until(lambda: h.pool.launching() == 1)
    opener = threading.Timer(0.2, h.gate.set)
    opener.start()
    h.pool.drain(5)
    assert len(h.made) == 1 and h.made[0].launched.ended
    assert h.used == 0


class FakeGrid:
    """A Grid of ``slots`` sessions shared by every kind: the pool's units that are not ended
    hold them. Counts how often the pool asked for room, by kind."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.harness: Harness | None = None
        self.asked: dict[str, int] = {"chrome": 0, "firefox": 0}

    def room(self, kind: str) -> bool:
        self.asked[kind] += 1
        if self.harness is None:  # the filler may ask before the test has told us of the harness
            return False
        held = sum(1 for unit in self.harness.made if not unit.launched.ended)
        return held < self.slots


def test_on_a_grid_the_pool_launches_only_where_the_grid_has_room(harness):
    """The issue's case: a Grid of 2 slots and the default pool (2 Chromes, 1 Firefox). The pool
    fills the Grid and stops there: the Firefox launch it wants is asked for and never started,
    one launch at a time; an evicted unit's slot is refilled."""
    grid = FakeGrid(2)
    h = harness({"chrome": 2, "firefox": 1}, max_launches=2, room=grid.room)
    grid.harness = h
    assert h.pool.wait_ready("chrome", 2, 5)
    asked = grid.asked["firefox"]
    assert until(lambda: grid.asked["firefox"] >= asked + 2, 10)  # asked again (each sweep, 2 s apart)
    assert [u.kind for u in h.made] == ["chrome", "chrome"] and h.pool.launching() == 0
    assert h.peak == 1  # one launch at a time on a Grid, whatever INNDX_POOL_LAUNCHES says
    assert h.pool.evict()
    assert until(lambda: len(h.made) == 3)  # the freed slot is the pool's again
    assert sum(1 for unit in h.made if not unit.launched.ended) == 2
