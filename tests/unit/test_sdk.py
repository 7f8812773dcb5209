"""The inndx client's own logic: typed replies, error families, URLs, the CLI's arguments, and
its behaviour against a hostile WebSocket server (the real service is in tests/e2e/test_sdk.py)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import inndx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from inndx import cli, frames
from inndx.session import ws_url

from tests.support.aio_blocking import AioLoop
from tests.support.hostile_ws import HostileServer

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
OPENED = ("text", json.dumps({"session_id": "3f1c1a8e-7d0b-4a52-9b8e-6cf3c3b0f8a1"}))
GOTO = {
    "action": "goto", "id": 1, "url": "http://h/x", "status_code": 201,
    "headers": [["X-A", "1"], ["Set-Cookie", "a=1"], ["x-a", "2"]],
    "cookies": [{"name": "a", "value": "1", "domain": "h", "path": "/", "http_only": True, "secure": False}],
    "body": "AP8=", "content_type": None,
    "redirects": [{"url": "http://h/", "location": "http://h/x", "side": "server", "type": "permanent"}],
}


def test_headers_are_an_ordered_case_insensitive_multidict():
    headers = inndx.Headers([["X-A", "1"], ["B", "b"], ["x-a", "2"]])
    assert headers["x-A"] == "1" and headers.get("missing") is None and headers.get("missing", "d") == "d"
    assert headers.get_all("X-a") == ["1", "2"] and headers.get_all("nope") == []
    assert headers.items() == [("X-A", "1"), ("B", "b"), ("x-a", "2")]
    assert list(headers) == ["X-A", "B", "x-a"] and len(headers) == 3 and "b" in headers and 3 not in headers
    with pytest.raises(KeyError):
        headers["nope"]


def test_goto_result_from_the_wire():
    result = inndx.GotoResult.from_wire(GOTO)
    assert (result.status_code, result.body, result.content_type, result.id) == (201, b"\x00\xff", None, 1)
    assert result.cookies == [inndx.Cookie("a", "1", "h", "/", None, True, False, None)]
    assert result.redirects[0].type == "permanent" and result.headers.get_all("x-a") == ["1", "2"]
    assert inndx.GotoResult.from_wire({**GOTO, "body": None}).body == b""


@pytest.mark.parametrize(
    ("code", "cls"),
    [(404, inndx.NotFound), (504, inndx.Timeout), (408, inndx.Timeout), (401, inndx.PolicyError),
     (403, inndx.PolicyError), (429, inndx.CapacityError), (503, inndx.CapacityError), (400, inndx.Error),
     (422, inndx.Error), (None, inndx.Error)],
)
def test_error_families(code, cls):
    error = inndx.error_for(code, "why", fatal=True, id="x")
    assert type(error) is cls and isinstance(error, inndx.Error)
    assert (error.code, error.message, error.fatal, error.id) == (code, "why", True, "x")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ws://h:8022", "ws://h:8022/v1/sessions/ws"),
        ("http://h:8022/", "ws://h:8022/v1/sessions/ws"),
        ("https://h", "wss://h/v1/sessions/ws"),
        ("h:8022", "ws://h:8022/v1/sessions/ws"),
        ("ws://h/v1/sessions/ws?tenant=a", "ws://h/v1/sessions/ws?tenant=a"),
    ],
)
def test_service_urls(given, expected):
    assert ws_url(given) == expected


def test_cli_arguments_default_to_the_environment(monkeypatch):
    monkeypatch.setenv("INNDX_URL", "ws://svc")
    monkeypatch.setenv("INNDX_TENANT", "t")
    args = cli.build_parser().parse_args(["goto", "http://x/", "--fill", "#a=b", "v", "--fill", "#c", "w", "--click", "#go"])
    assert (args.url, args.tenant, args.target) == ("ws://svc", "t", "http://x/")
    assert args.fill == [["#a=b", "v"], ["#c", "w"]] and args.click == ["#go"]


def test_cli_without_a_service_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv("INNDX_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["goto", "http://x/"])
    assert exited.value.code == 2 and "INNDX_URL" in capsys.readouterr().err


def test_cli_summary():
    text = cli.summary(inndx.GotoResult.from_wire(GOTO))
    assert text.splitlines()[0] == "201 http://h/x (no content type, 2 bytes)"
    assert "  redirect server permanent: http://h/ -> http://h/x" in text and "  x-a: 2" in text


# ----------------------------------------------------------------------------- hostile server
# Each case for both clients: the sync one, and the asyncio one through a blocking view.


@pytest.fixture(params=["sync", "async"])
def connect(request):
    if request.param == "sync":
        yield inndx.connect
        return
    with AioLoop() as loop:
        yield loop.connect


def test_the_open_frame_carries_exactly_the_given_fields(connect):
    closed = ("text", json.dumps({"action": "closed", "id": 1}))
    with HostileServer([("recv",), OPENED, ("recv",), closed, ("close", 1000)]) as server:
        with connect(server.url, "t", client="chrome", viewport=(800, 600), timeout=1.5, middleware=[]) as s:
            assert s.session_id.startswith("3f1c")
    assert json.loads(server.received[0]) == {
        "client": {"kind": "chrome", "viewport": {"width": 800, "height": 600}}, "timeout": "1.5s", "middleware": []}
    assert json.loads(server.received[1]) == {"action": "close", "id": 1}


def test_a_refused_upgrade_that_is_not_json_keeps_its_status(connect):
    with HostileServer([], refuse=(502, b"<html>bad gateway</html>")) as server:
        with pytest.raises(inndx.Error) as caught:
            connect(server.url, "t")
    assert caught.value.code == 502 and caught.value.fatal and "bad gateway" in caught.value.message


@pytest.mark.parametrize(
    ("steps", "check"),
    [
        ([("binary", b"\x00")], lambda e: "binary" in e.message),
        ([("text", "not json")], lambda e: "not JSON" in e.message),
        ([("text", "[1, 2]")], lambda e: "not a JSON object" in e.message),
        ([("text", json.dumps({"action": "clicked", "id": 999}))], lambda e: "no waiting action" in e.message),
        ([("drop",)], lambda e: isinstance(e, inndx.ConnectionClosed) and e.code == 1006),
        ([("close", 1011)], lambda e: isinstance(e, inndx.ConnectionClosed) and e.code == 1011),
        ([("text", json.dumps({"type": "fatal", "message": "gone", "code": 503}))],
         lambda e: isinstance(e, inndx.CapacityError) and e.fatal and e.message == "gone"),
        ([("text", json.dumps({"type": "error", "message": "broken", "code": 400}))],
         lambda e: type(e) is inndx.Error and not e.fatal and e.code == 400),
    ],
)
def test_hostile_replies_become_errors(connect, steps, check):
    with HostileServer([("recv",), OPENED, ("recv",), *steps, ("drop",)]) as server:
        s = connect(server.url, "t", reply_timeout=10)
        with pytest.raises(inndx.Error) as caught:
            s.click("#x")
        assert check(caught.value), caught.value
        s.close()


def test_a_fatal_frame_answers_every_waiting_action_and_ends_the_session(connect):
    fatal = {"type": "fatal", "message": "session expired", "code": 410}
    with HostileServer([("recv",), OPENED, ("recv",), ("recv",), ("text", json.dumps({"action": "clicked", "id": 1})),
                        ("text", json.dumps(fatal)), ("close", 1008)]) as server:
        s = connect(server.url, "t", reply_timeout=10)
        with s.pipeline() as p:
            first, second = p.click("#a"), p.click("#b")
        assert first.result() is None
        with pytest.raises(inndx.Error) as caught:
            second.result()
        assert caught.value.code == 410 and caught.value.fatal
        with pytest.raises(inndx.Error) as after:
            s.click("#c")
        assert after.value.code == 410
        s.close()
    assert server.errors == []


def test_no_reply_in_time_is_an_error(connect):
    with HostileServer([("recv",), OPENED, ("recv",), ("recv",)]) as server:
        s = connect(server.url, "t", reply_timeout=0.3)
        with pytest.raises(inndx.Error) as caught:
            s.click("#x")
        assert "no reply within" in caught.value.message
        s.close()


# ----------------------------------------------------------------------------- properties
# Frames drawn from our own schemas (definitions.json inlined, since hypothesis-jsonschema
# resolves only local references).


def _draft7(node):
    """2020-12's tuple form (``prefixItems``, ``items: false``) in draft 7's words."""
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft7(value) for key, value in node.items() if key not in ("prefixItems", "items")}
    if "prefixItems" in node:
        out["items"] = _draft7(node["prefixItems"])
        if "items" in node:
            out["additionalItems"] = _draft7(node["items"])
    elif "items" in node:
        out["items"] = _draft7(node["items"])
    return out


def _schema(name: str) -> dict:
    definitions = json.loads((SCHEMAS / "definitions.json").read_text())["$defs"]
    text = (SCHEMAS / name).read_text().replace('"definitions.json#/$defs/', '"#/$defs/')
    schema = json.loads(text)
    schema.pop("$id", None)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema.setdefault("$defs", {}).update(definitions)
    return _draft7(schema)


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(from_schema(_schema("goto.response.json")))
def test_every_goto_response_maps_faithfully(frame):
    try:
        body = base64.b64decode(frame["body"], validate=True) if frame.get("body") else b""
    except ValueError:  # the schema says base64 only as an annotation: a hostile server's body
        with pytest.raises(inndx.Error, match="not base64"):
            inndx.GotoResult.from_wire(frame)
        return
    result = inndx.GotoResult.from_wire(frame)
    assert (result.url, result.status_code) == (frame["url"], frame["status_code"])
    assert result.content_type == frame.get("content_type")
    assert result.headers.items() == [tuple(pair) for pair in frame["headers"]]
    for name, _ in frame["headers"]:
        assert result.headers.get_all(name) == [v for n, v in frame["headers"] if n.lower() == name.lower()]
    assert result.body == body
    assert [c.name for c in result.cookies] == [c["name"] for c in frame["cookies"]]
    assert [frames.cookie(c) for c in result.cookies] == [{"http_only": False, "secure": False, **c} for c in frame["cookies"]]
    assert [(r.url, r.location, r.side, r.type) for r in result.redirects] == [
        (r["url"], r["location"], r["side"], r["type"]) for r in frame["redirects"]]
    assert [vars(d) for d in result.downloads] == [{**d, "content": None} for d in frame.get("downloads", [])]


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(from_schema(_schema("download.response.json")))
def test_every_download_response_maps_faithfully(frame):
    try:
        content = base64.b64decode(frame["content"], validate=True)
    except ValueError:
        with pytest.raises(inndx.Error, match="not base64"):
            frames.download(frame)
        return
    got = frames.download(frame)
    assert isinstance(got, inndx.Download) and got.content == content
    assert (got.id, got.url, got.suggested_filename, got.mime_type, got.size, got.sha256) == (
        frame["download_id"], frame["url"], frame["suggested_filename"], frame["mime_type"], frame["size"], frame["sha256"])


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(from_schema(_schema("goto.request.json")), st.binary(max_size=64))
def test_the_client_builds_every_goto_frame_as_the_schema_has_it(frame, body):
    # the schema leaves base64 to the server's own check: the client's body is bytes anyway
    expected = {k: v for k, v in frame.items() if k != "id"}
    if "body" in frame:
        expected["body"] = base64.b64encode(body).decode("ascii")
    built = frames.goto_frame(
        frame["url"], frame.get("method"), frame.get("headers"), body if "body" in frame else None,
        frame.get("cookies"), frame.get("referrer"), frame.get("user_agent"),
    )
    if "timeout" in frame:
        built["timeout"] = frame["timeout"]  # added by Actions._act, as every action's own timeout
    assert built == expected


def test_the_client_builds_upload_frames_the_service_takes(tmp_path):
    from service import protocol

    local = tmp_path / "report.pdf"
    local.write_bytes(b"%PDF-1.4 x")
    built = [frames.upload_file(entry) for entry in (
        ("a.txt", b"\x00\xff"), ("b.txt", "é", "text/plain"), {"name": "c", "content": b""}, local,
    )]
    assert built == [
        {"name": "a.txt", "content": "AP8="},
        {"name": "b.txt", "mime_type": "text/plain", "content": "w6k="},
        {"name": "c", "content": ""},
        {"name": "report.pdf", "content": base64.b64encode(b"%PDF-1.4 x").decode()},
    ]
    frame = {"action": "upload", "selector": "#f", "files": built, "id": 1}
    action = protocol.Protocol().receive(json.dumps(frame), 1 << 20)
    assert [f.content for f in action.args["files"]] == [b"\x00\xff", "é".encode(), b"", b"%PDF-1.4 x"]


@settings(max_examples=40, deadline=None, database=None)
@given(from_schema(_schema("error.json")))
def test_every_error_frame_raises_its_family(frame):
    error = inndx.error_for(frame["code"], frame["message"], fatal=frame["type"] == "fatal", id=frame.get("id"))
    assert (error.code, error.message, error.fatal) == (frame["code"], frame["message"], frame["type"] == "fatal")
    families = {404: inndx.NotFound, 408: inndx.Timeout, 504: inndx.Timeout, 401: inndx.PolicyError,
                403: inndx.PolicyError, 429: inndx.CapacityError, 503: inndx.CapacityError}
    assert type(error) is families.get(frame["code"], inndx.Error)


@settings(max_examples=100, database=None)
@given(st.lists(st.tuples(st.text(alphabet="AaBbXx-", min_size=1, max_size=3), st.text(max_size=5)), max_size=8),
       st.text(alphabet="AaBbXx-", min_size=1, max_size=3))
def test_headers_lookup_is_the_case_insensitive_filter(pairs, name):
    headers = inndx.Headers(pairs)
    matching = [v for n, v in pairs if n.lower() == name.lower()]
    assert headers.get_all(name) == matching
    assert headers.get(name) == (matching[0] if matching else None)
    assert (name in headers) == bool(matching)


# ----------------------------------------------------------------------------- asyncio, natively


def test_async_gather_has_every_action_in_flight_at_once():
    """The server reads all three frames before it answers any: a client that waited for each
    reply before sending the next would never get one. An error without id answers the oldest."""
    replies = [("text", json.dumps({"action": "clicked", "id": 1})),
               ("text", json.dumps({"type": "error", "message": "broken", "code": 400})),
               ("text", json.dumps({"action": "evaluated", "id": 3, "result": [1, "two"]}))]
    closed = ("text", json.dumps({"action": "closed", "id": 4}))

    async def run(url: str) -> list:
        async with inndx.aio.connect(url, "t", reply_timeout=10) as s:
            return await asyncio.gather(s.click("#a"), s.content(), s.evaluate("return 1"), return_exceptions=True)

    with HostileServer([("recv",), OPENED, ("recv",), ("recv",), ("recv",), *replies, ("recv",), closed,
                        ("close", 1000)]) as server:
        results = asyncio.run(asyncio.wait_for(run(server.url), 20))
    assert results[0] is None and results[2] == [1, "two"]
    assert type(results[1]) is inndx.Error and results[1].code == 400 and not results[1].fatal
    assert [json.loads(frame)["id"] for frame in server.received[1:]] == [1, 2, 3, 4]
    assert server.errors == []
