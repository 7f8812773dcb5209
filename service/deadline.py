"""A monotonic deadline shared by the steps of one action."""

from __future__ import annotations

import time


class Deadline:
    """``Deadline(5.0)`` expires five seconds from now; ``remaining()`` never goes below zero."""

    __slots__ = ("seconds", "_end")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def __repr__(self) -> str:
        return f"Deadline({self.seconds}s, {self.remaining():.3f}s left)"
