"""``headers``: set, remove, or (the older form) add defaults to every goto's request headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.middleware.draft import Draft
from service.model import Cookie


def build_step(step: Mapping[str, Any], where: str, draft: Draft) -> None:
    """Nothing to build: the step is read as it is, at every goto."""


def apply(step: Mapping[str, Any], headers: list[tuple[str, str]], cookies: list[Cookie]) -> list[tuple[str, str]]:
    if "headers" in step:  # the first form: defaults, the goto's own headers win
        present = {name.lower() for name, _ in headers}
        return headers + [(n, v) for n, v in step["headers"] if n.lower() not in present]
    for name, value in step.get("set", ()):
        headers = [(n, v) for n, v in headers if n.lower() != name.lower()] + [(name, value)]
    drop = {name.lower() for name in step.get("remove", ())}
    return [(n, v) for n, v in headers if n.lower() not in drop]
