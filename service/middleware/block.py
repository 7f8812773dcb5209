"""``block``: sub-resource requests failed before they leave the browser; the standard client
refuses a goto whose URL matches (``service.blocking`` holds the rules clients enforce)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.blocking import UNSAYABLE, Block
from service.errors import BadRequest
from service.middleware.draft import Draft
from service.model import Cookie


def build_step(step: Mapping[str, Any], where: str, draft: Draft) -> None:
    patterns = step.get("url_patterns", ())
    for position, pattern in enumerate(patterns):
        if draft.client == "chrome" and UNSAYABLE & set(pattern):
            # Chrome blocks through declarativeNetRequest, whose urlFilter gives | and ^ a
            # meaning of their own, with no escape (clients/chrome_blocking.py)
            raise BadRequest(
                f"invalid open frame at {where}.url_patterns[{position}]: a Chrome block pattern cannot hold '|' or '^'",
                fatal=True,
            )
    draft.blocks.append(Block.build(patterns, step.get("resource_types", ())))


def apply(step: Mapping[str, Any], headers: list[tuple[str, str]], cookies: list[Cookie]) -> list[tuple[str, str]]:
    return headers  # enforced by the fetch client, not on the request
