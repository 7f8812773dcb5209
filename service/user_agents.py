"""``user_agent`` keywords -> the exact User-Agent string a goto sends.

``inndx`` (the default) is an honest bot string naming the service and its version;
``chrome``, ``firefox`` and ``safari`` are current, realistic desktop strings drawn by
browserforge from the fingerprint data shipped in its wheel; ``random`` is one of those three,
drawn per goto. Anything else is sent verbatim.
"""

from __future__ import annotations

import functools
import random as _random

from service import __version__

INNDX = f"Mozilla/5.0 (compatible; inndx/{__version__}; sessions bot)"
BROWSER_KEYWORDS = ("chrome", "firefox", "safari")
_OPERATING_SYSTEMS = {"chrome": ("windows", "macos"), "firefox": ("windows", "macos"), "safari": ("macos",)}


@functools.cache
def _generator():
    from browserforge.headers import HeaderGenerator  # loads its data set once, on first use

    return HeaderGenerator(device="desktop")


def resolve(keyword: str, rng: _random.Random | None = None) -> str:
    if keyword == "inndx":
        return INNDX
    if keyword == "random":
        keyword = (rng or _random).choice(BROWSER_KEYWORDS)
    if keyword in BROWSER_KEYWORDS:
        headers = _generator().generate(browser=keyword, os=_OPERATING_SYSTEMS[keyword])
        return headers["User-Agent"]
    return keyword
