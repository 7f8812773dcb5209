"""A browser session's downloads as its replies list them, and the ``download`` action's bytes.

The facts come from the BiDi events every local browser sends (subscribed for all contexts at
launch, ``browser_launch.prepare``; measured on Debian chromium and Firefox ESR):
``browsingContext.downloadWillBegin`` (``url``, ``suggestedFilename``, ``navigation``; Chrome adds
its own ``download`` id and gives a ``<a download>`` click no navigation) and
``browsingContext.downloadEnd`` (``status`` ``complete`` with ``filepath``, or ``canceled``).
A download is keyed by Chrome's ``download`` id, else by its navigation id (Firefox gives one to
every download).

Decisions:
- **Which reply lists a download**: the reply of the first action that succeeds after the download
  ended ``complete``, once (an error frame lists none: its downloads go to the next reply). After
  an action, the downloads still being written are waited for, up to ``SETTLE`` seconds and never
  past the action's own timeout (``take``); one still being written then is listed by a later
  reply, once it is done. The ``downloads`` field is absent when the list would be empty.
- **A download cut at the bound** (``INNDX_MAX_DOWNLOAD_BYTES``, ``browser_downloads``), cancelled,
  or whose file is gone, changed into something else than a regular file, or lies outside the
  session's download dir, is never listed: there are no bytes to give. The service log says so.
- **The file is read** by name from the download dir opened ``O_DIRECTORY|O_NOFOLLOW``, with
  ``O_NOFOLLOW`` (a symlink is refused), as a regular file of at most the bound; the event's
  ``filepath`` must name a file directly in that dir. ``size`` and ``sha256`` are of what was read
  then; ``download`` reads it again and answers only the same bytes (else 404: gone).
- **mime_type** is guessed from the suggested file name with Python's built-in table (the same
  on every host and browser; a download's response is not always seen: Chrome reports no network
  events for a ``<a download>`` fetch), ``application/octet-stream`` when unknown.
- **ids** are ``d1``, ``d2``, ... in the order listed: short, unique in the session; opaque to
  clients.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from service import reply_bound
from service.clients.browser_downloads import EVENTS, Downloads
from service.deadline import Deadline
from service.errors import NotFound

logger = logging.getLogger(__name__)

WILL_BEGIN, END = "browsingContext.downloadWillBegin", "browsingContext.downloadEnd"
SETTLE = 5.0  # seconds an action's reply waits (at most) for downloads still being written
CHUNK = 1024 * 1024
MAX_TRACKED = 1000  # downloads remembered per session (listed or not): beyond, the oldest go
_MIME = mimetypes.MimeTypes()  # the built-in table only: the same answer on every host


def mime_type(name: str) -> str:
    guessed, _ = _MIME.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def download_key(params: dict[str, Any]) -> str | None:
    """The key of one download in its events: Chrome's own id, else its navigation's."""
    for field in ("download", "navigation"):
        value = params.get(field)
        if isinstance(value, str) and value:
            return f"{field}:{value}"
    return None


def name_in(directory: str, filepath: Any) -> str | None:
    """The file name ``filepath`` gives directly inside ``directory``, or None (elsewhere, a
    relative or odd path, a dot name)."""
    if not isinstance(filepath, str) or not filepath or "\x00" in filepath:
        return None
    parent, name = os.path.split(os.path.normpath(filepath))
    if not os.path.isabs(filepath) or name in ("", ".", "..") or parent != os.path.normpath(directory):
        return None
    return name


@dataclass
class Listed:
    """A finished download as a reply lists it."""

    id: str
    url: str
    suggested_filename: str
    mime_type: str
    size: int
    sha256: str
    name: str  # its file's name in the download dir

    def frame(self) -> dict[str, Any]:
        return {
            "id": self.id, "url": self.url, "suggested_filename": self.suggested_filename,
            "mime_type": self.mime_type, "size": self.size, "sha256": self.sha256,
        }


@dataclass
class _Pending:
    url: str
    suggested_filename: str
    status: str = "writing"  # then "complete" or "canceled"
    filepath: Any = None


class Source(Protocol):
    """Where a browser's finished downloads are read: this host's disk (``LocalFiles``) or a Grid
    node's, through its managed downloads (``grid_downloads.GridFiles``)."""

    def name_of(self, filepath: Any) -> str | None:
        """The file's name for ``read``, from the event's ``filepath``; None when it is not one of ours."""

    def read(self, name: str, keep: bool, deadline: Deadline) -> tuple[int, str, bytes] | None:
        """(size, sha256, the bytes when ``keep``), or None: gone, cut, over the bound, not a file."""


