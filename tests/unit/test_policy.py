"""The network policy: default ranges, embedded IPv4 forms, allow and deny rules, deny first."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import Settings, SettingsError
from service.errors import BadRequest, UpstreamError
from service.policy import REASONS, Policy, Refused, Rule, embedded, is_public, parse_rules


@pytest.mark.parametrize("address, public", [
    ("93.184.216.34", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("127.255.0.9", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.0.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("224.0.0.1", False),
    ("0.0.0.0", False), ("240.0.0.1", False), ("255.255.255.255", False), ("192.0.2.1", False),
    ("::", False), ("::1", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::127.0.0.1", False),
    ("2002:7f00:1::", False), ("2002:a00:1::1", False), ("64:ff9b::a9fe:a9fe", False),
    ("64:ff9b::5db8:d822", True), ("2002:5db8:d822::1", True), ("::ffff:93.184.216.34", True),
    ("fec0::1", False), ("feff:ffff::1", False), ("3fff::1", False), ("3fff:fff:ffff::1", False), ("5f00::1", False),
    ("fe00::1", False), ("4000::1", False), ("64:ff9b:1::5db8:d822", False), ("2001:0:4136:e378::1", False),
    ("2a00:1450::1", True), ("3fff:1000::1", True), ("2c0f:f000::1", True), ("febf:ffff::1", False),
])
def test_default_ranges(address, public):
    assert is_public(address) is public


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"),
    ("10.0.0.1", "private"), ("fd00::1", "private"), ("169.254.169.254", "link_local"), ("100.100.0.1", "cgnat"),
    ("224.1.1.1", "multicast"), ("240.0.0.1", "reserved"),
])
def test_refusal_reasons(address, reason):
    assert Policy().verdict("h", 80, address) == reason


def test_rules_parse():
    assert Rule.parse("10.0.0.0/8") == Rule(network=Rule.parse("10.0.0.0/8").network)
    assert Rule.parse("127.0.0.1:8080").port == 8080
    assert Rule.parse("[::1]:8080").port == 8080 and Rule.parse("[::1]:8080").network.version == 6
    assert Rule.parse("fd00::/8").network.prefixlen == 8
    assert Rule.parse("10.0.0.0/8:443").port == 443
    assert Rule.parse("Example.COM.").host == "example.com"
    assert Rule.parse("*.example.com:443") == Rule(host=".example.com", port=443)
    assert len(parse_rules("a.test, 10.0.0.1  [::1]:1,")) == 3
    for bad in ["", "http://x/", "a b", "host:0", "host:99999", "host:x", "[::1]x", "-..-", "a..b"]:
        with pytest.raises(ValueError):
            Rule.parse(bad)


def test_allow_rules_open_only_what_they_name():
    policy = Policy(allow=parse_rules("127.0.0.1:8080 internal.test *.corp.test 10.0.0.0/8:443"))
    assert policy.verdict("127.0.0.1", 8080, "127.0.0.1") is None
    assert policy.verdict("x", 8080, "::ffff:127.0.0.1") == "loopback"  # an IPv4 rule names IPv4 only
    assert Policy(allow=parse_rules("[::ffff:127.0.0.0/104]:8080")).verdict("x", 8080, "::ffff:127.0.0.1") is None
    assert policy.verdict("127.0.0.1", 8081, "127.0.0.1") == "loopback"
    assert policy.verdict("internal.test", 80, "10.9.9.9") is None
    assert policy.verdict("a.corp.test", 80, "10.9.9.9") is None
    assert policy.verdict("corp.test", 80, "10.9.9.9") == "private"
    assert policy.verdict("x", 443, "10.1.1.1") is None
    assert policy.verdict("x", 80, "10.1.1.1") == "private"


def test_deny_first():
    policy = Policy(allow=parse_rules("127.0.0.0/8"), deny=parse_rules("127.0.0.1:9 bad.test 93.184.216.0/24"))
    assert policy.verdict("127.0.0.1", 9, "127.0.0.1") == "deny_list"
    assert policy.verdict("127.0.0.1", 10, "127.0.0.1") is None
    assert policy.verdict("bad.test", 80, "93.184.216.1") == "deny_list"
    assert policy.verdict("x", 80, "::ffff:93.184.216.34") == "deny_list"
    assert policy.verdict("x", 80, "93.184.217.1") is None
    open_policy = Policy(allow_private=True, deny=parse_rules("169.254.169.254"))
    assert open_policy.verdict("x", 80, "10.0.0.1") is None
    assert open_policy.verdict("x", 80, "169.254.169.254") == "deny_list"
    assert not open_policy.open and Policy(allow_private=True).open


def test_every_resolved_address_is_checked():
    with pytest.raises(Refused, match="127.0.0.1") as refused:
        Policy().check_url("http://127.0.0.1:8080/")
    assert refused.value.code == 403 and refused.value.reason == "loopback"
    with pytest.raises(Refused) as by_name:
        Policy().check_url("http://localhost/")
    assert by_name.value.message == "localhost:80 is blocked by the network policy"  # no address, no reason
    assert by_name.value.reason == "loopback"  # for the metrics
    with pytest.raises(Refused, match=r"^\[::1\]:81 is blocked by the network policy \(loopback\)$"):
        Policy().check_url("http://[::1]:81/")
    with pytest.raises(Refused):
        Policy().check("h", 80, ["93.184.216.34", "10.0.0.1"])
    Policy(allow_private=True).check_url("http://127.0.0.1/")
    with pytest.raises(UpstreamError):
        Policy().check_url("http://no-such-host.invalid/")
    for url in ["http://[x/", "http://a:99999/", "http:///path"]:
        with pytest.raises(BadRequest):
            Policy().check_url(url)


def test_settings_build_the_policy():
    settings = Settings.from_env({"INNDX_NETWORK_ALLOW": "127.0.0.1:81", "INNDX_NETWORK_DENY": "169.254.169.254"})
    assert settings.policy.verdict("127.0.0.1", 81, "127.0.0.1") is None
    assert settings.policy.verdict("x", 80, "169.254.169.254") == "deny_list"
    with pytest.raises(SettingsError, match="network policy"):
        Settings.from_env({"INNDX_NETWORK_DENY": "not a rule/"})
    with pytest.raises(SettingsError, match="ADVERTISE"):
        Settings.from_env({"INNDX_EGRESS_HOST": "0.0.0.0"})
    wildcard = Settings.from_env({"INNDX_EGRESS_HOST": "0.0.0.0", "INNDX_EGRESS_ADVERTISE_HOST": "10.0.0.5"})
    assert wildcard.egress_address == "10.0.0.5"


# ------------------------------------------------------------------------------- properties

V4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
V6 = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)


def in_network(network: str) -> st.SearchStrategy[ipaddress.IPv6Address]:
    net = ipaddress.ip_network(network)
    return st.integers(int(net.network_address), int(net.broadcast_address)).map(ipaddress.IPv6Address)


def ipv6_forms(v4: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    """Every IPv6 spelling that embeds ``v4``."""
    value = int(v4)
    forms = {
        "mapped": (0xFFFF << 32) | value,
        "6to4": (0x2002 << 112) | (value << 80),
        "nat64": (0x64FF9B << 96) | value,
        "nat64-local": (0x64FF9B0001 << 80) | value,
        "teredo-server": (0x20010000 << 96) | (value << 64),
        "teredo-client": (0x20010000 << 96) | (value ^ 0xFFFFFFFF),
    }
    if value > 1:
        forms["compatible"] = value
    return {name: ipaddress.IPv6Address(form) for name, form in forms.items()}


@settings(deadline=None)  # a loaded machine: the bound is the example count
@given(st.one_of(in_network("fec0::/10"), in_network("3fff::/20")))
def test_site_local_and_documentation_ranges_are_refused_by_default(address):
    assert not is_public(str(address))
    assert Policy().verdict("h", 80, str(address)) == "private"
    assert Policy(allow_private=True).verdict("h", 80, str(address)) is None
    assert Policy(allow=parse_rules(f"[{address}]")).verdict("h", 80, str(address)) is None


@settings(deadline=None)  # a loaded machine: the bound is the example count
@given(V6)
def test_every_ipv6_address_outside_the_global_unicast_space_is_refused(address):
    """Only 2000::/3 (global unicast) can be public; everything else is refused."""
    if address not in ipaddress.ip_network("2000::/3") and embedded(address) == address:
        assert not is_public(str(address))


@settings(deadline=None)  # a loaded machine: the bound is the example count
@given(V4, st.integers(min_value=0, max_value=32))
def test_an_ipv4_allow_rule_admits_the_ipv4_address_and_none_of_its_ipv6_forms(v4, prefix):
    network = ipaddress.ip_network(f"{v4}/{prefix}", strict=False)
    allowing = Policy(allow=parse_rules(str(network)))
    assert allowing.verdict("h", 80, str(v4)) is None
    for name, form in ipv6_forms(v4).items():
        # the rule changes nothing for an IPv6 address: it gets the default verdict
        assert allowing.verdict("h", 80, str(form)) == Policy().verdict("h", 80, str(form)), name


@settings(deadline=None)  # a loaded machine: the bound is the example count
@given(st.one_of(st.sampled_from(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10"])
                 .map(ipaddress.ip_network).flatmap(lambda n: st.integers(int(n.network_address),
                                                                          int(n.broadcast_address))),
                 st.just(int(ipaddress.IPv4Address("127.0.0.1")))).map(ipaddress.IPv4Address))
def test_an_allowed_internal_ipv4_address_stays_refused_in_every_ipv6_spelling(v4):
    allowing = Policy(allow=parse_rules(f"{v4}"))
    assert allowing.verdict("h", 80, str(v4)) is None
    for name, form in ipv6_forms(v4).items():
        assert allowing.verdict("h", 80, str(form)) is not None, name


@settings(deadline=None)  # a loaded machine: the bound is the example count
@given(V4)
def test_an_ipv4_deny_rule_denies_every_ipv6_form_that_may_reach_it(v4):
    denying = Policy(allow_private=True, deny=parse_rules(str(v4)))
    assert denying.verdict("h", 80, str(v4)) == "deny_list"
    for name, form in ipv6_forms(v4).items():
        assert denying.verdict("h", 80, str(form)) == "deny_list", name


@settings(deadline=None)  # a loaded machine: the bound is the example count
@given(st.one_of(V4, V6), st.sampled_from(["internal.test", "db.corp.test", "localhost"]))
def test_a_refusal_never_names_the_address_a_host_name_resolves_to(address, host):
    try:
        Policy().check(host, 80, [str(address)])
    except Refused as refused:
        assert refused.message == f"{host}:80 is blocked by the network policy"
        assert refused.reason in REASONS
    else:
        assert is_public(str(address))
