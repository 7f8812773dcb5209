"""The blast radius of a page: local browsers run as the unprivileged browser user, with their
sandbox on, and inherit none of the service's secrets.

The service is started with canary secrets in its environment (an ``INNDX_*`` one and a cloud
token). Then, for every process of a browser session (the driver, the browser, its renderers,
content and helper processes: every descendant of the service's worker), the test reads
``/proc/<pid>/environ`` and ``/proc/<pid>/status`` itself:

- no process holds a canary (control: the worker's own environment does);
- every process runs as the browser user, not root (the suite runs as root);
- the processes that run pages are inside a seccomp filter (``Seccomp: 2``), the browser's own
  sandbox. Control: with ``INNDX_BROWSER_USER=root`` (the operator's explicit opt-out) the same
  check finds page processes as root and, in Chrome, without a filter, so the check can fail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets

import psutil
import pytest

from service.clients.browser_user import DEFAULT_USER
from tests.support.site import Site

pytestmark = [pytest.mark.local_only, pytest.mark.clients("chrome", "firefox")]

PAGE_PROCESS = {"chrome": "--type=renderer", "firefox": "-isForBrowser"}


def _tree(svc) -> list[psutil.Process]:
    found = []
    for worker in svc.worker_pids():
        with contextlib.suppress(psutil.Error):
            found += psutil.Process(worker).children(recursive=True)
    return found


def _raw_environ(pid: int) -> bytes:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read()


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _facts(svc) -> list[dict]:
    facts = []
    for proc in _tree(svc):
        with contextlib.suppress(psutil.Error, OSError):
            facts.append(
                {
                    "pid": proc.pid,
                    "cmd": " ".join(proc.cmdline())[:200],
                    "uid": proc.uids().real,
                    "environ": _raw_environ(proc.pid),
                    "seccomp": _status(proc.pid).get("Seccomp"),
                }
            )
    return facts


def _open_and_load(svc, site: Site, client: str):
    from tests.support.wsclient import connect

    session = connect(svc.ws_url)
    session.open(client=client, max_retries=0, timeout="20s", recv_timeout=60)
    reply = session.request({"action": "goto", "url": site.url("/html")}, timeout=30)
    assert reply.get("status_code") == 200, reply
    return session


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite runs as root; the user switch is a root service's")
def test_browsers_run_unprivileged_sandboxed_and_without_secrets(start_service, site: Site, client: str):
    canary = secrets.token_hex(16)
    svc = start_service(INNDX_CANARY_SECRET=canary, AWS_SECRET_ACCESS_KEY=canary)
    [worker] = svc.worker_pids()
    assert canary.encode() in _raw_environ(worker)  # control: the secret is there to leak
    browser_uid = pwd.getpwnam(DEFAULT_USER).pw_uid
    with _open_and_load(svc, site, client):
        facts = _facts(svc)
    assert len(facts) >= 3, facts  # a driver, a browser, a page process at least
    pages = [f for f in facts if PAGE_PROCESS[client] in f["cmd"]]
    assert pages, [f["cmd"] for f in facts]
    for fact in facts:
        assert canary.encode() not in fact["environ"], fact["cmd"]
        assert b"INNDX_CANARY_SECRET" not in fact["environ"], fact["cmd"]
        assert fact["uid"] == browser_uid, (fact["cmd"], fact["uid"])
    for fact in pages:
        assert fact["seccomp"] == "2", (fact["cmd"], fact["seccomp"])


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite runs as root; the user switch is a root service's")
def test_control_a_root_browser_is_seen_as_root(start_service, site: Site, client: str):
    """The operator's explicit opt-out (``INNDX_BROWSER_USER=root``): the same checks see root
    page processes, and Chrome's without their seccomp filter (``--no-sandbox``)."""
    svc = start_service(INNDX_BROWSER_USER="root")
    with _open_and_load(svc, site, client):
        facts = _facts(svc)
    pages = [f for f in facts if PAGE_PROCESS[client] in f["cmd"]]
    assert pages and all(f["uid"] == 0 for f in facts), [(f["cmd"], f["uid"]) for f in facts]
    if client == "chrome":
        assert all(f["seccomp"] == "0" for f in pages), [(f["cmd"], f["seccomp"]) for f in pages]
