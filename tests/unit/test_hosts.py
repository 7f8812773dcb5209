"""hosts.ascii_host: one set of host rules for every client (labels, lengths, IDNA), so that a
host the protocol lets through never makes an IDNA codec fail further down."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import hosts
from service.errors import BadRequest
from service.protocol import check_url

BAD = [
    ("a..b", "empty label"),
    (".x.com", "empty label"),
    ("x.com..", "empty label"),
    ("x" * 64 + ".com", "label of 64 bytes"),
    (".".join(["a" * 63] * 4), "at most 253"),
    ("xn--zz.com", "A-label"),
    ("ex%41.com", "'%'"),
    ("a^b.com", r"'\^'"),
    ("☃.net", "international domain name"),
    ("é" * 60 + ".com", "international domain name"),  # its A-label is over 63 bytes
]
GOOD = [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("example.com.", "example.com."),
    ("bücher.de", "xn--bcher-kva.de"),
    ("a_b.example", "a_b.example"),
    ("x" * 63 + ".com", "x" * 63 + ".com"),
    ("127.0.0.1", "127.0.0.1"),
    ("::1", "::1"),
    ("localhost", "localhost"),
]


@pytest.mark.parametrize(("host", "why"), BAD)
def test_bad_hosts_are_refused_saying_why(host, why):
    with pytest.raises(ValueError, match=why):
        hosts.ascii_host(host)
    with pytest.raises(BadRequest, match=r"\$\.url"):
        check_url(f"http://{host}/", "goto")


@pytest.mark.parametrize(("host", "wire"), GOOD)
def test_good_hosts_pass_in_their_wire_form(host, wire):
    assert hosts.ascii_host(host) == wire
    check_url(f"http://{host if ':' not in host else '[' + host + ']'}/", "goto")


def test_the_standard_clients_crashes_are_400s():
    """The three URLs of the issue (the IDNA codec's ``label empty or too long``)."""
    for url in ("http://a..b/", "http://.x.com/", f"http://{'a' * 64}.example/"):
        with pytest.raises(BadRequest, match=r"invalid goto frame at \$\.url"):
            check_url(url, "goto")


LABEL = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=70)


@settings(max_examples=1500, deadline=None)
@given(st.lists(LABEL, min_size=1, max_size=6))
def test_any_host_is_refused_or_safe_for_every_codec_downstream(labels):
    host = ".".join(labels)
    try:
        wire = hosts.ascii_host(host)
    except ValueError:
        return
    assert wire.isascii()
    name = wire.rstrip(".")
    if ":" not in name:
        assert len(name) <= hosts.MAX_NAME
        assert all(0 < len(label) <= hosts.MAX_LABEL for label in name.split("."))
        name.encode("idna")  # what the resolver does: must not raise (the crash of the issue)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_check_url_never_raises_anything_but_bad_request(host):
    try:
        check_url(f"http://{host}/", "goto")
    except BadRequest:
        pass
