"""goto, field by field, from every client: the same server response gives the same answer from
standard, chrome and firefox (PROTOCOL.md, "goto"). Each case runs once per selected client on
the module's shared session (cookie names differ per case so cases don't see each other's)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest

from tests.support.site import BINARY_BYTES, GZIP_HTML, PNG_BYTES, big_body, html_page
from tests.support.wsclient import connect

BROWSERS = ("chrome", "firefox")


def goto(session, url, **fields):
    reply = session.request({"action": "goto", "url": url, **fields}, timeout=60)
    assert reply.get("type") is None, reply
    return reply


def body_of(reply) -> bytes | None:
    return None if reply["body"] is None else base64.b64decode(reply["body"])


def echo(reply) -> dict:
    return json.loads(body_of(reply))


def lower_headers(reply) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in reply["headers"]]


def header(reply, name: str) -> str | None:
    return next((value for key, value in lower_headers(reply) if key == name.lower()), None)


def sent_header(echoed: dict, name: str) -> list[str]:
    return [value for key, value in echoed["headers"] if key.lower() == name.lower()]


# ------------------------------------------------------------------------------- the final response


def test_plain_page(page, site):
    url = site.url("/html?title=Plain")
    reply = goto(page, url)
    assert reply["url"] == url and reply["status_code"] == 200
    assert body_of(reply) == html_page("Plain")
    assert reply["content_type"] == "text/html" and reply["redirects"] == []
    assert header(reply, "content-type") == "text/html; charset=utf-8"
    assert header(reply, "content-length") == str(len(html_page("Plain")))


def test_headers_in_received_order_with_repeats_kept_apart(client, page, site):
    reply = goto(page, site.url("/headers/repeated"))
    # Firefox itself merges a repeated header (other than Set-Cookie) into one "a, b" value before
    # any WebDriver event sees it: the one place where it cannot keep repeats apart.
    repeated = [("x-multi", "one, two")] if client == "firefox" else [("x-multi", "one"), ("x-multi", "two")]
    assert lower_headers(reply) == [
        *repeated,
        ("x-case", "MiXeD"),
        ("content-type", "text/plain; charset=utf-8"),
        ("cache-control", "no-store"),
        ("content-length", str(len(body_of(reply)))),
    ]
    assert reply["content_type"] == "text/plain"


@pytest.mark.parametrize("status", [404, 500, 503])
def test_error_statuses_are_normal_responses(page, site, status):
    reply = goto(page, site.url(f"/status/{status}"))
    assert reply["status_code"] == status and body_of(reply) == f"status {status}\n".encode()


def test_no_content_has_a_null_body(page, site):
    reply = goto(page, site.url("/status/204"))
    assert reply["status_code"] == 204 and reply["body"] is None
    assert reply["content_type"] == "text/plain"  # the site labels even its empty 204


def test_head_has_a_null_body(page, site):
    reply = goto(page, site.url("/echo/head"), method="HEAD")
    assert reply["status_code"] == 200 and reply["body"] is None
    assert site.requests_to("/echo/head")[-1]["method"] == "HEAD"


@pytest.mark.parametrize(
    "path, expected, media",
    [
        ("/json", b'{"hello": "world", "n": 1}', "application/json"),
        ("/image.png", PNG_BYTES, "image/png"),
        ("/gzip", GZIP_HTML, "text/html"),
        ("/big?bytes=3000000", big_body(3_000_000), "text/plain"),
    ],
    ids=["json", "png", "gzip-decoded", "3MB"],
)
def test_body_is_the_raw_bytes_of_the_response(page, site, path, expected, media):
    reply = goto(page, site.url(path))
    assert body_of(reply) == expected and reply["content_type"] == media


@pytest.mark.clients("standard", "firefox")
def test_octet_stream_body(page, site):
    """Chrome turns a top-level application/octet-stream response into a download: see
    test_octet_stream_in_chrome_is_reported_not_hidden."""
    reply = goto(page, site.url("/binary"))
    assert body_of(reply) == BINARY_BYTES and reply["content_type"] == "application/octet-stream"


@pytest.mark.clients("chrome")
def test_octet_stream_in_chrome_is_reported_not_hidden(page, site):
    frame = page.request({"action": "goto", "url": site.url("/binary")}, timeout=60)
    if frame.get("type") is None:  # the status and headers are still the server's
        assert frame["status_code"] == 200 and frame["content_type"] == "application/octet-stream"
        assert frame["body"] is None or body_of(frame) == BINARY_BYTES
    else:
        assert frame["type"] == "error" and frame["code"] in (502, 501), frame


# ------------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("code, kind", [(301, "permanent"), (302, "temporary"), (303, "temporary"),
                                        (307, "temporary"), (308, "permanent")])
def test_server_redirect_hop(page, site, code, kind):
    start = site.url(f"/redirect/{code}?to=/html%3Ftitle%3DLanded{code}")
    reply = goto(page, start)
    final = site.url(f"/html?title=Landed{code}")
    assert reply["url"] == final and reply["status_code"] == 200
    assert reply["redirects"] == [{"url": start, "location": final, "side": "server", "type": kind}]
    hop_cookie = [c for c in reply["cookies"] if c["name"] == f"hop{code}"]
    assert hop_cookie and hop_cookie[0]["value"] == "1" and hop_cookie[0]["path"] == "/"
    assert body_of(reply) == html_page(f"Landed{code}")


def test_redirect_chain_records_every_hop_and_its_cookies(page, site):
    reply = goto(page, site.url("/chain/3"))
    assert reply["url"] == site.url("/chain/0")
    assert [(hop["url"], hop["location"]) for hop in reply["redirects"]] == [
        (site.url("/chain/3"), site.url("/chain/2")),
        (site.url("/chain/2"), site.url("/chain/1")),
        (site.url("/chain/1"), site.url("/chain/0")),
    ]
    assert {(c["name"], c["value"]) for c in reply["cookies"]} >= {
        ("chain3", "v3"), ("chain2", "v2"), ("chain1", "v1"), ("chain0", "v0")}


def test_redirect_to_another_host_name(page, site):
    target = site.url("/html?title=Other", host="localhost")
    reply = goto(page, site.url(f"/redirect/302?to={target}"))
    assert reply["url"] == target and reply["redirects"][0]["location"] == target


def test_more_redirects_than_max_redirects_is_508(client, open_session, site):
    session = open_session(client, max_redirects=2, max_retries=0)
    site.clear()
    error = session.request({"action": "goto", "url": site.url("/chain/5"), "id": "far"}, timeout=60)
    assert error["type"] == "error" and error["code"] == 508 and error["id"] == "far"
    # the chain stops exactly there: the start and max_redirects hops were requested, no more
    requested = [r["path"] for r in site.requests if r["path"].startswith("/chain/")]
    assert requested == ["/chain/5", "/chain/4", "/chain/3"]
    reply = goto(session, site.url("/chain/2"))
    assert reply["status_code"] == 200 and len(reply["redirects"]) == 2


def test_redirect_loop_is_508(page, site):
    error = page.request({"action": "goto", "url": site.url("/loop")}, timeout=60)
    assert error["type"] == "error" and error["code"] == 508


@pytest.mark.clients(*BROWSERS)
@pytest.mark.parametrize("path", ["/meta-refresh?to=/html%3Ftitle%3DRefreshed", "/js-redirect?to=/html%3Ftitle%3DRefreshed"],
                         ids=["meta-refresh", "script-location"])
def test_client_side_redirect_during_load(page, site, path):
    start = site.url(path)
    reply = goto(page, start)
    final = site.url("/html?title=Refreshed")
    assert reply["url"] == final and reply["status_code"] == 200
    assert reply["redirects"] == [{"url": start, "location": final, "side": "client", "type": "temporary"}]
    assert body_of(reply) == html_page("Refreshed")


@pytest.mark.clients(*BROWSERS)
def test_a_page_that_hides_from_in_page_checks_still_has_its_client_redirect_reported(page, site):
    """The settle window's question (can this page still redirect itself?) is asked out of the
    page's reach: a page whose own world says "no timers, no scripts, no meta refresh" still has
    the redirect it makes 100 ms after load followed and reported."""
    start = site.url("/js-disguised?to=/html%3Ftitle%3DUnmasked")
    reply = goto(page, start)
    final = site.url("/html?title=Unmasked")
    assert reply["url"] == final, reply["url"]
    assert reply["redirects"] == [{"url": start, "location": final, "side": "client", "type": "temporary"}]
    assert body_of(reply) == html_page("Unmasked")


@pytest.mark.clients(*BROWSERS)
@pytest.mark.parametrize("delay", ["Infinity", "-0", "1e999", "NaN"])
def test_a_meta_refresh_delay_that_is_no_number_is_a_page_not_a_500(page, site, delay):
    """The settle facts carry the page's own number: BiDi sends Infinity, -0 and NaN as strings,
    and the goto reads them (it answered 500 when it compared such a string with a number)."""
    url = site.url(f"/meta-refresh?delay={delay}&to=/html%3Ftitle%3DNever")
    reply = goto(page, url)
    assert reply["status_code"] == 200, reply
    assert reply["url"] in (url, site.url("/html?title=Never"))  # browsers differ on "-0": refresh now, or never


@pytest.mark.clients(*BROWSERS)
def test_server_then_client_side_hops(page, site):
    meta = site.url("/meta-refresh?to=/html%3Ftitle%3DBoth")
    start = site.url("/redirect/301?to=/meta-refresh%3Fto%3D/html%253Ftitle%253DBoth")
    reply = goto(page, start)
    assert reply["url"] == site.url("/html?title=Both")
    assert [(h["side"], h["type"]) for h in reply["redirects"]] == [("server", "permanent"), ("client", "temporary")]
    assert reply["redirects"][0]["location"] == meta and reply["redirects"][1]["url"] == meta


@pytest.mark.clients("standard")
def test_standard_client_reports_a_meta_refresh_page_as_it_is(page, site):
    reply = goto(page, site.url("/meta-refresh?to=/html"))
    assert reply["redirects"] == [] and b"http-equiv" in body_of(reply)


# ------------------------------------------------------------------------------- cookies


def test_cookies_with_every_attribute(page, site):
    before = time.time()
    reply = goto(page, site.url("/cookies/set"))
    cookies = {cookie["name"]: cookie for cookie in reply["cookies"]}
    assert list(cookies) == ["a", "b", "c", "d", "e", "f"]
    base = {"domain": "127.0.0.1", "http_only": False, "secure": False}
    assert cookies["a"] == {"name": "a", "value": "1", "path": "/", **base, "http_only": True}
    assert cookies["b"] == {"name": "b", "value": "2", "path": "/", **base, "secure": True, "same_site": "Strict"}
    c = dict(cookies["c"])
    expires = datetime.strptime(c.pop("expires"), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert before + 3600 - 5 <= expires <= time.time() + 3600 + 5
    assert c == {"name": "c", "value": "3", "path": "/cookies", **base}
    assert cookies["d"] == {"name": "d", "value": "4", "path": "/", **base, "expires": "2037-10-21T07:28:00Z",
                            "same_site": "Lax"}
    assert cookies["e"] == {"name": "e", "value": "5", "path": "/cookies", **base}
    assert cookies["f"] == {"name": "f", "value": "6", "path": "/cookies", **base, "secure": True, "same_site": "None"}


def test_cookies_persist_across_gotos(page, site):
    goto(page, site.url("/cookies/set?name=persisted&value=yes"))
    seen = echo(goto(page, site.url("/cookies/echo")))
    assert seen["cookies"].get("persisted") == "yes"


def test_cookies_sent_with_the_request(page, site):
    cookies = [{"name": "given", "value": "g1"}, {"name": "scoped", "value": "s1", "path": "/cookies"}]
    seen = echo(goto(page, site.url("/cookies/echo"), cookies=cookies))
    assert seen["cookies"].get("given") == "g1" and seen["cookies"].get("scoped") == "s1"


def test_cookie_jar_is_per_session(client, open_session, page, site):
    goto(page, site.url("/cookies/set?name=private&value=mine"))
    other = open_session(client)
    assert "private" not in echo(goto(other, site.url("/cookies/echo")))["cookies"]


# ------------------------------------------------------------------------------- the request


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_method_and_body(page, site, method):
    payload = b"\x00binary \xff body"
    reply = goto(page, site.url("/echo/m"), method=method, body=base64.b64encode(payload).decode(),
                 headers=[["Content-Type", "application/octet-stream"]])
    seen = echo(reply)
    assert seen["method"] == method and base64.b64decode(seen["body_base64"]) == payload
    assert sent_header(seen, "content-type") == ["application/octet-stream"]


def test_headers_and_referrer_on_the_navigation_request(page, site):
    seen = echo(goto(page, site.url("/echo/h"), headers=[["X-Test", "one"], ["X-Other", "two"]],
                     referrer=site.url("/from/here")))
    assert sent_header(seen, "x-test") == ["one"] and sent_header(seen, "x-other") == ["two"]
    assert sent_header(seen, "referer") == [site.url("/from/here")]


def test_headers_apply_to_every_hop_but_not_to_sub_resources(page, site):
    site.clear()
    goto(page, site.url("/redirect/307?to=/echo/hop"), headers=[["X-Hop", "kept"]])
    hops = [r for r in site.requests if r["path"] in ("/redirect/307", "/echo/hop")]
    assert [r["path"] for r in hops] == ["/redirect/307", "/echo/hop"]
    for request in hops:
        assert [v for k, v in request["headers"] if k.lower() == "x-hop"] == ["kept"]
    others = [r for r in site.requests if r not in hops]
    assert all(not any(k.lower() == "x-hop" for k, _ in r["headers"]) for r in others)


def test_307_keeps_method_and_body_303_turns_into_get(page, site):
    body = base64.b64encode(b"form=1").decode()
    kept = echo(goto(page, site.url("/redirect/307?to=/echo/after"), method="POST", body=body))
    assert kept["method"] == "POST" and base64.b64decode(kept["body_base64"]) == b"form=1"
    changed = echo(goto(page, site.url("/redirect/303?to=/echo/after"), method="POST", body=body))
    assert changed["method"] == "GET" and changed["body_base64"] == ""


@pytest.mark.parametrize("keyword, marker", [("inndx", "inndx/"), ("chrome", "Chrome/"), ("firefox", "Firefox/"),
                                             ("safari", "Version/"), ("my-bot/2.0 (+contact)", "my-bot/2.0 (+contact)")])
def test_user_agent_keywords(page, site, keyword, marker):
    seen = echo(goto(page, site.url("/echo/ua"), user_agent=keyword))
    (agent,) = sent_header(seen, "user-agent")
    assert marker in agent
    if keyword == "safari":
        assert "Chrome" not in agent


@pytest.mark.clients(*BROWSERS)
def test_user_agent_also_changes_navigator_user_agent(page, site):
    goto(page, site.url("/html"), user_agent="my-bot/3.0")
    result = page.request({"action": "evaluate", "script": "return navigator.userAgent"})
    assert result["result"] == "my-bot/3.0"


def test_connect_is_not_supported(page, site):
    error = page.request({"action": "goto", "url": site.url("/echo"), "method": "CONNECT"}, timeout=30)
    assert error["type"] == "error" and error["code"] == 501


# ------------------------------------------------------------------------------- failures and retries


def test_timeout_is_504_and_the_session_goes_on(client, open_session, site):
    session = open_session(client, timeout="1s", max_retries=0)
    started = time.monotonic()
    error = session.request({"action": "goto", "url": site.url("/slow?seconds=5")}, timeout=30)
    assert error["type"] == "error" and error["code"] == 504
    assert time.monotonic() - started < 4
    assert goto(session, site.url("/html"))["status_code"] == 200


def test_transport_failure_is_502(page, site):
    error = page.request({"action": "goto", "url": site.url("/reset")}, timeout=60)
    assert error["type"] == "error" and error["code"] == 502
    assert goto(page, site.url("/html"))["status_code"] == 200


def test_connection_refused_is_502(page):
    from tests.support.ports import free_port

    error = page.request({"action": "goto", "url": f"http://127.0.0.1:{free_port()}/"}, timeout=60)
    assert error["type"] == "error" and error["code"] == 502


def test_transport_failures_are_retried(client, open_session, site):
    session = open_session(client, max_retries=3)
    key = f"retry-{client}"
    reply = goto(session, site.url(f"/flaky?key={key}&fail=2"))
    assert reply["status_code"] == 200 and site.count(key) == 3


def test_body_over_the_limit_is_413(client, start_service, site):
    service = start_service(INNDX_MAX_BODY_BYTES="100000")
    with connect(service.ws_url) as session:
        session.open(client=client, recv_timeout=60)
        error = session.request({"action": "goto", "url": site.url("/big?bytes=400000")}, timeout=60)
        assert error["type"] == "error" and error["code"] == 413
        assert goto(session, site.url("/big?bytes=1000"))["status_code"] == 200
        session.request({"action": "close"}, timeout=30)


def test_middleware_headers_go_with_every_goto_and_the_gotos_own_win(client, open_session, site):
    session = open_session(client, middleware=[{"type": "headers", "headers": [["X-Mw", "m"], ["X-Both", "mw"]]}])
    seen = echo(goto(session, site.url("/echo/mw"), headers=[["X-Both", "goto"]]))
    assert sent_header(seen, "x-mw") == ["m"] and sent_header(seen, "x-both") == ["goto"]
    seen = echo(goto(session, site.url("/redirect/307?to=/echo/mw2")))
    assert sent_header(seen, "x-mw") == ["m"] and sent_header(seen, "x-both") == ["mw"]
