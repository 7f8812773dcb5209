"""The open frame's ``middleware``: a chain applied, in order, to every goto of a session.

Each type has its own schema in ``schemas/middleware/`` (the open frame refers to them) and its
own module here, listed once in ``chain.KINDS``; ``build`` turns the validated list into a
``Chain`` once, at the handshake, and the session asks the chain for every goto:

``headers`` (``headers.py``)
    ``{"type": "headers", "set": [[name, value], ...], "remove": [name, ...]}``: ``set`` replaces
    every header of that name (case-insensitive) in the goto's request, the goto's own included,
    then ``remove`` drops headers by name. The older form ``{"type": "headers", "headers": [...]}``
    still works and keeps its meaning: defaults, where a goto's own header of the same name wins.
``cookies`` (``cookies.py``)
    ``{"type": "cookies", "cookies": [Cookie, ...]}``: put in the session's jar before every goto;
    a goto's own cookie of the same name wins (it is set after).
``block`` (``block.py``)
    ``{"type": "block", "url_patterns": [...], "resource_types": [...]}``. A URL pattern is a glob
    matched against the whole URL: ``*`` stands for any run of characters (``/`` included), every
    other character for itself (``*.png``, ``http://ads.example/*``, ``*://*/tracker.js?*``).
    Browsers fail matching sub-resource requests before they leave the browser; a request
    matches when its URL matches one of the patterns (or none are given) and its type is one of
    ``resource_types`` (or none are given). The standard client fetches no sub-resources: it
    ignores ``resource_types`` and refuses a goto whose URL matches a pattern (error 403).
``retry_status`` (``retry_status.py``)
    ``{"type": "retry_status", "statuses": [429, 503], "backoff": "1s"}``: a goto whose final
    status is listed is tried again, sharing ``max_retries`` with transport retries. The wait is
    ``backoff``, doubling each time, or the response's ``Retry-After`` when it sent one; a wait
    longer than the session's timeout is not made, and that response is the goto's answer.

A new type is its schema, its module (``build_step`` and ``apply``) and one line in ``KINDS``.
"""

from __future__ import annotations

from service.blocking import RESOURCE_TYPES, UNSAYABLE, Block, BlockRules, glob, resource_type
from service.middleware.chain import KINDS, Chain, build
from service.middleware.retry_status import RetryStatus, retry_after

TYPES = tuple(KINDS)

__all__ = [
    "RESOURCE_TYPES", "TYPES", "UNSAYABLE", "Block", "BlockRules", "Chain", "RetryStatus", "build", "glob",
    "resource_type", "retry_after",
]
