"""upload in a browser: the client's bytes become files the page's file input holds.

The element is found in our sandbox (waiting up to the element wait, as click does) and must be
an ``<input type=file>``: anything else is a 400 saying so; a disabled one is a 409; more than one
file for an input without ``multiple`` is a 400. A hidden file input is fine (pages often hide
theirs behind a styled button). The files then reach the input through BiDi ``input.setFiles``
(the element's shared id, absolute paths), which fires ``input`` and ``change`` as a person's
pick does. Where the paths live depends on whose disk the browser reads:

- **local**: a fresh directory ``<session temp dir>/upload-XXXX`` (mode 0700, owned like the
  temp dir: the browser's user), one per upload, so a later upload never replaces the files an
  earlier one gave a page (Chrome reads a picked file when the form is sent, not when it is
  picked). Each file is created there with ``O_EXCL | O_NOFOLLOW`` relative to the directory's
  own descriptor: nothing is written through a link, nor outside that directory. The temp dir,
  and so every upload, is removed when the session ends (``SessionProcesses.end``).
- **Grid**: the node's disk is not ours, so each file goes to the node the way Selenium's
  ``LocalFileDetector`` sends one: a zip of that one file, base64, to the Grid's
  ``POST /session/{id}/se/file`` (``Command.UPLOAD_FILE``), which unpacks it into a fresh
  directory of the node and answers its path there. The zip is built in memory: the client's
  bytes never touch the service host's disk. The node removes its copies when the session ends.

Names are made safe first (``safe_name``): the base name alone (no directory, no ``/`` or ``\\``,
no NUL or control character), never empty, ``.`` or ``..``, at most ``NAME_BYTES`` bytes of
UTF-8; two files of one upload with the same safe name become ``a.txt`` and ``a (2).txt``.

A file's ``mime_type`` (checked by the schema, lower-cased by the protocol) is applied: BiDi
``input.setFiles`` takes paths alone, and the browser types a file it reads from a path by its
name's extension, so the files are retyped in the page. Before setFiles, ``ARM`` adds a listener in
our sandbox, first in the capture phase of the input's window, for the ``input`` event setFiles
fires; it gives the input a new FileList (a ``DataTransfer``'s) in which each file with a
``mime_type`` is a new ``File`` of the same bytes, name and ``lastModified`` with that type (the
others are kept as they are), and fires nothing itself. So the page sees exactly what a person's
pick gives, one trusted ``input`` and one trusted ``change``, and from the first of them
``File.type``, and so the Content-Type of the part a form posts, is the given type. (Measured
alternatives: retyping after setFiles leaves the page's listeners with the extension's type;
setting the files through a DataTransfer and dispatching the events ourselves makes them
untrusted, ``isTrusted`` false.) After setFiles, ``DISARM`` takes the listener back and reports;
should no ``input`` have reached it (a listener of the page's, added earlier to its window's
capture phase, stopped it with ``stopImmediatePropagation``), the files are retyped then, with a
warning logged. The listener acts once, for that element only, and not past the action's
deadline, should DISARM never come. Without any ``mime_type`` nothing is armed: the browser's
types stand, as before.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from selenium.webdriver.remote.command import Command

from service import errors
from service.clients import browser_page as page
from service.clients.bidi import BidiError
from service.clients.bidi_values import Node
from service.clients.page_scripts import FIRST_MATCH, SANDBOX
from service.deadline import Deadline
from service.model import UploadFile

if TYPE_CHECKING:
    from service.clients.bidi import Bidi
    from service.clients.browser_launch import Launched

logger = logging.getLogger(__name__)

DIR_PREFIX = "upload-"
NAME_BYTES = 200  # a safe name's UTF-8 bytes at most (a file system's limit is 255; room for " (N)")
EXT_BYTES = 40  # an extension longer than this is not kept apart when a long name is cut
FALLBACK = "file"

# The first element matching the selector (waiting up to waitMs), and whether it takes files:
# {state: "ok", el, multiple} for an enabled <input type=file>; else "invalid", "missing",
# "not file" (with its tag and type) or "disabled". Run in our sandbox: the page cannot lie
# about what the element is.
TARGET = """async function(selector, waitMs) {
  const match = await (""" + FIRST_MATCH + """)(selector, waitMs);
  if (match.state) return match;
  const el = match.el;
  if (!el) return {state: "missing"};
  const tag = el.localName;
  if (tag !== "input" || el.type !== "file") return {state: "not file", tag, type: tag === "input" ? el.type : ""};
  if (el.disabled || (el.closest && el.closest("fieldset[disabled]"))) return {state: "disabled", tag};
  return {state: "ok", tag, el, multiple: el.multiple};
}"""


# The input's files again, each one the frame gives a type to as a new File of the same bytes,
# name and date with that type (the others as they are), through a DataTransfer's FileList; the
# setter fires no event. False when the input holds other files than the upload's.
RETYPE = """(el, types) => {
  if (el.files.length !== types.length) return false;
  const list = new DataTransfer();
  Array.from(el.files, (f, i) => list.items.add(types[i] === null || f.type === types[i] ? f
    : new File([f], f.name, {type: types[i], lastModified: f.lastModified})));
  el.files = list.files;
  return true;
}"""

# Before input.setFiles: a listener, first in the capture phase of the input's window, that
# retypes the files on the ``input`` event setFiles fires (before any listener of the page's
# that was not added earlier on that window's capture phase, and before ``change``). It acts
# once, for this element only, and not after ``forMs`` (should DISARM never come).
ARM = """(el, types, forMs) => {
  const old = globalThis.inndxRetype;
  if (old) old.view.removeEventListener("input", old.listener, true);
  const view = el.ownerDocument.defaultView, until = performance.now() + forMs;
  const armed = {view, el, types, done: false};
  armed.listener = event => {
    if (armed.done || event.composedPath()[0] !== el || performance.now() > until) return;
    armed.done = true;
    view.removeEventListener("input", armed.listener, true);
    try { armed.retyped = (""" + RETYPE + """)(el, types); } catch (e) { armed.error = String(e); }
  };
  view.addEventListener("input", armed.listener, true);
  globalThis.inndxRetype = armed;
}"""

# After input.setFiles: the listener removed; with ``late`` (setFiles succeeded but fired no
# ``input`` we saw, say a page's earlier capturing listener stopped it), the files retyped now.
# {state: "in event" | "late" | "gone" (the page navigated away), types: the files' types now}.
DISARM = """(late) => {
  const armed = globalThis.inndxRetype;
  delete globalThis.inndxRetype;
  if (!armed) return {state: "gone"};
  armed.view.removeEventListener("input", armed.listener, true);
  let state = "in event";
  if (!armed.done && late) {
    armed.done = true;
    try { armed.retyped = (""" + RETYPE + """)(armed.el, armed.types); } catch (e) { armed.error = String(e); }
    state = "late";
  }
  return {state, retyped: !!armed.retyped, error: armed.error || "", types: Array.from(armed.el.files, f => f.type)};
}"""


def _fit(base: str, suffix: str = "") -> str:
    """``base`` with ``suffix`` before its extension, cut to ``NAME_BYTES`` of UTF-8 (the
    extension kept unless it is long)."""
    stem, ext = os.path.splitext(base)
    if len(ext.encode("utf-8")) > EXT_BYTES:
        stem, ext = base, ""
    if len((stem + suffix + ext).encode("utf-8")) > NAME_BYTES:
        room = NAME_BYTES - len((suffix + ext).encode("utf-8"))
        stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip()
    return stem + suffix + ext


def safe_name(name: str) -> str:
    """A base name that is safe to create in a directory of ours and to show a page."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _fit("".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cs")).strip())
    return FALLBACK if base in ("", ".", "..") else base


