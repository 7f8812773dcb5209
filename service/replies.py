"""Frames out: typed results in, text out (the protocol's other half, ``service.protocol``).

The reply frame of each action, the error frame, the open and resume replies, and ``encode``,
which writes a frame as JSON text and splices an already-checked JSON result (``RawJson``) in
as it is. The shapes are the response schemas in ``schemas/`` (``Protocol.validate_outgoing``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service import action_frames
from service.clients.base import Cookie, GotoResult
from service.errors import ServiceError
from service.model import RawJson

if TYPE_CHECKING:
    from service.protocol import Action


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _with_id(frame: dict[str, Any], action_id: str | int | None) -> dict[str, Any]:
    if action_id is not None:
        frame["id"] = action_id
    return frame


def cookie_frame(cookie: Cookie) -> dict[str, Any]:
    return {key: value for key, value in vars(cookie).items() if value is not None}


def goto_reply(result: GotoResult, action_id: str | int | None = None) -> dict[str, Any]:
    return _with_id(
        {
            "action": "goto",
            "url": result.url,
            "status_code": result.status_code,
            "headers": [[name, value] for name, value in result.headers],
            "cookies": [cookie_frame(cookie) for cookie in result.cookies],
            "body": _b64(result.body) if result.body else None,
            "redirects": [vars(hop).copy() for hop in result.redirects],
            "content_type": result.content_type,
        },
        action_id,
    )


@dataclass(frozen=True)
class WithDownloads:
    """An action's result and the downloads its reply lists (``actions.perform``)."""

    value: Any
    downloads: list[dict[str, Any]]


def reply(action: Action, value: Any = None) -> dict[str, Any]:
    """The response frame for ``action`` given what the client returned; its ``downloads``,
    when it has any, after the action's own fields."""
    if isinstance(value, WithDownloads):
        return {**reply(action, value.value), "downloads": value.downloads}
    frame: dict[str, Any] = {"action": action.reply_action}
    if action.name == "content":
        frame["content"] = _b64(value or b"")
    elif action.name == "evaluate":
        frame["result"] = value
    elif action.name == "screenshot":
        frame["screenshot"] = _b64(value) if value is not None else None
    elif action.name == "pdf":
        frame["pdf"] = _b64(value or b"")
    elif action.name == "goto":
        return goto_reply(value, action.id)
    elif action.name in action_frames.FIELD_REPLIES:
        frame.update(action_frames.reply_fields(action.name, value))
    return _with_id(frame, action.id)


MAX_MESSAGE = 4000  # characters of an error message: a page can put its own text in one


def error_frame(error: ServiceError, action_id: str | int | None = None, fatal: bool | None = None) -> dict[str, Any]:
    """The error frame for ``error``; its ``id`` is ``action_id`` or else the error's own. The
    message is clipped to ``MAX_MESSAGE`` characters (a page's text can reach one: a tag name)."""
    is_fatal = error.fatal if fatal is None else fatal
    action_id = error.action_id if action_id is None and not is_fatal else action_id
    message = error.message
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]}... ({len(message)} characters)"
    frame = {"type": "fatal" if is_fatal else "error", "message": message, "code": error.code}
    if error.resumable:
        frame["resumable"] = True
    return _with_id(frame, action_id)


def session_opened(session_id: str, resume_token: str) -> dict[str, Any]:
    return {"session_id": session_id, "resume_token": resume_token}


def session_resumed(session_id: str, resume_token: str, last_received: str | int | None) -> dict[str, Any]:
    return {"session_id": session_id, "resumed": True, "resume_token": resume_token, "last_received": last_received}


def encode(frame: Mapping[str, Any]) -> str:
    raw = [(key, value) for key, value in frame.items() if isinstance(value, RawJson)]
    if not raw:
        return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    rest = {key: value for key, value in frame.items() if not isinstance(value, RawJson)}
    head = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)[:-1]
    spliced = ",".join(json.dumps(key, ensure_ascii=False) + ":" + value.strip() for key, value in raw)
    return head + ("," if rest else "") + spliced + "}"
