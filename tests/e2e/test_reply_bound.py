"""Every reply is bounded (``INNDX_MAX_REPLY_BYTES``): an evaluate result, content, a screenshot
past the bound is a 413 in its turn, refused in the browser before it crosses to the worker, and
the session goes on.

Two services: the module's own with a small bound (``SMALL``, 1 MiB) for the edges and the hostile
pages, and the shared one (default bound, 32 MiB) for the 48 MiB results, where the worker's
memory is measured around the refusal.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from service import reply_bound
from tests.e2e.conftest import _close_quietly, service_env
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clients("chrome", "firefox")  # the standard client's one test is clientless

MIB = 1024 * 1024
SMALL = 1 * MIB
DEFAULT = 32 * MIB
BIG = 48 * MIB

# A page that paints every pixel of the viewport with noise: a PNG of it does not compress.
NOISE = """
document.body.innerHTML = "";
document.body.style.margin = "0";
const c = document.createElement("canvas");
c.width = innerWidth; c.height = innerHeight;
c.style.display = "block";
document.body.appendChild(c);
const g = c.getContext("2d"), img = g.createImageData(c.width, c.height);
let x = 2463534242;
for (let i = 0; i < img.data.length; i++) {
  x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
  img.data[i] = i % 4 === 3 ? 255 : x & 255;
}
g.putImageData(img, 0, 0);
document.documentElement.style.overflow = "hidden";
return [c.width, c.height];
"""


@pytest.fixture(scope="module")
def small_service(grid, logs: Path) -> Iterator[Service]:
    env = service_env(grid, INNDX_MAX_REPLY_BYTES=str(SMALL))
    with Service(env=env, log_dir=logs) as running:
        yield running


@pytest.fixture()
def small(small_service: Service, client: str) -> Iterator[Session]:
    """A fresh session on the small-bound service (hostile overrides die with it)."""
    session = connect(small_service.ws_url)
    try:
        session.open(client=client, timeout="30s", max_retries=0)
        yield session
    finally:
        _close_quietly(session)


def act(session: Session, frame: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    reply = session.request(frame, timeout=timeout)
    assert "type" not in reply, reply
    return reply


def refused(session: Session, frame: dict[str, Any], code: int = 413, timeout: float = 60) -> str:
    reply = session.request({**frame, "id": "x"}, timeout=timeout)
    assert reply.get("type") == "error" and reply.get("code") == code and reply.get("id") == "x", reply
    return reply["message"]


def evaluate(session: Session, script: str) -> Any:
    return act(session, {"action": "evaluate", "script": script})["result"]


def goto(session: Session, site: Site, path: str = "/html") -> None:
    assert act(session, {"action": "goto", "url": site.url(path)})["status_code"] == 200


def worker_rss(service: Service) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in service.worker_pids())


# ------------------------------------------------------------------------------- probe


class _CspHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = b"<!doctype html><html><head><title>csp</title></head><body><p>csp</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Security-Policy", "default-src 'none'; script-src 'none'")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def csp_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CspHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(10)


# ------------------------------------------------------------------------------- evaluate


def test_a_48_mib_evaluate_result_is_413_without_costing_the_worker(client, open_session, service: Service, site: Site):
    page = open_session(client, timeout="60s", max_retries=0)
    goto(page, site)
    evaluate(page, "return 1")  # the session's helpers are warm before the measure
    before = worker_rss(service)
    message = refused(page, {"action": "evaluate", "script": f"return 'x'.repeat({BIG})"})
    grown = worker_rss(service) - before
    assert f"at least {BIG + 2} bytes, over the {DEFAULT}-byte reply limit (INNDX_MAX_REPLY_BYTES)" in message
    assert grown < 8 * MIB, f"the worker grew by {grown} bytes refusing a {BIG}-byte result"
    assert evaluate(page, "return document.title") == "Test page"  # the session goes on


def test_a_result_under_the_default_bound_is_answered_whole(client, open_session, service: Service, site: Site):
    """Control for the one above: the same kind of result, under 32 MiB, crosses whole; the
    worker's growth is reported as the multiple it cost (see PROTOCOL.md, reply bound)."""
    page = open_session(client, timeout="60s", max_retries=0)
    goto(page, site)
    size = 24 * MIB
    before = worker_rss(service)
    result = evaluate(page, f"return 'y'.repeat({size})")
    grown = worker_rss(service) - before
    assert result == "y" * size
    print(f"\n{client}: a {size}-byte result grew the worker by {grown} bytes ({grown / size:.1f}x)")
    assert grown < 8 * size


