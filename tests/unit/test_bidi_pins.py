"""The private attributes of Selenium and websocket-client that ``service.clients.bidi`` relies on
still exist in the pinned versions: this test fails loudly, naming each one, when a pin moves."""

from __future__ import annotations

from service.clients import bidi


def test_every_private_assumption_holds():
    assert bidi.check_assumptions() == []


def test_the_check_notices_a_missing_attribute(monkeypatch):
    monkeypatch.setattr(
        bidi,
        "ASSUMPTIONS",
        bidi.ASSUMPTIONS
        + (
            ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "self._no_such_thing"),
            ("selenium.webdriver.remote.webdriver.WebDriver", "_no_such_method"),
            ("selenium.webdriver.remote.nowhere.Gone", "x"),
        ),
    )
    broken = bidi.check_assumptions()
    assert len(broken) == 3
    assert "no longer sets self._no_such_thing" in broken[0]
    assert "has no _no_such_method" in broken[1]
    assert "is gone" in broken[2]


def test_the_check_notices_another_selenium_version(monkeypatch):
    import selenium

    monkeypatch.setattr(selenium, "__version__", "4.99.0")
    assert any("4.99.0" in line for line in bidi.check_assumptions())


# every other module's private reaches: tests/unit/test_private_reaches.py
