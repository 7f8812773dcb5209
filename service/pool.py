"""The warm pool: ready browsers per client kind, handed out once, never reused.

A unit is a whole browser (see docs/performance.md, "Warm starts", for the measurement behind the choice):
launched, BiDi connected, the goto events subscribed, and its own listener on the egress gateway
already listening. ``take(kind)`` hands one to a new session: the listener is rebound to the
session's id and upstream proxy, and the browser belongs to that session until it ends; a unit
that ever served a session is never seen here again.

- Sizes: ``Settings.pool_chrome`` / ``pool_firefox`` (``INNDX_POOL_CHROME`` / ``INNDX_POOL_FIREFOX``);
  at most ``pool_launches`` launches run at once (``INNDX_POOL_LAUNCHES``).
- Capacity: every unit, ready or launching, holds one of the hub's ``max_browsers`` slots
  (``reserve`` / ``release``, given by the hub). A handed-out unit's slot goes with it to the
  session. When sessions need the slots, ``evict`` ends an idle unit to free one.
- Liveness: ``take`` checks processes and BiDi socket and asks the browser one BiDi question (a
  few ms); the filler sweeps idle units every ``SWEEP`` seconds. A dead unit is ended and its slot
  released, never handed out.
- ``drain()`` at shutdown: no new launch starts, launches in flight are waited for (bounded by
  their own launch timeout) and every idle unit is ended, processes and temp dirs included.

The filler is one thread; each launch runs on a thread of its own (the launch blocks).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.deadline import Deadline

logger = logging.getLogger(__name__)

KINDS = ("chrome", "firefox")
SWEEP = 2.0  # seconds between liveness sweeps of idle units
PROBE = 1.0  # seconds the hand-out probe may take
RETRY_AFTER = 5.0  # seconds before a failed launch is tried again
REFILL_DELAY = 0.5  # seconds after the last hand-out before a replacement starts (a burst of opens
# would otherwise share the CPU with the launches it set off: 8 opens at once took 4x longer)


@dataclass
class Unit:
    """One ready browser and its egress listener."""

    kind: str
    launched: Any  # service.clients.browser_launch.Launched
    listener: Any  # service.egress.Listener
    made_at: float = field(default_factory=time.monotonic)

    def running(self) -> bool:
        """Its processes run and its BiDi socket is open: local facts, no question asked."""
        return bool(self.launched.alive() and self.launched.bidi.alive())

    def alive(self) -> bool:
        """At hand-out. A local unit: ``running`` (the sweep has asked it a BiDi question within
        SWEEP). A Grid session: its processes are out of sight, so it answers a BiDi question."""
        return self.running() and (not self.launched.remote or self.answers())

    def answers(self) -> bool:
        """A BiDi round trip (bounded by PROBE): a browser that runs but hangs fails it."""
        launched = self.launched
        try:
            launched.bidi.command("browsingContext.getTree", {"root": launched.context, "maxDepth": 0}, PROBE)
        except Exception as exc:  # noqa: BLE001 - any failure means the unit is unusable
            logger.info("pooled %s failed its probe: %r", self.kind, exc)
            return False
        return True

    def end(self) -> None:
        try:
            self.launched.shutdown()
        finally:
            self.listener.close()


class Pool:
    def __init__(
        self,
        sizes: dict[str, int],
        make: Callable[[str], Unit],
        reserve: Callable[[], bool],
        release: Callable[[], None],
        max_launches: int = 1,
        metrics: Any = None,
        room: Callable[[str], bool] | None = None,
    ):
        self.sizes = {kind: max(0, sizes.get(kind, 0)) for kind in KINDS}
        self._make = make
        self._reserve = reserve
        self._release = release
        self._max_launches = max(1, max_launches)
        self._cond = threading.Condition()
        self._ready: dict[str, deque[Unit]] = {kind: deque() for kind in KINDS}
        self._launching: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._threads: set[threading.Thread] = set()
        self._retry_at: dict[str, float] = dict.fromkeys(KINDS, 0.0)
        self._draining = False
        self._drained = threading.Event()
        self._last_take = 0.0
        self._filler: threading.Thread | None = None
        self._metrics = metrics
        # On a Grid: is there room for one more unit of this kind (the Grid's free slots, less
        # those cold opens are about to take)? Asked by the filler, outside the lock.
        self._room = room
        if metrics is not None:
            for kind in KINDS:
                metrics.pool_idle.labels(kind).set_function(lambda kind=kind: self.idle(kind))

    @property
    def enabled(self) -> bool:
        return any(self.sizes.values())

    def start(self) -> None:
        if not self.enabled or self._filler is not None:
            return
        self._filler = threading.Thread(target=self._fill, name="pool-filler", daemon=True)
        self._filler.start()

    # ------------------------------------------------------------------------------ hand-out

    def take(self, kind: str, wait: float = 0.0) -> Unit | None:
        """A live ready unit of ``kind`` (its slot now the caller's), or None: then open cold.
        With ``wait``, wait that long while a launch of ``kind`` is in flight for it to come ready
        (on a busy machine a second launch beside it would only slow both down)."""
        end = time.monotonic() + wait
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._draining or self._ready[kind] or not self._launching[kind],
                    max(0.0, end - time.monotonic()),
                )
                if self._draining or not self._ready.get(kind):
                    return None
                unit = self._ready[kind].popleft()
                self._last_take = time.monotonic()
                self._cond.notify_all()  # the filler makes a replacement (after REFILL_DELAY)
            if unit.alive():
                self._count(kind, "handed_out")
                return unit
            self._discard(unit)

    def evict(self) -> bool:
        """End one idle unit (the oldest) to free its slot for a session; False when none idles."""
        with self._cond:
            candidates = [queue[0] for queue in self._ready.values() if queue]
            if not candidates:
                return False
            unit = min(candidates, key=lambda u: u.made_at)
            self._ready[unit.kind].popleft()
        logger.info("pool: ending an idle %s to make room for a session", unit.kind)
        self._end(unit)
        return True

    def launching(self, kind: str | None = None) -> int:
        with self._cond:
            return sum(n for k, n in self._launching.items() if kind in (None, k))

    def wait_launches(self, timeout: float) -> None:
        """Wait (bounded) until no launch is in flight."""
        with self._cond:
            self._cond.wait_for(lambda: self._draining or not any(self._launching.values()), max(0.0, timeout))

    def idle(self, kind: str | None = None) -> int:
        with self._cond:
            return sum(len(q) for k, q in self._ready.items() if kind in (None, k))

    def wait_ready(self, kind: str, count: int, timeout: float) -> bool:
        """Wait until ``count`` units of ``kind`` idle (tests and the bench)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._ready[kind]) >= count, timeout)

    # ------------------------------------------------------------------------------ shutdown

    def drain(self, timeout: float = 40.0) -> None:
        """Stop filling, wait for launches in flight, end every idle unit (in parallel). Any
        later call waits for the first one to finish (gunicorn calls twice: SIGTERM, then exit)."""
        with self._cond:
            first = not self._draining
            self._draining = True
            self._cond.notify_all()
            threads = list(self._threads)
        if not first:
            self._drained.wait(timeout)
            return
        try:
            end = time.monotonic() + timeout
            for thread in threads:
                thread.join(max(0.0, end - time.monotonic()))
            if self._filler is not None:
                self._filler.join(max(0.0, end - time.monotonic()))
            with self._cond:
                units = [unit for queue in self._ready.values() for unit in queue]
                for queue in self._ready.values():
                    queue.clear()
            enders = [threading.Thread(target=self._end, args=(unit,), name="pool-drain") for unit in units]
            for thread in enders:
                thread.start()
            for thread in enders:
                thread.join(max(1.0, end - time.monotonic()))
            if units:
                logger.info("pool drained: %d idle browsers ended", len(units))
        finally:
            self._drained.set()

    # ------------------------------------------------------------------------------ filling

    def _fill(self) -> None:
        next_sweep = time.monotonic() + SWEEP
        while True:
            allowed = self._kinds_with_room()
            with self._cond:
                if self._draining:
                    return
                self._start_launches(allowed)
                refill = self._last_take + REFILL_DELAY
                wake = min(next_sweep, refill) if refill > time.monotonic() else next_sweep
                self._cond.wait(max(0.05, min(SWEEP, wake - time.monotonic())))
                if self._draining:
                    return
            if time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + SWEEP

    def _wanted(self) -> list[str]:
        """Called with the condition held: the kinds short of their size."""
        return [kind for kind in KINDS if len(self._ready[kind]) + self._launching[kind] < self.sizes[kind]]

    def _kinds_with_room(self) -> set[str]:
        """The kinds a launch may start for now: all of them, or on a Grid those it has room for
        (asked once per wanted kind, outside the lock: an HTTP request)."""
        if self._room is None:
            return set(KINDS)
        with self._cond:
            wanted = [] if self._draining or any(self._launching.values()) else self._wanted()
        return {kind for kind in wanted if self._room(kind)}

    def _start_launches(self, allowed: set[str]) -> None:
        """Called with the condition held. On a Grid, one launch at a time, started only when
        none is in flight (so the room the Grid reported counted every unit of ours)."""
        now = time.monotonic()
        if now - self._last_take < REFILL_DELAY:
            return
        for kind in KINDS:
            if kind not in allowed:
                continue
            while (
                (self._room is None or not any(self._launching.values()))
                and len(self._ready[kind]) + self._launching[kind] < self.sizes[kind]
                and sum(self._launching.values()) < self._max_launches
                and now >= self._retry_at[kind]
            ):
                if not self._reserve():
                    return  # every slot is taken: sessions come first
                self._launching[kind] += 1
                thread = threading.Thread(target=self._launch, args=(kind,), name=f"pool-{kind}", daemon=True)
                self._threads.add(thread)
                thread.start()

    def _launch(self, kind: str) -> None:
        unit = None
        try:
            unit = self._make(kind)
        except Exception as exc:  # noqa: BLE001 - reported, retried later
            logger.warning("pool: could not start a %s: %s", kind, exc)
        with self._cond:
            self._launching[kind] -= 1
            self._threads.discard(threading.current_thread())
            keep = unit is not None and not self._draining
            if keep:
                self._ready[kind].append(unit)
            elif unit is None:
                self._retry_at[kind] = time.monotonic() + RETRY_AFTER
            self._cond.notify_all()
        if unit is None:
            self._release()
        elif not keep:
            self._end(unit)

    def _sweep(self) -> None:
        """End idle units whose processes or socket died, or that do not answer a BiDi question
        (asked outside the lock: a unit handed out meanwhile is its session's, and kept)."""
        with self._cond:
            idle = [unit for queue in self._ready.values() for unit in queue]
        failed = [unit for unit in idle if not (unit.running() and unit.answers())]
        with self._cond:
            dead = [unit for unit in failed if unit in self._ready[unit.kind]]
            for unit in dead:
                self._ready[unit.kind].remove(unit)
            if dead:
                self._cond.notify_all()
        for unit in dead:
            self._discard(unit)

    def _discard(self, unit: Unit) -> None:
        logger.warning("pool: an idle %s died; discarded", unit.kind)
        self._count(unit.kind, "discarded")
        self._end(unit)

    def _count(self, kind: str, event: str) -> None:
        if self._metrics is not None:
            self._metrics.pool_events.labels(kind, event).inc()

    def _end(self, unit: Unit) -> None:
        try:
            unit.end()
        except Exception:  # noqa: BLE001 - ending is best effort; the slot is freed regardless
            logger.exception("pool: ending a %s failed", unit.kind)
        finally:
            self._release()
            with self._cond:
                self._cond.notify_all()


def unit_maker(settings: Any, gateway: Any) -> Callable[[str], Unit]:
    """How the hub's pool makes a unit: a listener of its own on the gateway, then a browser
    through it, prepared exactly as a cold open prepares one (no viewport, no upstream proxy:
    both are set at hand-out)."""

    def make(kind: str) -> Unit:
        import service.clients.browser  # noqa: F401 - the session's client: loaded now, not by the first hand-out
        from service.clients import browser_settings
        from service.clients.browser_launch import prepare
        from service.model import ClientOptions

        listener = gateway.open(f"pool-{uuid.uuid4()}", kind, None)
        try:
            options = ClientOptions(policy=settings.policy, egress=listener)
            launched = prepare(kind, options, browser_settings(settings), Deadline(settings.new_session_timeout))
        except BaseException:
            listener.close()
            raise
        return Unit(kind, launched, listener)

    return make
