"""The wire protocol, sans I/O: text in, typed frames out; typed results in, text out.

No sockets, no Flask, no Selenium: everything here is tested with plain strings. The JSON
Schemas in ``schemas/`` are the single source of truth for frame shapes; this module loads them
once (``Protocol()``), validates every incoming frame against its schema, and checks the few
rules a schema cannot say (base64 bodies, duration bounds).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import referencing
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing.jsonschema import DRAFT202012

from service import action_frames, hosts
from service.action_frames import ACTIONS, REPLY_ACTION  # noqa: F401 - the table lives there
from service.clients.base import Cookie, Viewport
from service.config import Settings, parse_duration
from service.errors import BadRequest, ServiceError, TooLarge
from service.model import StorageState

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_BASE = "https://inndx.invalid/schemas/"

CLIENT_KINDS = ("standard", "chrome", "firefox")


# ---------------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class OpenFrame:
    client: str = "standard"
    viewport: Viewport | None = None
    middleware: tuple[Mapping[str, Any], ...] = ()
    proxies: tuple[str, ...] = ()
    timeout: float = 30.0
    max_redirects: int = 10
    max_retries: int = 3
    storage_state: StorageState | None = None


@dataclass(frozen=True)
class ResumeFrame:
    """The first frame of a socket that takes a parked session over (``service.resume``)."""

    session_id: str
    token: str = field(repr=False)
    last_id: str | int | None = None
    has_last_id: bool = False


@dataclass(frozen=True)
class Action:
    """One validated action frame. ``args`` holds its fields with defaults applied; ``body`` of
    a goto is already decoded to bytes."""

    name: str
    id: str | int | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    size: int = field(default=0, compare=False)  # the frame's size in bytes, as it arrived

    @property
    def reply_action(self) -> str:
        return REPLY_ACTION[self.name]


@dataclass(frozen=True)
class OversizedFrame:
    """A frame the socket layer dropped unread because it went over the size limit: only its
    size in bytes is known. It is answered 413 in its turn like any other frame."""

    size: int


ID_RANGE = range(-(2**63), 2**63)  # an integer id is a signed 64-bit integer


# ------------------------------------------------------------------------------------ validation


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (``"\\ud800"``): it cannot be encoded."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_VALUES = 20_000  # JSON values in one frame; the largest valid frame holds about 13,000


def _check_values(frame: Any) -> None:
    """Bounds the work a frame can cause before the schema sees it (a frame of a million tiny
    headers took minutes to validate), and checks that every string of the frame, keys included,
    is valid Unicode: JSON lets a client escape a lone surrogate, which nothing downstream
    (HTTP, browsers, our own replies) can carry."""
    stack: list[tuple[Any, str]] = [(frame, "$")]
    count = 0
    while stack:
        value, path = stack.pop()
        count += 1
        if count > MAX_VALUES or (isinstance(value, (dict, list)) and len(value) > MAX_VALUES):
            raise BadRequest(f"invalid frame at {path}: a frame may hold at most {MAX_VALUES} JSON values")
        if isinstance(value, str):
            if not _is_unicode(value):
                raise BadRequest(f"invalid frame at {path}: the string holds a lone surrogate (not valid Unicode)")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_unicode(key):
                    raise BadRequest(f"invalid frame at {path}: a key holds a lone surrogate (not valid Unicode)")
                stack.append((item, f"{path}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(value))


def check_url(url: str, frame: str) -> None:
    """What the schema's pattern cannot say about an absolute http(s) URL: it parses, its port
    is a port, it names a host that ``hosts.ascii_host`` accepts (labels, lengths, IDNA), and it
    holds no whitespace or control character."""
    where = f"invalid {frame} frame at $.url"
    if any(ord(char) <= 0x20 or 0x7F <= ord(char) <= 0x9F for char in url):
        raise BadRequest(f"{where}: the URL holds whitespace or a control character")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise BadRequest(f"{where}: not a valid URL ({exc})") from exc
    if not parts.hostname:
        raise BadRequest(f"{where}: the URL names no host")
    try:
        hosts.ascii_host(parts.hostname)
    except ValueError as exc:
        raise BadRequest(f"{where}: {exc}") from None


def _load_schemas(directory: Path) -> dict[str, dict]:
    schemas = {}
    # Frames in schemas/*.json; middleware types in schemas/middleware/*.json, registered under
    # their relative path ("middleware/headers.json") so $refs resolve against one base.
    for path in sorted([*directory.glob("*.json"), *directory.glob("middleware/*.json")]):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        schemas[path.relative_to(directory).as_posix()] = schema
    return schemas


def _explain(error: jsonschema.ValidationError) -> str:
    """The schema's own words where a bare pattern would be cryptic."""
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator in ("pattern", "not") and description:
        return f"{_SHORT.repr(error.instance)} is not {description}"
    if error.validator in ("oneOf", "anyOf", "dependentRequired"):
        outer = error  # a rule's words are on the schema that states it, or on one around it
        while not description and outer.parent is not None:
            outer = outer.parent
            description = outer.schema.get("description") if isinstance(outer.schema, dict) else None
        if description:
            return f"{_SHORT.repr(error.instance)} is not {description}"
    if error.validator in ("maxLength", "maxItems", "maxProperties"):
        return f"{_SHORT.repr(error.instance)} is too long (at most {error.validator_value})"
    return error.message if len(error.message) <= 300 else error.message[:300] + "..."