def test_a_result_of_many_tiny_values_is_passed_on_without_being_built(client, open_session, service: Service, site: Site):
    """A million empty objects: 3 MB of JSON text, 72 MB as Python dicts (measured with
    tracemalloc). The service passes the checked text on as it is: the worker grows by a few
    times the text (the socket's buffers, the BiDi message, the reply frame; 6x measured), never
    by what building it would cost."""
    page = open_session(client, timeout="60s", max_retries=0)
    goto(page, site)
    count = 1_000_000
    evaluate(page, "return 1")
    before = worker_rss(service)
    result = evaluate(page, f"return Array.from({{length: {count}}}, () => ({{}}))")
    grown = worker_rss(service) - before
    assert len(result) == count and result[0] == {} and result[-1] == {}
    assert grown < 32 * MIB, f"the worker grew by {grown} bytes for a {3 * count}-byte result"


@pytest.mark.parametrize(
    ("unit", "width"),
    [("x", 1), ("\u00e9", 2), ("\u65e5", 3), ("\U0001f600", 4)],
    ids=["ascii", "two-byte", "three-byte", "four-byte"],
)
def test_a_result_at_the_bound_is_answered_and_one_byte_more_is_413(client, small: Session, site: Site, unit, width):
    """The JSON text of ``unit`` * k is 2 + width * k bytes: the largest k that fits, then one
    more unit, then a single ASCII character more when the bound leaves room for it."""
    goto(small, site)
    k = (SMALL - 2) // width
    js_unit = json.dumps(unit)
    result = evaluate(small, f"return {js_unit}.repeat({k})")
    assert result == unit * k
    message = refused(small, {"action": "evaluate", "script": f"return {js_unit}.repeat({k + 1})"})
    assert f"over the {SMALL}-byte reply limit" in message
    room = SMALL - 2 - width * k
    if room:  # the exact edge: bound - 1 bytes fit, bound bytes fit, bound + 1 do not
        assert evaluate(small, f"return {js_unit}.repeat({k}) + 'a'.repeat({room})") == unit * k + "a" * room
        refused(small, {"action": "evaluate", "script": f"return {js_unit}.repeat({k}) + 'a'.repeat({room + 1})"})
    assert evaluate(small, "return 'next'") == "next"


def test_a_script_cannot_close_the_wrapper_to_return_past_the_checks(client, small: Session, site: Site):
    goto(small, site)
    escape = f"return 1 }})(); return 'J' + 'z'.repeat({2 * SMALL}); (function() {{"
    message = refused(small, {"action": "evaluate", "script": escape}, 422)
    assert "not a function body" in message
    # control: the same string returned from inside the body is the 413 of an honest result
    refused(small, {"action": "evaluate", "script": f"return 'J' + 'z'.repeat({2 * SMALL})"})


def test_a_thrown_giant_is_clipped(client, small: Session, site: Site):
    goto(small, site)
    message = refused(small, {"action": "evaluate", "script": f"throw new Error('w'.repeat({4 * SMALL}))"}, 422)
    assert len(message) < 4000 and f"({4 * SMALL + 7} characters)" in message
    message = refused(small, {"action": "evaluate", "script": f"throw 'v'.repeat({4 * SMALL})"}, 422)
    assert len(message) < 4000
    assert evaluate(small, "return 2") == 2


