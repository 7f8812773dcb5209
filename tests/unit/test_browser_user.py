"""browser_user: who local browsers run as, what they inherit, and that the driver's death
signal survives the switch of user. Real processes; the switching cases need root (the test
environment is root; a non-root run checks the non-switching rules instead)."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import threading

import pytest

from service import errors
from service.clients import browser_process as bp
from service.clients import browser_user as bu
from tests.support.ports import wait_for

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="switching users needs root")


def test_clean_environment_keeps_only_the_listed_variables():
    base = {
        "PATH": "/bin",
        "LANG": "C.UTF-8",
        "INNDX_REDIS_URL": "redis://:hunter2@h/0",
        "AWS_SECRET_ACCESS_KEY": "hunter2",
        "HTTPS_PROXY": "http://u:hunter2@p:1",
        "HOME": "/root",
        "LD_PRELOAD": "/evil.so",
    }
    env = bu.clean_environment({"HOME": "/tmp/x", "INNDX_OWNER": "1.a"}, base)
    assert env == {"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/tmp/x", "INNDX_OWNER": "1.a"}
    assert "hunter2" not in repr(env)
    assert bu.clean_environment({}, {})["PATH"] == bu.FALLBACK_PATH


def test_driver_env_of_a_session_carries_no_secret(tmp_path):
    procs = bp.SessionProcesses(temp_root=str(tmp_path))
    env = procs.driver_env({"PATH": "/bin", "INNDX_TENANTS_FILE": "/etc/inndx/tenants.json", "SECRET": "s"})
    assert set(env) == {"PATH", "HOME", "TMPDIR", "TMP", "TEMP", bp.OWNER_ENV}
    assert env["HOME"] == env["TMPDIR"] == procs.temp_dir
    procs.end()


@needs_root
def test_root_service_resolves_the_default_user_or_names_the_fix():
    try:
        pwd.getpwnam(bu.DEFAULT_USER)
    except KeyError:
        with pytest.raises(errors.Unavailable, match="scripts/setup"):
            bu.resolve("")
        return
    user = bu.resolve("")
    assert user.name == bu.DEFAULT_USER and not user.is_root and user.switches
    assert bu.resolve("root").is_root and not bu.resolve("root").switches
    with pytest.raises(errors.Unavailable, match="does not exist"):
        bu.resolve("no-such-user-inndx")


@needs_root
def test_a_temp_dir_under_a_dir_the_user_cannot_search_is_refused():
    user = bu.resolve("")
    closed = tempfile.mkdtemp(prefix="inndx-closed-")  # 0700 root
    try:
        assert user.blocked_at(closed) == closed
        with pytest.raises(PermissionError, match="cannot reach"):
            bp.SessionProcesses(temp_root=closed, user=user)
        assert os.listdir(closed) == []  # the refused dir was removed
        os.chmod(closed, 0o711)
        assert user.blocked_at(closed) is None
        procs = bp.SessionProcesses(temp_root=closed, user=user)
        st = os.stat(procs.temp_dir)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (user.uid, user.gid, 0o700)
        procs.end()
    finally:
        os.rmdir(closed)


@needs_root
def test_a_driver_runs_as_the_browser_user_and_still_dies_with_its_thread():
    """The death signal is armed after the user switch (the kernel clears it on a change of
    credentials): started from a thread that then ends, the switched "driver" is killed."""
    user = bu.resolve("")
    root = tempfile.mkdtemp(prefix="inndx-u-")
    os.chmod(root, 0o711)
    procs = bp.SessionProcesses(temp_root=root, user=user)
    box: dict = {}

    def start() -> None:
        box["proc"] = subprocess.Popen(["sleep", "60"], env=procs.driver_env(), **procs.popen_kw())

    thread = threading.Thread(target=start)
    thread.start()
    wait_for(lambda: "proc" in box, 5, what="the start")
    thread.join(5)
    proc = box["proc"]
    try:
        assert proc.wait(5) == -9
    finally:
        proc.kill()
        procs.end()
        os.rmdir(root)


@needs_root
def test_a_switched_driver_has_the_users_ids_and_no_extra_groups():
    user = bu.resolve("")
    root = tempfile.mkdtemp(prefix="inndx-u-")
    os.chmod(root, 0o711)
    procs = bp.SessionProcesses(temp_root=root, user=user)
    started = threading.Event()
    out: dict = {}

    def start() -> None:
        out["text"] = subprocess.run(
            ["sh", "-c", 'id -u; id -g; id -G; echo "$HOME"; touch "$TMPDIR/w" && echo wrote'],
            env=procs.driver_env(), capture_output=True, text=True, timeout=10, **procs.popen_kw(),
        ).stdout.split("\n")
        started.set()

    procs.keeper.run(start)
    assert started.wait(10)
    uid, gid, groups, home, wrote = out["text"][:5]
    assert (int(uid), int(gid), groups.split(), home, wrote) == (user.uid, user.gid, [str(user.gid)], procs.temp_dir, "wrote")
    procs.end()
    os.rmdir(root)


@needs_root
def test_the_default_drivers_run_as_the_browser_user_wherever_the_checkout_is():
    """The drivers run as the browser user: each default driver is a file it may run, reached
    through dirs it may search (a clean clone below a 0700 ``mktemp -d`` is not: setup's root
    copy of geckodriver is)."""
    from service.config import Settings

    user = bu.resolve("")
    settings = Settings()
    for driver in (settings.geckodriver, settings.chromedriver):
        probe = subprocess.run(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "test", "-x", driver],
            check=False,
        )
        assert probe.returncode == 0, f"{user.name} cannot run {driver}"
