"""The action frames beyond the parsing of ``protocol``, sans I/O: the table of actions and their
replies, the fields every action may carry (its own ``timeout``), the durations and choices an
action's schema cannot check alone, and the fields its reply carries.

An action's ``args`` (``protocol.Action.args``) hold its frame's fields as parsed here: ``timeout``
and ``network_idle`` in seconds (floats).
"""

from __future__ import annotations

from typing import Any

from service.config import parse_duration
from service.errors import BadRequest

ACTIONS = (
    "goto", "click", "fill", "content", "evaluate", "screenshot", "close",
    "wait_for",
)
REPLY_ACTION = {
    "goto": "goto",
    "click": "clicked",
    "fill": "filled",
    "content": "content",
    "evaluate": "evaluated",
    "screenshot": "screenshot",
    "close": "closed",
    "wait_for": "waited",
}
# actions whose client result is a dict of the reply's own fields
FIELD_REPLIES = frozenset({"wait_for"})

WAIT_KINDS = ("selector", "text", "url", "script", "network_idle")


def _seconds(name: str, field: str, text: str, low: float, high: float) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:  # the schema's pattern passed, but the value overflows
        raise BadRequest(f"invalid {name} frame at $.{field}: {exc}") from exc
    if not low < value <= high:
        raise BadRequest(f"invalid {name} frame at $.{field}: {text!r} must be more than {low:g} and at most {high:g}s")
    return value


def parse_args(name: str, args: dict[str, Any], max_timeout: float) -> dict[str, Any]:
    """``args`` of a frame that passed its schema, with durations in seconds and defaults set."""
    if "timeout" in args:
        args["timeout"] = _seconds(name, "timeout", args["timeout"], 0, max_timeout)
    if name == "wait_for":
        args["kind"] = next(kind for kind in WAIT_KINDS if kind in args)
        if "network_idle" in args:
            args["network_idle"] = _seconds(name, "network_idle", args["network_idle"], 0, max_timeout)
        if "selector" in args:
            args.setdefault("state", "visible")
    return args


def reply_fields(name: str, value: Any) -> dict[str, Any]:
    """The fields a ``FIELD_REPLIES`` action's reply carries beside its ``action`` and ``id``."""
    if not isinstance(value, dict):
        raise ValueError(f"{name}: the client gave {type(value).__name__}, not the reply's fields")
    return dict(value)
