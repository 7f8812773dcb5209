"""Set-Cookie mapping and redirect facts shared by every client."""

import pytest

from service.cookies import cookies_from_headers, default_path, parse_set_cookie
from service.model import Cookie
from service.redirects import method_after, redirect_type, server_hop

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_every_attribute():
    cookie = parse_set_cookie(
        "sid=abc; Domain=.Example.com; Path=/app; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; Secure; SameSite=strict",
        "https://www.example.com/login",
    )
    assert cookie.name == "sid" and cookie.value == "abc"
    assert cookie.domain == "example.com" and cookie.path == "/app"
    assert cookie.expires == "2037-10-21T07:28:00Z"
    assert cookie.http_only is True and cookie.secure is True and cookie.same_site == "Strict"


def test_defaults_from_the_request():
    cookie = parse_set_cookie("a=1", "http://127.0.0.1:8080/dir/page?x=1")
    assert (cookie.domain, cookie.path, cookie.expires, cookie.same_site) == ("127.0.0.1", "/dir", None, None)
    assert cookie.http_only is False and cookie.secure is False


def test_max_age_wins_over_expires():
    cookie = parse_set_cookie("a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Max-Age=60", "http://h/", now=NOW)
    assert cookie.expires == "2027-01-15T08:01:00Z"
    assert parse_set_cookie("a=1; Max-Age=0", "http://h/", now=NOW).expires == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize("line", ["", "novalue", "=v", "  ; Path=/"])
def test_lines_without_a_cookie(line):
    assert parse_set_cookie(line, "http://h/") is None


def test_value_with_equals_and_unknown_same_site():
    cookie = parse_set_cookie("t=a=b==; SameSite=Bogus", "http://h/")
    assert cookie.value == "a=b==" and cookie.same_site is None


def test_newline_joined_values_and_header_case():
    headers = [("set-cookie", "a=1\nb=2"), ("Content-Type", "text/html"), ("Set-Cookie", "c=3")]
    assert [c.name for c in cookies_from_headers(headers, "http://h/")] == ["a", "b", "c"]


@pytest.mark.parametrize("url, path", [("http://h", "/"), ("http://h/", "/"), ("http://h/a", "/"),
                                       ("http://h/a/b", "/a"), ("http://h/a/b/", "/a/b")])
def test_default_path(url, path):
    assert default_path(url) == path


@pytest.mark.parametrize("status, kind", [(301, "permanent"), (308, "permanent"), (302, "temporary"),
                                          (303, "temporary"), (307, "temporary"), (None, "temporary")])
def test_redirect_type(status, kind):
    assert redirect_type(status) == kind


def test_server_hop_resolves_relative_locations():
    hop = server_hop("http://h/a/b?q", 302, "../c")
    assert (hop.url, hop.location, hop.side, hop.type) == ("http://h/a/b?q", "http://h/c", "server", "temporary")


@pytest.mark.parametrize("status, method, expected", [(303, "POST", "GET"), (303, "HEAD", "HEAD"), (302, "POST", "GET"),
                                                      (301, "PUT", "PUT"), (307, "POST", "POST"), (308, "DELETE", "DELETE")])
def test_method_after(status, method, expected):
    assert method_after(status, method) == expected


@pytest.mark.parametrize(
    "line, expires",
    [
        ("a=b; Max-Age=1000000000000", "9999-12-31T23:59:59Z"),
        ("a=b; Max-Age=" + "9" * 5000, "9999-12-31T23:59:59Z"),
        ("a=b; Max-Age=-" + "9" * 40, "1970-01-01T00:00:00Z"),
        ("a=b; Expires=Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31T23:59:59Z"),
        ("a=b; Expires=Fri, 31 Dec 99999 23:59:59 GMT", None),
        ("a=b; Max-Age=+5", None),
        ("a=b; Max-Age=ten", None),
    ],
)
def test_absurd_dates_are_clamped_never_an_error(line, expires):
    assert parse_set_cookie(line, "http://h/", now=NOW).expires == expires


def test_goto_cookie_expires_is_rfc3339_in_full():
    from service.cookies import parse_expires

    utc = parse_expires("2030-01-01T00:00:00Z")
    assert parse_expires("2030-01-01T00:00:00+00:00") == utc
    assert parse_expires("2030-01-01T02:00:00+02:00") == utc
    assert parse_expires("2029-12-31T19:00:00.000-05:00") == utc
    assert parse_expires("2030-01-01T00:00:00") == utc  # no offset: UTC
    with pytest.raises(ValueError):
        parse_expires("next tuesday")


def test_the_standard_jar_sends_secure_cookies_as_browsers_do():
    import http.cookiejar

    import httpx

    from service.cookies import BrowserCookiePolicy, jar_cookie

    jar = http.cookiejar.CookieJar(BrowserCookiePolicy())
    for host in ("example.com", "127.0.0.1", "localhost"):
        jar.set_cookie(jar_cookie(Cookie(name="s", value=host, secure=True), host))

    def sent(url: str) -> str | None:
        request = httpx.Request("GET", url)
        httpx.Cookies(jar).set_cookie_header(request)
        return request.headers.get("cookie")

    assert sent("http://example.com/") is None and sent("https://example.com/") == "s=example.com"
    assert sent("http://127.0.0.1:8000/") == "s=127.0.0.1" and sent("http://localhost/") == "s=localhost"
    expired = jar_cookie(Cookie(name="old", value="x", expires="2001-01-01T00:00:00+01:00"), "h")
    assert expired.is_expired()
