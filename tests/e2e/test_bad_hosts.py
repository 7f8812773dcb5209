"""A URL whose host breaks the host rules (service/hosts.py) is a 400 naming ``$.url`` on every
client, and the session goes on. A server that redirects to such a host is never a 500 either:
the goto is an error in its turn (standard: 502, the server's fault, by the same host rules;
Chrome fails the navigation), or its reply is that redirect, not followed (Firefox)."""

from __future__ import annotations

import pytest

from tests.support.site import Site

BAD_URLS = ["http://a..b/", "http://.x.com/", f"http://{'a' * 64}.example/", "http://xn--zz.example/", "http://ex%41.example/"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_host_is_400_naming_the_url_and_the_session_goes_on(page, site: Site, url: str):
    reply = page.request({"action": "goto", "id": 7, "url": url}, timeout=30)
    assert reply.get("type") == "error" and reply["code"] == 400 and reply.get("id") == 7, reply
    assert "$.url" in reply["message"], reply
    after = page.request({"action": "goto", "url": site.url("/html")}, timeout=30)
    assert after.get("status_code") == 200, after


@pytest.mark.parametrize("location", ["http://a..b/", f"http://{'a' * 64}.example/"])
def test_a_redirect_to_a_bad_host_fails_the_goto_not_the_session(page, site: Site, location: str):
    reply = page.request({"action": "goto", "url": site.url(f"/redirect/302?to={location}")}, timeout=30)
    if reply.get("type") == "error":  # standard: 502 (the server's fault); Chrome: the navigation fails
        assert reply["code"] in (403, 502), reply
    else:  # Firefox answers the 302 whose Location it would not follow
        assert reply.get("status_code") == 302 and reply.get("redirects") == [], reply
    after = page.request({"action": "goto", "url": site.url("/html")}, timeout=30)
    assert after.get("status_code") == 200, after
