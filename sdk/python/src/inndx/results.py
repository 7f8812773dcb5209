"""Typed replies: what a goto answered, with headers as an ordered multi-dict."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from inndx.errors import Error


class Headers:
    """Response headers in received order, repeats kept apart; names compare case-insensitively.

    ``headers["content-type"]`` is the first value (``KeyError`` when absent), ``get(name)`` the
    first or a default, ``get_all(name)`` every value in order, ``items()`` the ``(name, value)``
    pairs exactly as received. Iterating gives the names in order (repeats included).
    """

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[Iterable[str]] = ()) -> None:
        self._pairs: tuple[tuple[str, str], ...] = tuple((str(n), str(v)) for n, v in pairs)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        wanted = name.lower()
        return next((v for n, v in self._pairs if n.lower() == wanted), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in received order."""
        wanted = name.lower()
        return [v for n, v in self._pairs if n.lower() == wanted]

    def items(self) -> list[tuple[str, str]]:
        """The ``(name, value)`` pairs in received order."""
        return list(self._pairs)

    def keys(self) -> list[str]:
        return [n for n, _ in self._pairs]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._pairs == other._pairs

    def __repr__(self) -> str:
        return f"Headers({list(self._pairs)!r})"


@dataclass(frozen=True)
class Cookie:
    """A cookie set by a response of the navigation (``expires``: ISO 8601 UTC or None)."""

    name: str
    value: str
    domain: str | None = None
    path: str | None = None
    expires: str | None = None
    http_only: bool = False
    secure: bool = False
    same_site: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Cookie:
        return cls(
            name=data["name"], value=data["value"], domain=data.get("domain"), path=data.get("path"),
            expires=data.get("expires"), http_only=bool(data.get("http_only", False)),
            secure=bool(data.get("secure", False)), same_site=data.get("same_site"),
        )


@dataclass(frozen=True)
class Redirect:
    """One hop: ``url`` answered with ``location``; ``side`` server or client; ``type`` its kind."""

    url: str
    location: str
    side: str
    type: str


@dataclass(frozen=True)
class Download:
    """A file the page downloaded, as a reply listed it; ``content`` is filled by ``download()``."""

    id: str
    url: str
    suggested_filename: str
    mime_type: str
    size: int
    sha256: str
    content: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_wire(cls, item: dict[str, Any], content: bytes | None = None) -> Download:
        return cls(
            id=item.get("id") or item.get("download_id") or "", url=item.get("url", ""),
            suggested_filename=item.get("suggested_filename", ""), mime_type=item.get("mime_type", ""),
            size=int(item.get("size", 0)), sha256=item.get("sha256", ""), content=content,
        )


@dataclass(frozen=True)
class GotoResult:
    """The reply to a goto: the final response of the navigation and every hop before it.

    ``body`` is the raw bytes of the final response (``b""`` when the server sent none);
    ``raw`` is the reply frame exactly as received (body still base64).
    """

    url: str
    status_code: int
    headers: Headers
    cookies: list[Cookie]
    redirects: list[Redirect]
    body: bytes
    content_type: str | None
    id: Any = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    downloads: list[Download] = field(default_factory=list)  # files this goto downloaded (browsers)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    @classmethod
    def from_wire(cls, frame: dict[str, Any]) -> GotoResult:
        return cls(
            url=frame["url"],
            status_code=frame["status_code"],
            headers=Headers(frame.get("headers") or ()),
            cookies=[Cookie.from_wire(c) for c in frame.get("cookies") or ()],
            redirects=[
                Redirect(url=r["url"], location=r["location"], side=r["side"], type=r["type"])
                for r in frame.get("redirects") or ()
            ],
            body=decode_base64(frame.get("body")),
            content_type=frame.get("content_type"),
            id=frame.get("id"),
            raw=frame,
            downloads=[Download.from_wire(d) for d in frame.get("downloads") or ()],
        )


def decode_base64(value: str | None) -> bytes:
    """Bytes of a base64 field; ``b""`` for null. Not base64 at all: ``inndx.Error``."""
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Error(f"the server sent a field that is not base64: {value[:40]!r}", None) from None
