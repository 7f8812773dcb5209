"""A BiDi error from a live browser is never fatal: the translation table, and its default."""

from __future__ import annotations

import pytest

from service import errors
from service.clients.base import ClientOptions
from service.clients.browser import BrowserClient
from service.clients.browser_launch import BidiError, BrowserSettings


class _LiveBrowser:
    """Stands in for a launched local browser that is alive (the only thing _translate asks)."""

    remote = False

    def alive(self) -> bool:
        return True

    class bidi:  # noqa: N801 - an attribute bag
        @staticmethod
        def alive() -> bool:
            return True


class _Egress:
    proxy_url = "http://127.0.0.1:9"

    def answered(self, url: str) -> None:
        return None


@pytest.fixture()
def client() -> BrowserClient:
    egress = _Egress()
    browser = BrowserClient("chrome", ClientOptions(timeout=5, max_redirects=3, egress=egress), BrowserSettings())
    browser._launched = _LiveBrowser()  # type: ignore[assignment]
    return browser


@pytest.mark.parametrize(
    "error, code",
    [
        ("unable to set cookie", 400),
        ("invalid argument", 400),
        ("no such node", 404),
        ("unsupported operation", 501),
        ("unknown error", 502),
        ("some error a future browser invents", 502),
    ],
)
def test_bidi_errors_of_a_live_browser_are_not_fatal(client: BrowserClient, error: str, code: int):
    translated = client._translate(BidiError(error, "details"), "goto")
    assert translated.code == code and not translated.fatal
    assert error in translated.message


def test_a_lost_session_is_still_fatal(client: BrowserClient):
    translated = client._translate(BidiError("invalid session id", "gone"), "goto")
    assert isinstance(translated, errors.Unavailable) and translated.fatal


def test_a_browser_never_starts_without_its_egress_listener():
    with pytest.raises(errors.InternalError, match="egress"):
        BrowserClient("chrome", ClientOptions(timeout=5), BrowserSettings())