HOSTILE_EVALUATE = {
    # the page's JSON.stringify answers a text past the bound
    "stringify-big": f"JSON.stringify = () => JSON.parse('1') && '\"' + 'q'.repeat({2 * SMALL}) + '\"';",
    # ... a String object whose length and toString lie
    "stringify-object": (
        f"JSON.stringify = () => {{ const s = new String('r'.repeat({2 * SMALL}));"
        " Object.defineProperty(s, 'length', {value: 1}); s.toString = () => '1'; s.valueOf = () => '1'; return s; };"
    ),
    # ... control characters: small in UTF-8, six bytes each as they cross BiDi escaped
    "stringify-controls": f"JSON.stringify = () => '\"' + '\\u0001'.repeat({SMALL // 3}) + '\"';",
    # String.prototype methods and Symbol.toPrimitive redefined (the checks call none of them)
    "prototypes": (
        f"const big = 's'.repeat({2 * SMALL});"
        " String.prototype.toString = () => '1'; String.prototype.valueOf = () => '1';"
        " String.prototype.charCodeAt = () => 0; String.prototype.slice = () => '';"
        " String.prototype[Symbol.iterator] = function* () {}; Object.prototype.toJSON = undefined;"
        " Array.prototype.push = () => 0; Function.prototype.apply = () => 1; Function.prototype.call = () => 1;"
        " JSON.stringify = () => '\"' + big + '\"';"
    ),
    # index getters on the prototypes a loop could fall into
    "index-getters": (
        "for (let i = 0; i < 8; i++) { Object.defineProperty(String.prototype, i, {get: () => 'a'});"
        " Object.defineProperty(Object.prototype, i, {get: () => 'a', set: () => {}}); }"
        f" JSON.stringify = () => '\"' + '\\u00e9'.repeat({SMALL // 2}) + '\"';"
    ),
    # ... a text that is not JSON (the service passes results on unparsed: the browser checks)
    "stringify-invalid": "JSON.stringify = () => '[1, {\"a\": 2}';",
    # an error whose message getter answers a giant (the 422 stays small)
    "error-getter": (
        f"JSON.stringify = () => {{ const e = new Error('x'); Object.defineProperty(e, 'message',"
        f" {{get: () => 'm'.repeat({4 * SMALL})}}); throw e; }};"
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE_EVALUATE))
def test_a_page_redefining_what_the_checks_could_use_gets_no_reply_past_the_bound(client, small: Session, site: Site, name):
    goto(small, site)
    assert evaluate(small, "return 'anything'") == "anything"  # control: before the overrides
    # the overrides are made in the page's world, as the page's own scripts would make them
    evaluate(small, "setTimeout(() => { " + HOSTILE_EVALUATE[name] + " }, 0); return 1")
    reply = small.request({"action": "evaluate", "script": "return 'anything'", "id": "h"}, timeout=60)
    assert reply.get("type") == "error" and reply["code"] in (413, 422), reply
    assert len(json.dumps(reply)) < 5000
    goto(small, site)  # a new document, the overrides gone: the session goes on
    assert evaluate(small, "return 'after'") == "after"


# ------------------------------------------------------------------------------- content


def test_content_of_a_48_mib_dom_is_413_without_costing_the_worker(client, open_session, service: Service, site: Site):
    page = open_session(client, timeout="60s", max_retries=0)
    goto(page, site)
    evaluate(page, f"document.getElementById('p').textContent = 'd'.repeat({BIG}); return 1")
    before = worker_rss(service)
    message = refused(page, {"action": "content"})
    grown = worker_rss(service) - before
    assert f"over the {DEFAULT}-byte reply limit" in message
    assert grown < 8 * MIB, f"the worker grew by {grown} bytes refusing a {BIG}-byte DOM"
    goto(page, site)
    assert "Hello from the test site." in base64.b64decode(act(page, {"action": "content"})["content"]).decode()


def test_content_under_the_bound_is_answered_and_over_is_413(client, small: Session, site: Site):
    goto(small, site)
    html = base64.b64decode(act(small, {"action": "content"})["content"])
    filler = SMALL - len(html)  # the page with this many more bytes of text is exactly the bound
    evaluate(small, f"document.getElementById('p').append('\u00e9'.repeat({filler // 2})); return 1")
    assert len(base64.b64decode(act(small, {"action": "content"})["content"])) == len(html) + filler // 2 * 2
    evaluate(small, f"document.getElementById('p').append('e'.repeat({filler % 2 + 1})); return 1")
    message = refused(small, {"action": "content"})
    assert f"over the {SMALL}-byte reply limit" in message


@pytest.mark.parametrize(
    "override",
    [
        "Object.defineProperty(Element.prototype, 'outerHTML', {get: () => big});",
        "XMLSerializer.prototype.serializeToString = () => big;"
        " Object.defineProperty(Element.prototype, 'outerHTML', {get: () => undefined});",
        "Object.defineProperty(Document.prototype, 'documentElement', {get: () => ({outerHTML: big})});",
    ],
    ids=["outerHTML", "XMLSerializer", "documentElement"],
)
def test_content_reads_the_dom_where_the_page_cannot_redefine_it(client, small: Session, site: Site, override):
    goto(small, site)
    evaluate(small, f"const big = 'o'.repeat({2 * SMALL}); {override} return 1")
    # the override is live in the page's world
    assert (
        evaluate(
            small,
            "const r = document.documentElement; return (r && r.outerHTML || "
            "new XMLSerializer().serializeToString(r) || '').length",
        )
        == 2 * SMALL
    )
    html = base64.b64decode(act(small, {"action": "content"})["content"]).decode()
    assert "Hello from the test site." in html and len(html) < 10000


