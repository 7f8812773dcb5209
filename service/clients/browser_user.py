"""Who local browsers run as, and what they inherit: the blast radius of a page.

A page is an attacker inside our host. Three things bound what a browser that a page took over
can reach:

- **Never root, always sandboxed.** A service running as root starts its drivers (and so its
  browsers) as a dedicated unprivileged user, ``INNDX_BROWSER_USER`` (default
  ``inndx-browser``, made by ``scripts/setup``). Browsers that do not run as root keep their
  own sandbox (Chrome's ``--no-sandbox`` is given only to a browser that runs as root, which
  happens only when the operator names ``root`` on purpose). A service that is not root runs
  its browsers as itself, sandboxed; it cannot switch users, so naming another one is an error.
- **No inherited secrets.** A driver gets a fixed, small environment (``clean_environment``):
  ``PATH``, the locale, the time zone, the session's marker and temp dir, and ``HOME`` pointing
  into that temp dir. Nothing else of the service's environment (``INNDX_*`` secrets, Redis URLs,
  proxy credentials, cloud tokens) reaches a browser or its driver.
- **A home of its own.** ``HOME`` is the session's temp dir (removed with the session), so
  nothing a browser writes "at home" (downloads, caches, crash dumps) lands in the service
  user's home or outlives the session.

``resolve(name)`` is cached: a user's ids do not change while the service runs.
"""

from __future__ import annotations

import functools
import logging
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from service import errors

logger = logging.getLogger(__name__)

DEFAULT_USER = "inndx-browser"
# The only variables of the service's environment a driver may inherit (values unchanged).
INHERITED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ")
FALLBACK_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class BrowserUser:
    name: str
    uid: int
    gid: int

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    @property
    def switches(self) -> bool:
        """Whether starting a driver changes user (the service is root, the browser user not)."""
        return self.uid != os.geteuid()

    def popen_kw(self) -> dict:
        """``subprocess.Popen`` arguments that start a process as this user (no extra groups)."""
        if not self.switches:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, path: str) -> None:
        """Hand a dir we made (the session's temp dir) to this user, private to it. ``OSError``
        when the user could not reach it (a dir above it it may not search)."""
        if self.switches:
            blocked = self.blocked_at(os.path.dirname(os.path.abspath(path)))
            if blocked is not None:
                raise PermissionError(
                    f"the browser user {self.name!r} cannot reach {blocked} (mode"
                    f" {os.stat(blocked).st_mode & 0o777:o}): the service's TMPDIR must be searchable by it"
                )
            os.chown(path, self.uid, self.gid)
        os.chmod(path, 0o700)

    def blocked_at(self, path: str) -> str | None:
        """The first dir from ``/`` down to ``path`` this user may not search, if any."""
        parts = []
        while True:
            parts.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        for directory in reversed(parts):
            st = os.stat(directory)
            if st.st_uid == self.uid:
                bit = 0o100
            elif st.st_gid == self.gid:
                bit = 0o010
            else:
                bit = 0o001
            if not st.st_mode & bit:
                return directory
        return None


@functools.cache
def resolve(name: str = "") -> BrowserUser:
    """The user local browsers run as, for the operator's ``INNDX_BROWSER_USER`` (``""``: the
    default). Raises ``Unavailable`` (503) naming the fix when it cannot be had."""
    euid = os.geteuid()
    if euid != 0:
        own = pwd.getpwuid(euid)
        if name and name not in (own.pw_name, str(euid)):
            raise errors.Unavailable(
                f"INNDX_BROWSER_USER={name!r}, but the service runs as {own.pw_name!r} and cannot switch users"
            )
        return BrowserUser(own.pw_name, euid, os.getegid())
    wanted = name or DEFAULT_USER
    try:
        entry = pwd.getpwnam(wanted)
    except KeyError:
        raise errors.Unavailable(
            f"the browser user {wanted!r} does not exist: run scripts/setup (it makes {DEFAULT_USER!r}),"
            " or set INNDX_BROWSER_USER to an unprivileged user"
        ) from None
    user = BrowserUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if user.is_root:
        logger.warning("INNDX_BROWSER_USER is root: browsers run as root, without their sandbox")
    return user


def clean_environment(extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A driver's whole environment: the few inherited variables of ``base`` (the service's own
    by default), then ``extra`` (the marker, the temp dir, ``HOME``)."""
    source = os.environ if base is None else base
    env = {name: source[name] for name in INHERITED if source.get(name)}
    env.setdefault("PATH", FALLBACK_PATH)
    env.update(extra)
    return env
