"""The operator's proxies, named by id in the open frame.

The file (``INNDX_PROXIES_FILE``) is JSON::

    {"proxies": {"de-1": {"url": "http://user:pass@10.0.0.5:3128", "tenants": ["acme"]}}}

``tenants`` is optional (absent: every tenant may use the proxy). An unknown id is a fatal 400
at open, a proxy the tenant may not use a fatal 403. Proxy URLs are never logged nor sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service import secret_files
from service.errors import BadRequest, Forbidden
from service.model import Proxy


@dataclass(frozen=True)
class ProxyEntry:
    proxy: Proxy
    tenants: frozenset[str] | None


class Proxies:
    def __init__(self, entries: dict[str, ProxyEntry]):
        self._entries = entries

    @classmethod
    def load(cls, path: str | None) -> Proxies:
        if not path:
            return cls({})
        document = secret_files.read_json(path, "proxies")
        entries = {}
        for proxy_id, entry in document.get("proxies", {}).items():
            url = entry["url"]
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"proxies file: proxy {proxy_id!r} needs an http:// or https:// url")
            tenants = entry.get("tenants")
            entries[proxy_id] = ProxyEntry(Proxy(proxy_id, url), None if tenants is None else frozenset(tenants))
        return cls(entries)

    def resolve(self, ids: Sequence[str], tenant: str) -> tuple[Proxy, ...]:
        proxies = []
        for proxy_id in ids:
            entry = self._entries.get(proxy_id)
            if entry is None:
                raise BadRequest(f"invalid open frame at $.proxies: unknown proxy {proxy_id!r}", fatal=True)
            if entry.tenants is not None and tenant not in entry.tenants:
                raise Forbidden(f"proxy {proxy_id!r} is not allowed for this tenant", fatal=True)
            proxies.append(entry.proxy)
        return tuple(proxies)
