"""What a hostile server can put in an answer, met by the pure parts: Set-Cookie lines, Location
values, header lines a browser lets through. Property-based: any input, never an exception of
ours, and only values the reply schema accepts."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.clients.standard import _checked_hop
from service.cookies import parse_set_cookie
from service.errors import BadAnswer
from service.headers import reportable
from service.retries import retryable

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
LATIN1 = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80)
ATTRIBUTES = st.sampled_from(
    ["Max-Age", "max-age", "Expires", "Domain", "Path", "SameSite", "Secure", "HttpOnly", "", "x"]
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    LATIN1,
    st.lists(
        st.tuples(ATTRIBUTES, st.one_of(LATIN1, st.integers().map(str), st.just("Fri, 31 Dec 99999 23:59:59 GMT"))),
        max_size=5,
    ),
)
def test_any_set_cookie_line_parses_or_is_ignored(pair, attributes):
    line = "; ".join([pair, *(f"{k}={v}" for k, v in attributes)])
    cookie = parse_set_cookie(line, "http://h.test/a/b")
    if cookie is not None:
        assert cookie.expires is None or ISO.match(cookie.expires), cookie.expires


@pytest.mark.parametrize(
    "location",
    ["http://a:99999/", "http://[x", "javascript:alert(1)", "http://", "//", "http://a:0/", "ftp://a/"],
)
def test_unusable_locations_are_a_bad_answer_naming_them(location):
    with pytest.raises(BadAnswer) as caught:
        _checked_hop("http://h.test/start", 302, location)
    assert location[:10] in caught.value.message
    assert caught.value.code == 502 and not retryable(caught.value)


@pytest.mark.parametrize("location", ["/next", "next", "http://other.test:8080/x?y#z", "HTTPS://UP.TEST/"])
def test_usable_locations_are_followed(location):
    assert _checked_hop("http://h.test/a/start", 301, location).type == "permanent"


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(LATIN1, st.text(max_size=40)), max_size=10))
def test_reportable_headers_match_the_reply_schema(headers):
    for name, value in reportable(headers):
        assert re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", name)
        assert not set(value) & {"\r", "\n", "\x00"}


def test_a_final_newline_does_not_slip_past_the_header_rules():
    """``$`` matches before a final newline: the rules must hold for the whole string."""
    assert reportable([("0", "\n"), ("a\n", "x"), ("x", "v\n"), ("ok", "v")]) == [("ok", "v")]
