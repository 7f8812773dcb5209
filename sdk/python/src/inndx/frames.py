"""Action frames from Python arguments, and replies to Python values: the thin mapping itself."""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

from inndx.results import Cookie, Download, GotoResult, decode_base64


def duration(value: str | float | int | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return f"{value:g}s"


def pairs(headers: Mapping[str, str] | Iterable[Iterable[str]] | None) -> list[list[str]] | None:
    if headers is None:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [[name, value] for name, value in items]


def cookie(value: Cookie | Mapping[str, Any]) -> dict[str, Any]:
    data = dataclasses.asdict(value) if isinstance(value, Cookie) else dict(value)
    return {k: v for k, v in data.items() if v is not None}


def without_none(frame: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in frame.items() if v is not None}


def goto_frame(url, method, headers, body, cookies, referrer, user_agent) -> dict[str, Any]:
    """The goto frame: ``headers`` a mapping or pairs, ``body`` bytes or str (UTF-8), cookies as given."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return without_none({
        "action": "goto", "url": url, "method": method, "headers": pairs(headers),
        "body": base64.b64encode(body).decode("ascii") if body is not None else None,
        "cookies": [cookie(c) for c in cookies] if cookies is not None else None,
        "referrer": referrer, "user_agent": user_agent,
    })


UploadEntry = tuple[str, bytes | str] | tuple[str, bytes | str, str] | Mapping[str, Any] | os.PathLike


def upload_file(entry: UploadEntry) -> dict[str, Any]:
    """One file of an upload frame from ``(name, content[, mime_type])``, a mapping with ``name``,
    ``content`` and ``mime_type``, or a path of this machine (its base name, its bytes). Content is
    bytes, or str (UTF-8)."""
    if isinstance(entry, os.PathLike):
        path = os.fspath(entry)
        with open(path, "rb") as source:
            name, content, mime_type = os.path.basename(path), source.read(), None
    elif isinstance(entry, Mapping):
        name, content, mime_type = entry["name"], entry["content"], entry.get("mime_type")
    else:
        name, content, mime_type = (*entry, None)[:3]
    if isinstance(content, str):
        content = content.encode("utf-8")
    return without_none({"name": name, "mime_type": mime_type, "content": base64.b64encode(content).decode("ascii")})


def nothing(_reply: dict[str, Any]) -> None:
    return None


def content(reply: dict[str, Any]) -> bytes:
    return decode_base64(reply.get("content"))


def evaluated(reply: dict[str, Any]) -> Any:
    return reply.get("result")


def screenshot(reply: dict[str, Any]) -> bytes | None:
    return decode_base64(reply["screenshot"]) if reply.get("screenshot") else None


def waited(reply: dict[str, Any]) -> int:
    return int(reply.get("elapsed_ms", 0))


def scrolled(reply: dict[str, Any]) -> tuple[float, float]:
    return reply.get("x", 0), reply.get("y", 0)


def pdf(reply: dict[str, Any]) -> bytes:
    return decode_base64(reply.get("pdf"))


def downloads(reply: dict[str, Any]) -> list[Download]:
    """The downloads a reply lists (any action's, on a browser)."""
    items = reply.get("downloads")
    return [Download.from_wire(item) for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def download(reply: dict[str, Any]) -> Download:
    # the reply's own "id" is the frame's correlation id: the download's is "download_id"
    listing = {k: v for k, v in reply.items() if k != "id"} | {"id": reply.get("download_id", "")}
    return Download.from_wire(listing, decode_base64(reply.get("content")))


def cookies(reply: dict[str, Any]) -> list[Cookie]:
    return [Cookie.from_wire(c) for c in reply.get("cookies") or []]


def storage_state(reply: dict[str, Any]) -> dict[str, Any]:
    state = reply.get("state") or {}
    return {"cookies": [without_none(dict(c)) for c in state.get("cookies") or []], "origins": list(state.get("origins") or [])}


def har(reply: dict[str, Any]) -> dict[str, Any]:
    return dict(reply.get("har") or {})


goto = GotoResult.from_wire


def raw(reply: dict[str, Any]) -> dict[str, Any]:
    return reply
