"""Fuzzing the live service: frames generated from our own schemas, then mutated.

``frames(site_url, max_frame_bytes)`` is a hypothesis strategy of ``Frame``s: valid action frames
(from ``schemas/*.request.json`` through hypothesis-jsonschema), the same with one mutation
(wrong types, lone surrogates, control characters, huge and negative numbers, deep nesting,
unknown or missing fields), and raw ones (binary, empty, truncated, oversized, not JSON).
Every goto points at the loopback test site; a valid ``close`` becomes a ``screenshot`` (the
session must go on). Each frame gets an integer id of its own where its shape allows one, so
the replies' order is checked as well.

``Fuzzer(ws_url, client).batch(frames)`` pipelines a batch on one session and checks every
reply: it validates against our schemas (``validate_frame``), it is never ``fatal``, never 500,
and it carries the id of the frame it answers, in order. Violations are collected, not raised.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.support.wsclient import ServerClosed, Session, connect

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ACTIONS = ("goto", "click", "fill", "content", "evaluate", "screenshot", "close", "upload")
SITE_PATHS = ("/echo", "/html", "/json", "/status/404", "/redirect/302?to=/html", "/cookies/set", "/form", "/binary")
# selectors that match on every page or do not parse: one that parses and matches nothing makes
# click and fill wait for it (5 s) before their 404, which would slow the fuzzer to a crawl
SELECTORS = ("body", "html", "#nope[", ":::", "a[")


# ------------------------------------------------------------------------------ schemas


def _inline(node: Any, defs: dict[str, Any], local: dict[str, Any]) -> Any:
    """Our schemas with every ``$ref`` replaced by its target and 2020-12's ``prefixItems``
    spelled as draft 7's tuple ``items``, which hypothesis-jsonschema understands."""
    if isinstance(node, list):
        return [_inline(item, defs, local) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        name = ref.rsplit("/", 1)[1]
        shared = ref.startswith("definitions.json")
        target = defs[name] if shared else local[name]
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs, defs if shared else local)
    out = {}
    for key, value in node.items():
        if key in ("$schema", "$id", "$defs", "default", "description", "title", "contentEncoding"):
            continue
        out["items" if key == "prefixItems" else key] = _inline(value, defs, local)
    return out


def request_schemas() -> dict[str, dict[str, Any]]:
    defs = json.loads((SCHEMAS / "definitions.json").read_text())["$defs"]
    schemas = {}
    for action in ACTIONS:
        schema = json.loads((SCHEMAS / f"{action}.request.json").read_text())
        schemas[action] = _inline(schema, defs, schema.get("$defs", {}))
    return schemas


# ------------------------------------------------------------------------------ frames


@dataclass
class Frame:
    """One frame to send: ``data`` as it goes on the wire, and the id its reply must carry
    (None: the reply must carry none, or the frame's id could not be read)."""

    data: str | bytes
    expect_id: int | None
    kind: str


def _valid(schemas: dict[str, dict[str, Any]], site_url: str) -> st.SearchStrategy[dict[str, Any]]:
    def fix(action: str, frame: dict[str, Any], path: str, selector: str) -> dict[str, Any]:
        frame = dict(frame)
        if action == "goto":
            frame["url"] = site_url.rstrip("/") + path
        if action in ("click", "fill", "upload"):
            frame["selector"] = selector
        if action == "close":
            frame = {"action": "screenshot"}
        return frame

    per_action = [
        st.builds(fix, st.just(action), from_schema(schema), st.sampled_from(SITE_PATHS), st.sampled_from(SELECTORS))
        for action, schema in schemas.items()
    ]
    return st.one_of(per_action)


_TEXT_MUTANTS = st.sampled_from([
    "\ud800", "a\udfffb", "\x00", "b\n", "\r\n", "\x7f", "\u0085", "\u2028", "\ufeff", "é" * 3, "", " ",
    "http://[x", "http://127.0.0.1:99999/", "http://127.0.0.1:-1/", "javascript:alert(1)", "long",
]).map(lambda text: "x" * 9000 if text == "long" else text)  # built here: hypothesis prints its arguments
# URLs whose host breaks a rule of service/hosts.py (an empty label, a label over 63 bytes, a
# character no host may hold, a bad A-label) beside labels of any text: each must be a 400, and
# none is ever resolved (the fuzzer reaches nothing but loopback).
_LABELS = st.lists(  # never a character that ends the host ("/", "?", "#") or marks its parts ("@", ":")
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="/?#@:\\[]"), max_size=20),
    max_size=3,
)
_BREAKS = st.sampled_from(["", "x" * 64, "é" * 60, "a%b", "a^b", "xn--zz", "a|b"])
BAD_HOST_URLS = st.builds(  # an empty label is bad but as the last one (the root's dot: "a.b.")
    lambda before, bad, after, scheme: f"{scheme}://{'.'.join([*before, bad, *after, *(['x'] if bad == '' else [])])}/",
    _LABELS, _BREAKS, _LABELS, st.sampled_from(["http", "https"]),
)
_VALUE_MUTANTS = st.one_of(
    _TEXT_MUTANTS,
    BAD_HOST_URLS,
    st.sampled_from([None, True, False, 0, -1, 1.5, 10**30, -(10**30), 2**63, [], {}, [[["x"]]], {"a": {"b": 1}}]),
    st.integers(min_value=3, max_value=900).map(lambda n: _nested(n)),
)


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*path, index)))
    return found