def safe_names(names: Sequence[str]) -> list[str]:
    """Each name made safe, and distinct from the others of the same upload."""
    taken: set[str] = set()
    result = []
    for name in names:
        safe = candidate = safe_name(name)
        number = 2
        while candidate in taken:
            candidate = _fit(safe, f" ({number})")
            number += 1
        taken.add(candidate)
        result.append(candidate)
    return result


def upload(launched: Launched, selector: str, files: Sequence[UploadFile], wait: float, deadline: Deadline) -> None:
    bidi, context = launched.bidi, launched.context
    wait_ms = int(1000 * min(wait, max(0.0, deadline.remaining() - 0.2)))
    found = page.call(bidi, context, TARGET, [selector, wait_ms], deadline, activation=False, sandbox=SANDBOX) or {}
    state = found.get("state")
    if state == "not file":
        what = f"<input type={found.get('type')}>" if found.get("tag") == "input" else f"<{found.get('tag')}>"
        raise errors.BadRequest(f"cannot upload to {selector!r}: it matches an {what}, not an <input type=file>")
    page.judged(found, selector, "upload to")  # invalid selector 400, missing 404, disabled 409
    if not isinstance(found.get("el"), str):
        raise errors.InternalError(f"the browser gave no reference to the element {selector!r} found")
    if len(files) > 1 and not found.get("multiple"):
        raise errors.BadRequest(
            f"the file input {selector!r} is not multiple: it takes one file, and the frame has {len(files)}"
        )
    names = safe_names([file.name for file in files])
    if launched.remote:
        paths = [_to_node(launched, name, file.content, deadline) for name, file in zip(names, files, strict=True)]
    else:
        assert launched.processes is not None
        paths = write_local(launched.processes.temp_dir, names, [file.content for file in files])
    types = [file.mime_type for file in files]
    params = {"context": context, "element": {"sharedId": found["el"]}, "files": paths}
    try:
        if any(types):
            arm = [Node(found["el"]), types, int(1000 * deadline.remaining())]
            page.call(bidi, context, ARM, arm, deadline, activation=False, sandbox=SANDBOX)
        bidi.command("input.setFiles", params, deadline)
    except BidiError as exc:
        if any(types):  # the browser answers: take the listener back (it would expire with the deadline)
            with contextlib.suppress(errors.ServiceError, BidiError, TimeoutError):  # the error to report is exc
                page.call(bidi, context, DISARM, [False], deadline, activation=False, sandbox=SANDBOX)
        if exc.error == "unable to set file input":  # it changed since we looked (disabled, another type)
            raise errors.Conflict(f"cannot upload to {selector!r}: {exc.message[:300]}") from exc
        if exc.error in ("no such element", "no such node"):
            raise errors.NotFound(f"the file input {selector!r} left the page before it got its files") from exc
        raise
    if any(types):
        _retyped(bidi, context, selector, types, deadline)


