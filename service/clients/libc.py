"""The C library's calls that Python's standard library lacks (prctl, umount2, mount, inotify),
each resolved once, in the parent process (never looked up in a forked child)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any


def function(name: str, argtypes: list[Any], restype: Any = ctypes.c_int) -> Callable[..., int] | None:
    """libc's ``name`` with its C signature (errno kept for ``ctypes.get_errno``), or None where
    there is no such library or call."""
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        call = getattr(ctypes.CDLL(path, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    call.argtypes = argtypes
    call.restype = restype
    return call
