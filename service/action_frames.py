"""The action frames beyond the parsing of ``protocol``, sans I/O: the table of actions and their
replies, the fields every action may carry (its own ``timeout``), the durations and choices an
action's schema cannot check alone, and the fields its reply carries.

An action's ``args`` (``protocol.Action.args``) hold its frame's fields as parsed here: ``timeout``
and ``network_idle`` in seconds (floats), an upload's ``files`` as ``UploadFile``s, their bytes
decoded, after their total was weighed against the bound (413 past it, before any is decoded).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.config import parse_duration
from service.errors import BadRequest, TooLarge
from service.model import Cookie, StorageState, UploadFile

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def action_table(directory: Path = SCHEMA_DIR) -> dict[str, str]:
    """``{action: its reply's action}``, read from the schemas: each ``<name>.request.json`` whose
    ``action`` is a constant, and its ``<name>.response.json``'s. The one list of actions: adding
    one is adding its two schema files (then its call in ``actions.CALLS``)."""
    table = {}
    for path in sorted(directory.glob("*.request.json")):
        action = json.loads(path.read_text(encoding="utf-8")).get("properties", {}).get("action", {}).get("const")
        if action is None:  # the open and resume frames
            continue
        response = json.loads((directory / f"{action}.response.json").read_text(encoding="utf-8"))
        table[action] = response["properties"]["action"]["const"]
    return table


REPLY_ACTION = action_table()
ACTIONS = tuple(REPLY_ACTION)
# actions whose client result is a dict of the reply's own fields
FIELD_REPLIES = frozenset({"wait_for", "scroll", "cookies", "storage_state", "har", "download"})
# replies that never list the session's downloads (``browser_download_files``)
NO_DOWNLOADS = frozenset({"close", "download"})

WAIT_KINDS = ("selector", "text", "url", "script", "network_idle")

# Key names (as in KeyboardEvent.key, with a few common aliases) -> WebDriver's key values
_NAMED = {
    "Backspace": "\ue003", "Tab": "\ue004", "Enter": "\ue007", "Shift": "\ue008",
    "Control": "\ue009", "Alt": "\ue00a", "Pause": "\ue00b", "Escape": "\ue00c", "Space": " ",
    "PageUp": "\ue00e", "PageDown": "\ue00f", "End": "\ue010", "Home": "\ue011",
    "ArrowLeft": "\ue012", "ArrowUp": "\ue013", "ArrowRight": "\ue014", "ArrowDown": "\ue015",
    "Insert": "\ue016", "Delete": "\ue017", "Meta": "\ue03d",
    **{f"F{n}": chr(0xE030 + n) for n in range(1, 13)},
}
_ALIASES = {"Ctrl": "Control", "Esc": "Escape", "Return": "Enter", "Cmd": "Meta", "Command": "Meta", "Option": "Alt",
            "Up": "ArrowUp", "Down": "ArrowDown", "Left": "ArrowLeft", "Right": "ArrowRight", "Del": "Delete"}
KEY_NAMES = {name.lower(): value for name, value in _NAMED.items()} | {
    alias.lower(): _NAMED[name] for alias, name in _ALIASES.items()
}


def parse_keys(text: str) -> list[str]:
    """``"Control+Shift+K"`` -> WebDriver key values, pressed in order and released in reverse.
    A part is one character or a key name (case-insensitive); ``"+"`` itself is written last
    (``"Control++"``)."""
    parts = ["+"] if text == "+" else text.split("+")
    if text.endswith("++"):
        parts = [*parts[:-2], "+"]
    keys = []
    for part in parts:
        if len(part) == 1:
            keys.append(part)
        elif part.lower() in KEY_NAMES:
            keys.append(KEY_NAMES[part.lower()])
        else:
            where = "an empty key" if part == "" else f"unknown key {part[:40]!r}"
            raise BadRequest(
                f"invalid press frame at $.keys: {where}; a key is one character or a name such as"
                " Enter, Tab, Escape, Backspace, ArrowDown, Control, Shift, Alt, Meta, F1"
            )
    if len(keys) > 1:  # a letter in a chord is its key: "Control+A" is Control and a, Shift+a is A
        shifted = _NAMED["Shift"] in keys
        keys = [(k.upper() if shifted else k.lower()) if k.isascii() and k.isalpha() else k for k in keys]
    if len(keys) > 16:
        raise BadRequest("invalid press frame at $.keys: a chord of at most 16 keys")
    return keys


def _seconds(name: str, field: str, text: str, low: float, high: float) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:  # the schema's pattern passed, but the value overflows
        raise BadRequest(f"invalid {name} frame at $.{field}: {exc}") from exc
    if not low < value <= high:
        raise BadRequest(f"invalid {name} frame at $.{field}: {text!r} must be more than {low:g} and at most {high:g}s")
    return value


DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # Settings.max_upload_bytes' default


def _base64_size(text: str) -> int:
    """The bytes ``text`` decodes to, were it valid base64 (checked when it is decoded)."""
    return len(text) // 4 * 3 - (len(text) - len(text.rstrip("=")) if len(text) % 4 == 0 else 0)


def parse_files(files: list[dict[str, Any]], max_bytes: int) -> tuple[UploadFile, ...]:
    """An upload's files: their total weighed against ``max_bytes`` first (413), then each
    decoded (400 naming the file whose content is not base64). An empty content is an empty file."""
    total = sum(_base64_size(entry["content"]) for entry in files)
    if total > max_bytes:
        raise TooLarge(
            f"invalid upload frame at $.files: {total} bytes of files, over the {max_bytes}-byte upload limit"
            " (INNDX_MAX_UPLOAD_BYTES)"
        )
    parsed = []
    for index, entry in enumerate(files):
        try:
            content = base64.b64decode(entry["content"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"invalid upload frame at $.files[{index}].content: not valid base64 ({exc})") from exc
        mime_type = entry.get("mime_type")  # a media type is case-insensitive; a File keeps it in lower case
        parsed.append(UploadFile(name=entry["name"], content=content, mime_type=mime_type and mime_type.lower()))
    return tuple(parsed)


def parse_args(
    name: str, args: dict[str, Any], max_timeout: float, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
) -> dict[str, Any]:
    """``args`` of a frame that passed its schema, with durations in seconds and defaults set."""
    if "timeout" in args:
        args["timeout"] = _seconds(name, "timeout", args["timeout"], 0, max_timeout)
    if name == "set_cookies":
        args["cookies"] = tuple(Cookie(**cookie) for cookie in args["cookies"])
    if name == "upload":
        args["files"] = parse_files(args["files"], max_upload_bytes)
    if name == "press":
        args["key_values"] = parse_keys(args["keys"])
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


def parse_state(raw: Mapping[str, Any] | None) -> StorageState | None:
    """The open frame's ``storage_state`` (already checked by its schema) as a ``StorageState``."""
    if raw is None:
        return None
    origins = tuple(
        (entry["origin"], tuple((key, value) for key, value in entry["local_storage"])) for entry in raw.get("origins", ())
    )
    return StorageState(cookies=tuple(Cookie(**cookie) for cookie in raw.get("cookies", ())), origins=origins)