_SHORT = reprlib.Repr()  # an error message quotes the offending value, never all of it
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxdict = 4


class Protocol:
    """Validators for every frame, built once. Thread-safe (validators keep no state)."""

    def __init__(
        self,
        schema_dir: Path = SCHEMA_DIR,
        default_timeout: float = 30.0,
        max_timeout: float = 300.0,
        max_upload_bytes: int = action_frames.DEFAULT_MAX_UPLOAD_BYTES,
    ):
        schemas = _load_schemas(schema_dir)
        registry = referencing.Registry().with_resources(
            (SCHEMA_BASE + name, DRAFT202012.create_resource(schema)) for name, schema in schemas.items()
        )
        checker = Draft202012Validator.FORMAT_CHECKER
        self._validators = {
            name.removesuffix(".json"): Draft202012Validator(schema, registry=registry, format_checker=checker)
            for name, schema in schemas.items()
        }
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout
        self.max_upload_bytes = max_upload_bytes

    @classmethod
    def for_settings(cls, settings: Settings) -> Protocol:
        """The operator's bounds: default and maximum timeouts, the upload bound."""
        return cls(
            default_timeout=settings.default_timeout,
            max_timeout=settings.max_timeout,
            max_upload_bytes=settings.max_upload_bytes,
        )

    # -- incoming

    def _validate(self, schema: str, frame: Any) -> None:
        error = best_match(self._validators[schema].iter_errors(frame))
        if error is not None:
            raise BadRequest(f"invalid {schema.split('.')[0]} frame at {error.json_path}: {_explain(error)}")

    def receive(self, data: str | bytes | OversizedFrame, max_bytes: int) -> Action:
        """One incoming action frame -> ``Action``: its size in bytes, its JSON, its id and its
        schema, checked here and only here. Any problem raises a ``ServiceError`` (400 or 413)
        whose ``action_id`` is the frame's id when the frame had a readable one."""
        if isinstance(data, OversizedFrame):
            raise TooLarge(f"frame of {data.size} bytes is over the {max_bytes}-byte limit")
        check_size(data, max_bytes)
        frame = self.decode_json(data)
        action_id = self.peek_id(frame)
        try:
            _check_values(frame)
            action = self.parse_action(frame)
            if action.name == "goto":
                check_url(action.args["url"], "goto")
        except ServiceError as error:
            error.action_id = action_id
            raise
        return dataclasses.replace(action, size=frame_size(data))

    @staticmethod
    def decode_json(data: str | bytes) -> Any:
        if isinstance(data, bytes):
            raise BadRequest("binary frames are not accepted: send JSON text frames")
        try:
            return json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"frame is not valid JSON: {exc}") from exc

    def parse_open(self, data: str | bytes | OversizedFrame, max_bytes: int | None = None) -> OpenFrame | ResumeFrame:
        """The first frame: an open frame, or a resume frame (it has ``resume``). Any error here
        is fatal (400 or 413) for the caller."""
        if isinstance(data, OversizedFrame):
            raise TooLarge(f"open frame of {data.size} bytes is over the {max_bytes}-byte limit", fatal=True)
        if max_bytes is not None:
            check_size(data, max_bytes)
        frame = self.decode_json(data)
        _check_values(frame)
        if isinstance(frame, dict) and "action" in frame:
            raise BadRequest("expected the open frame first, got an action frame")
        if isinstance(frame, dict) and "resume" in frame:
            self._validate("resume.request", frame)
            if isinstance(frame.get("last_id"), float):  # the schema's "integer" admits 1.0
                raise BadRequest(f"invalid resume frame at $.last_id: {frame['last_id']!r} is not a string or an integer")
            return ResumeFrame(frame["resume"], frame["resume_token"], frame.get("last_id"), "last_id" in frame)
        self._validate("open.request", frame)
        client = frame.get("client", "standard")
        viewport = None
        if isinstance(client, dict):
            if "viewport" in client:
                viewport = Viewport(**client["viewport"])
            client = client["kind"]
        try:
            timeout = parse_duration(frame["timeout"]) if "timeout" in frame else self.default_timeout
        except ValueError as exc:  # the schema's pattern passed, but the value overflows
            raise BadRequest(f"invalid open frame at $.timeout: {exc}") from exc
        if not 0 < timeout <= self.max_timeout:
            raise BadRequest(
                f"invalid open frame at $.timeout: {frame['timeout']!r} must be more than 0"
                f" and at most {self.max_timeout:g}s"
            )
        return OpenFrame(
            client=client,
            viewport=viewport,
            middleware=tuple(frame.get("middleware", ())),
            proxies=tuple(frame.get("proxies", ())),
            timeout=timeout,
            max_redirects=frame.get("max_redirects", 10),
            max_retries=frame.get("max_retries", 3),
            storage_state=action_frames.parse_state(frame.get("storage_state")),
        )

    @staticmethod
    def peek_id(frame: Any) -> str | int | None:
        """The frame's ``id`` when it has a valid one, so even an invalid frame's error echoes it."""
        if isinstance(frame, dict):
            value = frame.get("id")
            if isinstance(value, str) and len(value) <= 128 and _is_unicode(value):
                return value
            if isinstance(value, int) and not isinstance(value, bool) and value in ID_RANGE:
                return value
        return None

    def parse_action(self, frame: Any) -> Action:
        """A decoded action frame -> ``Action``; ``BadRequest`` naming the offending field."""
        if not isinstance(frame, dict):
            raise BadRequest(f"invalid frame at $: expected a JSON object, got {type(frame).__name__}")
        name = frame.get("action")
        if name not in ACTIONS:
            if name is None:
                raise BadRequest("invalid frame at $.action: 'action' is a required property")
            raise BadRequest(f"invalid frame at $.action: unknown action {name!r}; expected one of {', '.join(ACTIONS)}")
        self._validate(f"{name}.request", frame)
        if isinstance(frame.get("id"), float):  # the schema's "integer" admits 1.0
            raise BadRequest(f"invalid {name} frame at $.id: {frame['id']!r} is not a string or an integer")
        args = {key: value for key, value in frame.items() if key not in ("action", "id")}
        if name == "goto":
            args = self._goto_args(args)
        args = action_frames.parse_args(name, args, self.max_timeout, self.max_upload_bytes)
        return Action(name=name, id=frame.get("id"), args=args)

    @staticmethod
    def _goto_args(args: dict[str, Any]) -> dict[str, Any]:
        body = args.get("body")
        if body is not None:
            try:
                body = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadRequest(f"invalid goto frame at $.body: not valid base64 ({exc})") from exc
        return {
            "url": args["url"],
            "method": args.get("method", "GET"),
            "referrer": args.get("referrer"),
            "user_agent": args.get("user_agent", "inndx"),
            "headers": tuple((name, value) for name, value in args.get("headers", ())),
            "cookies": tuple(Cookie(**cookie) for cookie in args.get("cookies", ())),
            "body": body,
            **({"timeout": args["timeout"]} if "timeout" in args else {}),
        }

    # -- outgoing

    def validate_outgoing(self, frame: Mapping[str, Any]) -> None:
        """Check a frame the server is about to send (used by tests and in debug runs)."""
        self._validate(schema_for_server_frame(frame), frame)


def schema_for_server_frame(frame: Mapping[str, Any]) -> str:
    if "type" in frame:
        return "error"
    if "session_id" in frame:
        return "resume.response" if "resumed" in frame else "open.response"
    for request, reply in REPLY_ACTION.items():
        if frame.get("action") == reply:
            return f"{request}.response"
    raise ValueError(f"not a server frame: {frame!r}")


def frame_size(data: str | bytes) -> int:
    """A frame's size in bytes as it travelled (UTF-8), whatever Python holds it as."""
    return len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)


def check_size(data: str | bytes, limit: int) -> None:
    size = frame_size(data)
    if size > limit:
        raise TooLarge(f"frame of {size} bytes is over the {limit}-byte limit")
