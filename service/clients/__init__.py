"""The fetch clients, behind one small interface (``base.FetchClient``)."""

from __future__ import annotations

from service.clients.base import ClientOptions, FetchClient
from service.config import Settings


def make_client(kind: str, options: ClientOptions, settings: Settings) -> FetchClient:
    """The fetch client for an open frame's ``client`` kind."""
    if kind == "standard":
        from service.clients.standard import StandardClient

        return StandardClient(options, max_body_bytes=settings.max_body_bytes)
    from service.clients.browser import BrowserClient

    return BrowserClient(kind, options, browser_settings(settings))


def browser_settings(settings: Settings):  # -> BrowserSettings (imported lazily: Selenium is heavy)
    from service.clients.browser_launch import BrowserSettings

    return BrowserSettings(
        chrome_binary=settings.chrome_binary,
        chromedriver=settings.chromedriver,
        firefox_binary=settings.firefox_binary,
        geckodriver=settings.geckodriver,
        remote_url=settings.selenium_remote_url,
        new_session_timeout=settings.new_session_timeout,
        client_redirect_settle=settings.client_redirect_settle,
        max_body_bytes=settings.max_body_bytes,
    )
