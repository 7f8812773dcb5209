"""What the steps of an open frame's middleware build, before their ``Chain`` exists."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.blocking import Block
from service.middleware.retry_status import RetryStatus


@dataclass
class Draft:
    client: str  # the session's client kind (a step may refuse what that client cannot do)
    blocks: list[Block] = field(default_factory=list)
    retry: RetryStatus | None = None
