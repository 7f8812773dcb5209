"""A local browser's downloads: its own directory, a bound in bytes, and the watcher that keeps it.

Every local browser gets ``<its temp dir>/downloads`` (mode 0700), named to the browser twice: in
its profile preferences at launch (Chrome ``download.default_directory``, Firefox
``browser.download.dir``) and by BiDi ``browser.setDownloadBehavior`` (``behavior()``), so a page's
downloads never reach the service user's ``~/Downloads``. The directory lives inside the session's
temp dir, so ``SessionProcesses.end()`` and the reaper remove it with everything else.

**The bound** (``INNDX_MAX_DOWNLOAD_BYTES``) is on the bytes the session's downloads hold at once,
all files together (so it also bounds each file). Two layers keep it:

- **the kernel**, when the service runs as root: a tmpfs of exactly the bound is mounted on the
  directory (``nosuid,nodev,noexec``, mode 0700, owned like the temp dir), so the byte past it is
  refused (ENOSPC: both browsers then fail the download; measured). It holds pages in memory, at
  most the bound per local browser. ``INNDX_DOWNLOADS_TMPFS=0`` turns it off; not root, or a
  mount refused (a container without CAP_SYS_ADMIN), is the same: the watcher alone, logged.
- **the watcher**, always: one thread per browser that wakes on every change of the directory
  (inotify; a 10 ms poll where inotify is missing) and, as soon as the total reaches the bound,
  cuts every download still being written:

  - its partial file (Chrome ``*.crdownload``, Firefox ``*.part``) is truncated to zero at once:
    the disk is back under the bound whatever the browser does next. A partial file is never
    *removed*: the browser keeps writing to the open file, and an unlinked file that grows is
    disk spent where nobody can see it (measured, Firefox ESR 153);
  - Chrome: the download is cancelled (CDP ``Browser.cancelDownload`` through BiDi
    ``goog:cdp.sendCommand``, its id from ``browsingContext.downloadWillBegin``); Chrome then
    deletes the file itself. Measured: the write stops within a few ms;
  - Firefox has no way to cancel over BiDi (``setDownloadBehavior`` to ``denied``,
    ``emulation.setNetworkConditions`` offline: measured, both leave it writing). Its write goes
    on into the emptied file, which is cut to zero again each time it reaches the bound, until
    the response ends (the egress gateway cuts a plain-HTTP body at ``INNDX_MAX_BODY_BYTES``);
    the finished file is then removed.

  If finished files alone still reach the bound, the newest are removed until it holds. Without
  the tmpfs, the bound can be passed for an instant by what the browser writes before the
  watcher's thread runs: under 2 MiB on an idle machine for a gzip bomb inflating at ~250 MB/s,
  but ~12 MiB once on this 2-core machine at load 13 (a thread of the worker waits for the CPU
  and the GIL).

On a Selenium Grid the node's disk is not ours: ``DENIED`` is the only behaviour a remote browser
gets, and it has no ``Downloads``.

``files()`` lists the finished, uncut files; ``browser_download_files`` lists them in replies (by
the browser's events) and asks ``was_cut`` before it reads one.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass

from service.clients import libc
from service.clients.browser_user import BrowserUser

logger = logging.getLogger(__name__)

DIR_NAME = "downloads"
PARTIAL_SUFFIXES = (".crdownload", ".part")  # Chrome's and Firefox's files still being written
DENIED = {"downloadBehavior": {"type": "denied"}}
EVENTS = ("browsingContext.downloadWillBegin", "browsingContext.downloadEnd")
POLL = 0.01  # seconds between checks when inotify is not available
IDLE_CHECK = 0.5  # seconds between checks with inotify, when nothing changed
STOP_BOUND = 1.0  # seconds stop() waits for the watcher thread

_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x8, 0x80, 0x100
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8


class _Libc:
    """The calls the downloads need (None each where libc lacks it)."""

    inotify_init1 = libc.function("inotify_init1", [ctypes.c_int])
    inotify_add_watch = libc.function("inotify_add_watch", [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32])
    mount = libc.function("mount", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p])


_libc = _Libc()


@dataclass(frozen=True)
class File:
    """A finished download: its name in the directory, its path and size."""

    name: str
    path: str
    size: int


@dataclass(frozen=True)
class _Entry:
    name: str
    path: str
    key: tuple[int, int]  # (device, inode): a file keeps it across the browser's rename
    allocated: int  # bytes on disk (a cut file written on past its hole counts what it holds)
    size: int
    mtime: float

    @property
    def partial(self) -> bool:
        return self.name.endswith(PARTIAL_SUFFIXES)


def _mount_tmpfs(path: str, size: int) -> bool:
    """Mount a tmpfs of ``size`` bytes on ``path`` (owned like ``path``): the kernel then refuses
    the byte past the bound. Only root can; anyone else gets False and the watcher alone."""
    if _libc.mount is None or os.geteuid() != 0:
        return False
    st = os.stat(path)
    data = f"size={size},mode=0700,uid={st.st_uid},gid={st.st_gid}".encode()
    if _libc.mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, data) != 0:
        logger.info("no tmpfs for downloads (%s): the watcher alone bounds them", os.strerror(ctypes.get_errno()))
        return False
    return True


class Downloads:
    """One local browser's downloads directory, its bound and its watcher."""

    def __init__(self, temp_dir: str, max_bytes: int, tmpfs: bool = True, user: BrowserUser | None = None):
        self.dir = os.path.join(temp_dir, DIR_NAME)
        os.mkdir(self.dir, 0o700)
        if user is not None:  # the browser's, before the mount (which takes its owner from the dir)
            user.give(self.dir)
        self.max_bytes = max_bytes
        # root: a tmpfs of exactly the bound (unmounted by SessionProcesses.end and the reaper)
        self.kernel_bound = tmpfs and _mount_tmpfs(self.dir, max_bytes)
        self.cuts = 0  # downloads cut at the bound so far
        self._cancel: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()  # browser download ids begun and not ended (Chrome)
        self._cancelled: set[str] = set()
        self._cut: set[tuple[int, int]] = set()  # files cut to zero, removed once finished
        self._stop = threading.Event()
        self._wake_r = self._wake_w = -1  # the watcher's wake-up pipe, made by start()
        self._thread: threading.Thread | None = None

    def behavior(self) -> dict:
        """The ``browser.setDownloadBehavior`` parameters: allowed, into this directory only."""
        return {"downloadBehavior": {"type": "allowed", "destinationFolder": self.dir}}

    # ----------------------------------------------------------------------------- events

    def on_event(self, method: str, params: dict) -> None:
        """A download event from the BiDi socket thread: keep the ids of downloads in flight."""
        ident = params.get("download")
        if not isinstance(ident, str):
            return
        with self._lock:
            if method == "browsingContext.downloadWillBegin":
                self._in_flight.add(ident)
            else:
                self._in_flight.discard(ident)
                self._cancelled.discard(ident)
        self._wake()  # a late id may be one to cancel now

    # ----------------------------------------------------------------------------- watcher

    def start(self, cancel: Callable[[str], None] | None = None) -> None:
        """Start the watcher; ``cancel(id)`` asks the browser to cancel one download (Chrome)."""
        if self._thread is not None:
            return
        self._cancel = cancel
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._watch, name="browser-downloads", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watcher (bounded); the directory goes with the session's temp dir. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        if self._thread is None:
            return
        self._thread.join(STOP_BOUND)
        if self._thread.is_alive():
            return  # its descriptors stay open rather than close under it
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"w")
        except OSError:  # full (the watcher wakes anyway) or closed (stopped)
            pass

    def _watch(self) -> None:
        notify = self._inotify()
        try:
            while not self._stop.is_set():
                fds = [self._wake_r] + ([notify] if notify is not None else [])
                ready, _, _ = select.select(fds, [], [], IDLE_CHECK if notify is not None else POLL)
                for fd in ready:
                    _drain(fd)
                if self._stop.is_set():
                    break
                try:
                    self.check()
                except Exception:  # noqa: BLE001 - the watcher must outlive one bad pass
                    logger.error("download watcher failed a check", exc_info=True)
        finally:
            if notify is not None:
                os.close(notify)

    def _inotify(self) -> int | None:
        if _libc.inotify_init1 is None or _libc.inotify_add_watch is None:
            return None
        fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if _libc.inotify_add_watch(fd, self.dir.encode(), mask) < 0:
            os.close(fd)
            return None
        return fd

    # ----------------------------------------------------------------------------- one pass

    def usage(self) -> int:
        """Bytes the directory's files hold on disk now."""
        return sum(entry.allocated for entry in self._scan())

    def check(self) -> None:
        """One pass: past the bound, cut what is being written (and, if need be, the newest
        finished files); remove cut files the browser has finished; cancel late-known ids."""
        entries = self._scan()
        total = sum(entry.allocated for entry in entries)
        if total >= self.max_bytes:  # at it: a full tmpfs holds exactly the bound
            self._cut_at_bound(entries, total)
            entries = self._scan()
        elif any(entry.partial and entry.key in self._cut for entry in entries):
            self._cancel_in_flight()  # a cut download whose id arrived after the cut
        for entry in entries:
            if not entry.partial and entry.key in self._cut:
                _remove(entry.path)  # the browser finished writing a file we had cut
                self._cut.discard(entry.key)
        self._cut &= {entry.key for entry in entries}  # gone (Chrome deletes what it cancels)

    def _cut_at_bound(self, entries: list[_Entry], total: int) -> None:
        partial = [entry for entry in entries if entry.partial]
        fresh = [entry for entry in partial if entry.key not in self._cut]
        for entry in partial:
            try:
                os.truncate(entry.path, 0)
            except OSError:
                continue
            self._cut.add(entry.key)
        self._cancel_in_flight()
        self.cuts += len(fresh)
        held = sum(entry.allocated for entry in entries if not entry.partial)
        for entry in sorted((e for e in entries if not e.partial), key=lambda e: e.mtime, reverse=True):
            if held < self.max_bytes:
                break
            _remove(entry.path)
            held -= entry.allocated
            self.cuts += 1
        # once per download: Firefox writes on into a file we cut, which passes the bound again
        log = logger.warning if fresh else logger.debug
        log("a session's downloads passed their bound of %d bytes (%d held): cut", self.max_bytes, total)

    def _cancel_in_flight(self) -> None:
        cancel = self._cancel
        if cancel is None:
            return
        with self._lock:
            todo = self._in_flight - self._cancelled
            self._cancelled |= todo
        for ident in todo:
            try:
                cancel(ident)
            except Exception as exc:  # noqa: BLE001 - a browser going away fails in many ways
                logger.info("cancelling download %s failed: %r", ident, exc)

    def _scan(self) -> list[_Entry]:
        found = []
        try:
            items = list(os.scandir(self.dir))
        except OSError:
            return found
        for item in items:
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if not item.is_file(follow_symlinks=False):
                continue
            found.append(
                _Entry(item.name, item.path, (st.st_dev, st.st_ino), st.st_blocks * 512, st.st_size, st.st_mtime)
            )
        return found

    # ----------------------------------------------------------------------------- listing

    def was_cut(self, device: int, inode: int) -> bool:
        """Whether the watcher cut the file with this (device, inode) (``browser_download_files``)."""
        return (device, inode) in self._cut

    def files(self) -> list[File]:
        """The finished downloads that were not cut, by name. While Firefox writes a download it
        holds the final name with an empty file: an empty file is not listed while any download
        is being written."""
        entries = self._scan()
        writing = any(entry.partial for entry in entries)
        return sorted(
            (
                File(entry.name, entry.path, entry.size)
                for entry in entries
                if not entry.partial and entry.key not in self._cut and not (writing and entry.size == 0)
            ),
            key=lambda file: file.name,
        )


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except (BlockingIOError, OSError):
        pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
