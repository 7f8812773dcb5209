"""Mounts below a session's temp dir: ``browser_downloads`` mounts a tmpfs there as root, and
whoever removes the dir (``SessionProcesses.end``, the reaper) detaches it first."""

from __future__ import annotations

import ctypes
import os
import re

from service.clients import libc


def unmount_below(path: str) -> int:
    """Detach every mount at or below ``path`` (a session's downloads tmpfs, mounted by
    ``browser_downloads`` when the service runs as root), so the dir can be removed. Lazy
    (MNT_DETACH): a browser still holding a file there frees it when it dies. Returns how many."""
    if _umount2 is None:
        return 0
    prefix = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            points = [_unescape(line.split()[4]) for line in f if len(line.split()) > 4]
    except OSError:
        return 0
    done = 0
    for point in sorted(points, key=len, reverse=True):  # the deepest first
        if point == prefix or point.startswith(prefix + "/"):
            if _umount2(point.encode(), _MNT_DETACH) == 0:
                done += 1
    return done


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


_umount2 = libc.function("umount2", [ctypes.c_char_p, ctypes.c_int])
_MNT_DETACH = 2