@st.composite
def _mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    frame = copy.deepcopy(draw(valid))
    how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "unknown", "action"]))
    paths = _paths(frame)
    if how == "unknown" or not paths:
        frame[draw(st.sampled_from(["extra", "Action", "\ud800", "id ", ""]))] = draw(_VALUE_MUTANTS)
        return frame
    if how == "action":
        frame["action"] = draw(st.one_of(_TEXT_MUTANTS, st.sampled_from(["Goto", "closed", "open", 1, None])))
        return frame
    path = draw(st.sampled_from(paths))
    parent = frame
    for step in path[:-1]:
        parent = parent[step]
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(_VALUE_MUTANTS)
    return frame


def _encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame)  # ensure_ascii: lone surrogates travel as escapes, as JSON allows


_BIG = {  # built when drawn: hypothesis prints a strategy's arguments
    "NINES": lambda: '{"action": "content", "id": ' + "9" * 5000 + "}",
    "NESTED": lambda: '{"action": "content", "x": ' + "[" * 50_000 + "]" * 50_000 + "}",
}


def _raw(max_frame_bytes: int) -> st.SearchStrategy[Frame]:
    texts = st.sampled_from([
        "", " ", "null", "[]", "1", '"x"', "{", '{"action": "content"', "{'action': 'content'}",
        '{"action": "content", "id": NaN}', '{"action": "content", "id": 1e400}',
        "NINES", "\ufeff{}", '{"action": "content"}{}',
        '{"action": "goto", "url": "http://[x"}', '{"action": "content", "id": "\\ud800"}', "NESTED",
    ]).map(lambda text: Frame(_BIG.get(text, lambda: text)(), None, "raw"))
    binary = st.binary(max_size=64).map(lambda data: Frame(data, None, "binary"))
    oversized = st.integers(min_value=1, max_value=4096).map(
        lambda extra: Frame('{"action": "content", "pad": "' + "p" * (max_frame_bytes + extra) + '"}', None, "oversized")
    )
    return st.one_of(texts, binary, oversized)


def frames(site_url: str, max_frame_bytes: int) -> st.SearchStrategy[Frame]:
    """The fuzzer's frames; ids are given out later, by ``number``."""
    valid = _valid(request_schemas(), site_url)
    return st.one_of(
        valid.map(lambda frame: Frame(_encode(frame), None, "valid")),
        _mutated(valid).map(lambda frame: Frame(_encode(frame), None, "mutated")),
        _raw(max_frame_bytes),
        BAD_HOST_URLS.map(lambda url: Frame(_encode({"action": "goto", "url": url}), None, "bad-host")),
    )


def number(batch: list[Frame], first: int) -> list[Frame]:
    """Give each JSON object frame without an id of its own the id ``first + i``, so its reply
    must carry it: the order of the replies is checked too."""
    out = []
    for offset, frame in enumerate(batch):
        data = frame.data
        if isinstance(data, str) and frame.kind in ("valid", "mutated"):
            parsed = json.loads(data)
            if isinstance(parsed, dict) and "id" not in parsed:
                parsed["id"] = first + offset
                out.append(Frame(_encode(parsed), first + offset, frame.kind))
                continue
        out.append(Frame(data, None, frame.kind))
    return out


# ------------------------------------------------------------------------------ the fuzzer


@dataclass
class Fuzzer:
    ws_url: str
    client: str
    timeout: float = 60.0
    frames_sent: int = 0
    sessions_opened: int = 0
    violations: list[str] = field(default_factory=list)
    codes: dict[int | str, int] = field(default_factory=dict)
    _session: Session | None = None
    _next_id: int = 1

    def _open(self) -> Session:
        if self._session is None or self._session.close_code is not None:
            if self._session is not None:
                self._session.close()
            self._session = connect(self.ws_url, timeout=self.timeout)
            self._session.open(client=self.client, timeout="5s", max_retries=0, max_redirects=3)
            self.sessions_opened += 1
        return self._session

    def batch(self, batch: list[Frame]) -> None:
        """Pipeline ``batch`` and check each reply in turn."""
        batch = number(batch, self._next_id)
        self._next_id += len(batch)
        session = self._open()
        for frame in batch:
            session.send(frame.data)
        self.frames_sent += len(batch)
        for frame in batch:
            try:
                reply = session.recv(timeout=self.timeout)
            except ServerClosed as closed:
                self.violations.append(f"{self.client}: the session closed ({closed.code} {closed.reason!r}) "
                                       f"while a reply to a {frame.kind} frame was due: {_brief(frame.data)}")
                return
            except AssertionError as invalid:  # the reply did not validate against our schemas
                self.violations.append(f"{self.client}: invalid reply to {_brief(frame.data)}: {invalid}")
                continue
            self._check(frame, reply)

    def _check(self, frame: Frame, reply: dict[str, Any]) -> None:
        code = reply.get("code", "ok")
        self.codes[code] = self.codes.get(code, 0) + 1
        if reply.get("type") == "fatal" or code == 500:
            self.violations.append(f"{self.client}: {reply} for a {frame.kind} frame: {_brief(frame.data)}")
        elif frame.kind == "bad-host" and (code != 400 or "$.url" not in reply.get("message", "")):
            self.violations.append(f"{self.client}: {reply} for a URL with a bad host: {_brief(frame.data)}")
        if frame.expect_id is not None and reply.get("id") != frame.expect_id:
            self.violations.append(f"{self.client}: reply {_brief(json.dumps(reply))} out of turn: expected id "
                                   f"{frame.expect_id} for {_brief(frame.data)}")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _brief(data: str | bytes) -> str:
    text = repr(data)
    return text if len(text) <= 300 else text[:300] + f"... ({len(data)} long)"