def _retyped(bidi: Bidi, context: str, selector: str, types: list[str | None], deadline: Deadline) -> None:
    """The listener taken back; the input's files checked to carry the frame's types. A page
    that left (its change listener sent the form, say) took the retyped files with it."""
    try:
        outcome = page.call(bidi, context, DISARM, [True], deadline, activation=False, sandbox=SANDBOX) or {}
    except BidiError as exc:  # the page went as we asked (its realm with it): it had its files
        logger.info("the page left during the upload; its retyped files not checked: %s", exc.error)
        return
    if outcome.get("error"):  # our script failed: the page holds the files, typed by their extensions
        raise errors.InternalError(
            f"the files reached {selector!r} but could not be given their mime_type: {str(outcome['error'])[:300]}",
            fatal=False,
        )
    if outcome.get("state") == "late":
        logger.warning("the upload's input event was not seen: the files were retyped after the page's listeners ran")
    now = outcome.get("types")
    if not isinstance(now, list):  # "gone": the page left, with the files retyped in its input event
        return
    if len(now) != len(types) or any(given not in (None, seen) for given, seen in zip(types, now, strict=True)):
        logger.warning("after the upload, the page's input holds other files or types than the upload gave it")


def write_local(temp_dir: str, names: Sequence[str], contents: Sequence[bytes]) -> list[str]:
    """Write the files into a fresh 0700 directory of ``temp_dir``, owned like it; their paths.
    A write that fails (the disk full, say) leaves nothing behind: a 500, the session goes on."""
    folder = None
    try:
        owner = os.stat(temp_dir)
        chown = (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid())
        folder = os.path.abspath(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=temp_dir))
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if chown:
                os.fchown(directory, owner.st_uid, owner.st_gid)
            for name, content in zip(names, contents, strict=True):
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(name, flags, 0o600, dir_fd=directory)
                with open(fd, "wb", closefd=True) as out:
                    if chown:
                        os.fchown(out.fileno(), owner.st_uid, owner.st_gid)
                    out.write(content)
        finally:
            os.close(directory)
    except OSError as exc:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise errors.InternalError(f"could not write the upload's files: {exc.strerror or exc}", fatal=False) from exc
    return [os.path.join(folder, name) for name in names]


def _to_node(launched: Launched, name: str, content: bytes, deadline: Deadline) -> str:
    """One file to the Grid node (a zip of it, in memory); its path on the node."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored: the bytes are sent as they are
        archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    if deadline.remaining() <= 0:
        raise errors.GatewayTimeout(f"upload did not finish within {deadline.seconds:g}s")
    launched.set_http_timeout(deadline.remaining())
    answer = launched.driver.execute(Command.UPLOAD_FILE, {"file": base64.b64encode(buffer.getvalue()).decode("ascii")})
    path = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(path, str) or not path:
        raise errors.InternalError(f"the Grid answered no path for the uploaded file {name!r}", fatal=False)
    return path