class DownloadLog:
    """One browser's downloads: fed by BiDi events (the socket thread), read by the session's."""

    def __init__(self, source: Source):
        self.source = source
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}  # by download_key, in event order
        self._listed: dict[str, Listed] = {}
        self._count = 0

    # ----- the socket thread ------------------------------------------------------------------
    def on_event(self, method: str, params: dict) -> None:
        key = download_key(params)
        if key is None:
            return
        with self._cond:
            if method == WILL_BEGIN:
                url, name = params.get("url"), params.get("suggestedFilename")
                self._pending[key] = _Pending(url if isinstance(url, str) else "", name if isinstance(name, str) else "")
                while len(self._pending) > MAX_TRACKED:
                    self._pending.pop(next(iter(self._pending)))
            elif method == END and key in self._pending:
                entry = self._pending[key]
                entry.status = "complete" if params.get("status") == "complete" else "canceled"
                entry.filepath = params.get("filepath")
            self._cond.notify_all()

    def close(self) -> None:
        """Let go of what the source holds (a Grid's HTTP connections). Idempotent."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    # ----- the session thread -----------------------------------------------------------------
    def take(self, deadline: Deadline) -> list[dict[str, Any]]:
        """The finished downloads not listed yet, after waiting (bounded) for those being written."""
        bound = Deadline(min(SETTLE, deadline.remaining()))
        with self._cond:
            self._cond.wait_for(
                lambda: all(entry.status != "writing" for entry in self._pending.values()), bound.remaining()
            )
            ended = [(key, entry) for key, entry in self._pending.items() if entry.status != "writing"]
            for key, _ in ended:
                del self._pending[key]
        found = []
        for _, entry in ended:
            listed = self._list(entry, deadline)
            if listed is not None:
                found.append(listed.frame())
        return found

    def content(self, ident: str, limit: int, deadline: Deadline) -> tuple[Listed, bytes]:
        """A listed download and its bytes (the same as listed); 404 when unknown or gone, 413
        past ``limit`` (the reply bound), before it is read."""
        listed = self._listed.get(ident)
        if listed is None:
            raise NotFound(f"no download {ident[:128]!r} in this session (ids come from replies' downloads)")
        reply_bound.check(f"download {ident}", listed.size, limit)
        read = self.source.read(listed.name, True, deadline)
        if read is None or read[0] != listed.size or read[1] != listed.sha256:
            raise NotFound(f"download {ident!r}: its file is gone or changed (cut at the download bound?)")
        return listed, read[2]

    def _list(self, entry: _Pending, deadline: Deadline) -> Listed | None:
        if entry.status != "complete":
            logger.info("a download was cancelled or cut: not listed")
            return None
        name = self.source.name_of(entry.filepath)
        read = self.source.read(name, False, deadline) if name is not None else None
        if name is None or read is None:
            logger.info("a download's file is gone, cut or outside its dir: not listed")
            return None
        self._count += 1
        listed = Listed(
            id=f"d{self._count}", url=entry.url, suggested_filename=entry.suggested_filename,
            mime_type=mime_type(entry.suggested_filename or name), size=read[0], sha256=read[1], name=name,
        )
        self._listed[listed.id] = listed
        while len(self._listed) > MAX_TRACKED:
            self._listed.pop(next(iter(self._listed)))
        return listed


class LocalFiles:
    """A local browser's downloads dir. ``cut(dev, ino)`` says whether the bound's watcher cut a
    file (``Downloads.was_cut``)."""

    def __init__(self, directory: str, max_bytes: int, cut: Callable[[int, int], bool] | None = None):
        self.dir = directory
        self.max_bytes = max_bytes
        self._cut = cut

    def name_of(self, filepath: Any) -> str | None:
        return name_in(self.dir, filepath)

    def read(self, name: str, keep: bool, deadline: Deadline | None = None) -> tuple[int, str, bytes] | None:
        """(size, sha256, the bytes when ``keep``) of ``name`` in the dir, or None: never through
        a symlink, only a regular file within the bound that the watcher did not cut."""
        try:
            where = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=where)
        except OSError:  # gone, a symlink (ELOOP), ...
            return None
        finally:
            os.close(where)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes:
                return None
            if self._cut is not None and self._cut(st.st_dev, st.st_ino):
                return None
            digest, parts, size = hashlib.sha256(), [], 0
            while size <= self.max_bytes:
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                digest.update(chunk)
                if keep:
                    parts.append(chunk)
            if size > self.max_bytes:
                return None
            return size, digest.hexdigest(), b"".join(parts)
        except OSError:
            return None
        finally:
            os.close(fd)



def tapped_log(taps: dict[str, Callable[[str, dict], None]], local: Downloads | None, grid: Source | None) -> DownloadLog | None:
    """The session's download log, fed by the download events through ``taps`` (the BiDi
    channel's): a local browser's watcher (``local``) gets them too; a Grid browser's files are
    read through ``grid`` (``grid_downloads.GridFiles``); neither: no log (downloads denied)."""
    if local is not None:
        log = DownloadLog(LocalFiles(local.dir, local.max_bytes, local.was_cut))

        def tap(method: str, params: dict) -> None:
            local.on_event(method, params)
            log.on_event(method, params)
    elif grid is not None:
        log = DownloadLog(grid)
        tap = log.on_event
    else:
        return None
    taps.update(dict.fromkeys(EVENTS, tap))
    return log

def take(log: DownloadLog | None, deadline: Deadline) -> list[dict[str, Any]]:
    """What a reply lists: ``log.take``, or nothing for a browser that has no downloads."""
    return [] if log is None else log.take(deadline)


def reply(log: DownloadLog | None, ident: str, max_reply_bytes: int, deadline: Deadline) -> dict[str, Any]:
    """The ``download`` reply's fields: the listed metadata and the bytes, base64 (413 past the
    reply bound, like every reply's data)."""
    if log is None:
        raise NotFound(f"no download {ident[:128]!r} in this session (this browser keeps no downloads)")
    listed, data = log.content(ident, max_reply_bytes, deadline)
    return {"download_id": listed.id, **{k: v for k, v in listed.frame().items() if k != "id"},
            "content": base64.b64encode(data).decode("ascii")}
