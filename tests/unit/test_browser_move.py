"""MemoryWatch: when a local browser's memory is looked at, and what counts as over its bound."""

from __future__ import annotations

import os
from types import SimpleNamespace

from service.clients.browser_move import MemoryWatch, tree_memory


def launched(pid: int | None = os.getpid(), local: bool = True):
    processes = SimpleNamespace(driver_pid=pid) if local else None
    return SimpleNamespace(processes=processes)


def test_tree_memory_sums_a_real_process_and_its_children():
    own = tree_memory(os.getpid())
    assert own > 1024 * 1024  # this Python, at least
    assert tree_memory(2**22 + 12345) == 0  # no such process: nothing, no error


def test_over_only_past_the_bound_and_only_when_due():
    watch = MemoryWatch(1, every=0.0)  # one byte: anything is over
    assert watch.over(launched()) is not None
    watch = MemoryWatch(1 << 50, every=0.0)
    assert watch.over(launched()) is None
    watch = MemoryWatch(1, every=3600.0)
    assert watch.over(launched()) is None  # not due before its first interval


def test_never_for_a_bound_of_zero_a_grid_browser_or_a_driver_not_yet_known():
    assert MemoryWatch(0, every=0.0).over(launched()) is None
    assert MemoryWatch(1, every=0.0).over(launched(local=False)) is None
    assert MemoryWatch(1, every=0.0).over(launched(pid=None)) is None


def test_a_look_pushes_the_next_one_back():
    watch = MemoryWatch(1, every=0.0)
    watch.every = 3600.0
    assert watch.over(launched()) is not None  # due since the start
    assert watch.over(launched()) is None  # looked at just now: the next in an hour