@pytest.mark.clientless
def test_standard_content_past_the_bound_is_413(small_service: Service, site: Site):
    session = connect(small_service.ws_url)
    try:
        session.open(client="standard")
        act(session, {"action": "goto", "url": site.url(f"/big?bytes={SMALL}")})
        assert len(base64.b64decode(act(session, {"action": "content"})["content"])) == SMALL
        act(session, {"action": "goto", "url": site.url(f"/big?bytes={SMALL + 1}")})  # goto: INNDX_MAX_BODY_BYTES
        assert f"is {SMALL + 1} bytes, over the {SMALL}-byte" in refused(session, {"action": "content"})
    finally:
        _close_quietly(session)


# ------------------------------------------------------------------------------- screenshot


def test_a_screenshot_past_the_bound_is_413_and_under_it_is_answered(client, small: Session, site: Site):
    """1280x720 (the default viewport): its worst case, 3.7 MB, is within 4x the 1 MiB bound, so
    the screenshot is taken and measured: a plain page fits, a page of noise does not."""
    goto(small, site)
    png = base64.b64decode(act(small, {"action": "screenshot"})["screenshot"])
    assert png.startswith(b"\x89PNG") and len(png) < SMALL
    assert evaluate(small, NOISE) == [1280, 720]
    message = refused(small, {"action": "screenshot"})
    assert "the screenshot is " in message and f"over the {SMALL}-byte reply limit" in message
    assert evaluate(small, "return 3") == 3


def test_a_viewport_whose_screenshot_could_pass_4x_the_bound_is_refused_before(small_service: Service, client):
    session = connect(small_service.ws_url)
    try:
        session.open(client={"kind": client, "viewport": {"width": 1920, "height": 1080}}, max_retries=0)
        message = refused(session, {"action": "screenshot"})
        assert "1920x1080-pixel viewport" in message and "not taken" in message
        assert act(session, {"action": "evaluate", "script": "return innerWidth"})["result"] == 1920
    finally:
        _close_quietly(session)


def test_a_noise_screenshot_stays_within_the_worst_case(client, open_session, site: Site):
    """The measure behind the pre-check: incompressible pixels, the PNG's size against
    ``png_worst_case`` of the viewport."""
    page = open_session(client, timeout="60s", max_retries=0)
    goto(page, site)
    width, height = evaluate(page, NOISE)
    png = base64.b64decode(act(page, {"action": "screenshot"})["screenshot"])
    worst = reply_bound.png_worst_case(width, height)
    print(f"\n{client}: noise {width}x{height}: {len(png)} bytes, worst case {worst} ({len(png) / worst:.3f})")
    assert width * height * 3 < len(png) <= worst


def test_the_syntax_check_works_on_a_page_whose_policy_forbids_eval(client, small: Session, csp_url: str):
    """The check compiles the script with ``new Function`` in our sandbox: a page's
    Content-Security-Policy (no eval, no scripts) does not stop it, nor the script."""
    act(small, {"action": "goto", "url": csp_url})
    assert evaluate(small, "return document.title + 1") == "csp1"
    assert "not a function body" in refused(small, {"action": "evaluate", "script": "return 1 }); (function() {"}, 422)


def test_an_error_message_the_page_writes_is_clipped(client, small: Session, site: Site):
    """A click's 409 names the element that covers the target, by its tag and id, which the page
    sets: a page can make the id 4 MB. Every error message is clipped to 4,000 characters
    (replies.MAX_MESSAGE), and says how long it was."""
    goto(small, site)
    hostile = (
        f"const d = document.createElement('div'); d.id = 'x'.repeat({4 * SMALL});"
        " d.style = 'position:fixed;inset:0;z-index:99999;background:#fff';"
        " document.body.append(d); return 1"
    )
    evaluate(small, hostile)
    message = refused(small, {"action": "click", "selector": "#p"}, 409)
    clipped = re.search(r"\.\.\. \((\d+) characters\)$", message)
    assert len(message) < 4200 and clipped and int(clipped.group(1)) > 4 * SMALL, message[:300]
    assert "div#xxx" in message
