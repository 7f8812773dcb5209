"""The fetch clients, behind one small interface (``base.FetchClient``)."""

from __future__ import annotations

from typing import Any

from service.clients.base import ClientOptions, FetchClient
from service.config import Settings


def make_client(kind: str, options: ClientOptions, settings: Settings, unit: Any = None) -> FetchClient:
    """The fetch client for an open frame's ``client`` kind; ``unit`` is a warm browser from the
    pool (``service.pool``), already started, or None to start one cold."""
    if kind == "standard":
        from service.clients.standard import StandardClient

        return StandardClient(
            options,
            max_body_bytes=settings.max_body_bytes,
            max_reply_bytes=settings.max_reply_bytes,
            har_body_bytes=settings.har_body_bytes,
        )
    from service.clients.browser import BrowserClient

    return BrowserClient(kind, options, browser_settings(settings), unit=unit)


def browser_settings(settings: Settings):  # -> BrowserSettings (imported lazily: Selenium is heavy)
    from service.clients.browser_options import BrowserSettings

    return BrowserSettings.from_settings(settings)
