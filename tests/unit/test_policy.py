"""The network policy: default ranges, embedded IPv4 forms, allow and deny rules, deny first."""

import pytest

from service.config import Settings, SettingsError
from service.errors import BadRequest, UpstreamError
from service.policy import Policy, Refused, Rule, is_public, parse_rules


@pytest.mark.parametrize("address, public", [
    ("93.184.216.34", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("127.255.0.9", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.0.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("224.0.0.1", False),
    ("0.0.0.0", False), ("240.0.0.1", False), ("255.255.255.255", False), ("192.0.2.1", False),
    ("::", False), ("::1", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::127.0.0.1", False),
    ("2002:7f00:1::", False), ("2002:a00:1::1", False), ("64:ff9b::a9fe:a9fe", False),
    ("64:ff9b::5db8:d822", True), ("2002:5db8:d822::1", True), ("::ffff:93.184.216.34", True),
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
    assert policy.verdict("x", 8080, "::ffff:127.0.0.1") is None  # the address it embeds
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
    with pytest.raises(Refused):
        Policy().check_url("http://localhost/")
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
