"""``cookies``: put in the session's jar before every goto (a goto's own cookie of a name wins)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.middleware.draft import Draft
from service.model import Cookie


def build_step(step: Mapping[str, Any], where: str, draft: Draft) -> None:
    """Nothing to build: the step is read as it is, at every goto."""


def apply(step: Mapping[str, Any], headers: list[tuple[str, str]], cookies: list[Cookie]) -> list[tuple[str, str]]:
    cookies.extend(Cookie(**c) for c in step["cookies"])
    return headers
