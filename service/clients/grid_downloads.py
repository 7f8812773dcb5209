"""A Grid browser's downloads, through Selenium Grid's managed downloads: the node's disk, not ours.

- The session asks for ``se:downloadsEnabled: true`` (``INNDX_GRID_DOWNLOADS``, on by default);
  a node started with ``--enable-managed-downloads true`` (``scripts/grid-node.toml.in``) gives
  the browser a download dir of the session's own and deletes it with the session. A Grid whose
  nodes lack it matches no slot for such a request: set ``INNDX_GRID_DOWNLOADS=0`` there, and its
  browsers are told to deny downloads (``browser_downloads.DENIED``), as before.
- The facts come from the same BiDi events as locally (the Grid passes them on, measured with
  the pinned server 4.48); the event's ``filepath`` is the node's, of which only the file's name
  is used.
- A file is fetched by name (``POST /session/{id}/se/files`` ``{"name"}``, which answers
  ``{"value": {"filename", "contents"}}``: a base64 zip of the one file), with a bound on the
  HTTP body as it arrives (``response_limit``: what a zip of ``INNDX_MAX_DOWNLOAD_BYTES`` can
  take, in base64), unzipped in memory (``unpack``): exactly one member, its bytes read up to the
  bound whatever its header claims. Nothing of it is written to this host's disk.
- The bound cannot hold the node's own disk (no watcher runs there, and a Grid browser cannot be
  cut while it writes): a file over the bound is not listed, and the node deletes it with the
  session. Bounding what a node writes is the Grid operator's business (a disk quota, a tmpfs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import posixpath
import zipfile
from typing import Any

import urllib3

from service.deadline import Deadline

logger = logging.getLogger(__name__)

CAPABILITY = "se:downloadsEnabled"
CHUNK = 1024 * 1024
FETCH_BOUND = 60.0  # seconds one fetch may take at most (and never past the action's deadline)


def response_limit(max_bytes: int) -> int:
    """The most bytes the Grid's answer for a file within ``max_bytes`` can take: deflate adds at
    most 5 bytes per 16 KiB stored block, the zip's own headers about a kilobyte (the name at most
    64 KiB), base64 a third, the JSON around it a few hundred bytes."""
    zipped = max_bytes + (max_bytes // 16384 + 1) * 5 + 2 * 65536 + 1024
    return (zipped + 2) // 3 * 4 + 4096


def unpack(body: bytes, max_bytes: int, keep: bool) -> tuple[int, str, bytes] | None:
    """(size, sha256, the bytes when ``keep``) of the one file in the Grid's answer ``body``, or
    None: not the Grid's shape, not one member, over ``max_bytes``, a corrupt or encrypted zip."""
    try:
        value = json.loads(body)["value"]
        contents = base64.b64decode(value["contents"], validate=True)
        with zipfile.ZipFile(io.BytesIO(contents)) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1 or members[0].file_size > max_bytes:
                return None
            digest, parts, size = hashlib.sha256(), [], 0
            with archive.open(members[0]) as member:
                while True:
                    chunk = member.read(min(CHUNK, max_bytes + 1 - size))
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:  # the header lied
                        return None
                    digest.update(chunk)
                    if keep:
                        parts.append(chunk)
    except (ValueError, KeyError, TypeError, binascii.Error, zipfile.BadZipFile, RuntimeError, NotImplementedError,
            OSError, EOFError):
        return None
    return size, digest.hexdigest(), b"".join(parts)


class GridFiles:
    """The managed downloads of one Grid session (a ``browser_download_files.Source``)."""

    def __init__(self, grid_url: str, session_id: str, max_bytes: int):
        parsed = urllib3.util.parse_url(grid_url)
        self._headers = {"Content-Type": "application/json; charset=utf-8", "Accept-Encoding": "identity"}
        if parsed.auth:  # credentials in the Grid's URL, as Selenium itself sends them
            self._headers.update(urllib3.util.make_headers(basic_auth=parsed.auth))
        base = urllib3.util.Url(scheme=parsed.scheme, host=parsed.host, port=parsed.port, path=parsed.path).url.rstrip("/")
        self._url = f"{base}/session/{session_id}/se/files"
        self.max_bytes = max_bytes
        self._pool = urllib3.PoolManager(num_pools=1, maxsize=1, retries=False)

    def name_of(self, filepath: Any) -> str | None:
        if not isinstance(filepath, str) or "\x00" in filepath:
            return None
        name = posixpath.basename(filepath.replace("\\", "/"))
        return None if name in ("", ".", "..") else name

    def read(self, name: str, keep: bool, deadline: Deadline) -> tuple[int, str, bytes] | None:
        body = self._fetch(name, deadline)
        return None if body is None else unpack(body, self.max_bytes, keep)

    def _fetch(self, name: str, deadline: Deadline) -> bytes | None:
        limit = response_limit(self.max_bytes)
        seconds = max(1.0, min(FETCH_BOUND, deadline.remaining()))
        try:
            response = self._pool.request(
                "POST", self._url, body=json.dumps({"name": name}).encode(), headers=self._headers,
                preload_content=False, timeout=urllib3.Timeout(total=seconds), redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            logger.info("fetching a download from the Grid failed: %r", exc)
            return None
        whole = False
        try:
            if response.status != 200:
                logger.info("the Grid answered %d for a download", response.status)
                return None
            parts, size = [], 0
            for chunk in response.stream(65536, decode_content=False):
                size += len(chunk)
                if size > limit:
                    logger.info("a Grid download is over the bound of %d bytes: not listed", self.max_bytes)
                    return None
                parts.append(chunk)
            whole = True
            return b"".join(parts)
        except urllib3.exceptions.HTTPError as exc:
            logger.info("reading a download from the Grid failed: %r", exc)
            return None
        finally:
            if not whole:  # the rest unread: this connection is not reused
                response.close()
            response.release_conn()

    def close(self) -> None:
        self._pool.clear()
