"""Python values to BiDi LocalValues and back from the RemoteValues our page helpers return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Node:
    """An argument that is a DOM node our helpers found (its BiDi shared id): the function gets
    the element itself."""

    shared_id: str


def local_value(value: Any) -> dict:
    if isinstance(value, Node):
        return {"sharedId": value.shared_id}
    if value is None:
        return {"type": "null"}
    if isinstance(value, (list, tuple)):
        return {"type": "array", "value": [local_value(item) for item in value]}
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, (int, float)):
        return {"type": "number", "value": value}
    return {"type": "string", "value": str(value)}


def from_remote(value: dict) -> Any:
    """A BiDi RemoteValue of the shapes our helpers return -> Python (a DOM node: its shared id,
    which WebDriver classic also takes as the element's reference)."""
    kind = value.get("type")
    if kind in ("string", "number", "boolean"):
        return value.get("value")
    if kind == "node":
        return value.get("sharedId")
    if kind == "object":
        return {k: from_remote(v) for k, v in value.get("value") or []}
    if kind == "array":
        return [from_remote(v) for v in value.get("value") or []]
    return None
