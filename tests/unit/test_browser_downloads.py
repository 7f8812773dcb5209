"""browser_downloads: the watcher's cuts at the bound, the listing, the tmpfs (as root), and its
removal by SessionProcesses.end and the reaper. Plain files stand in for a browser's downloads."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.clients import browser_process as bp
from service.clients import browser_reaper, mounts
from service.clients.browser_downloads import Downloads
from tests.support.ports import wait_for

MIB = 1024 * 1024


def write(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(size))


@pytest.fixture()
def downloads(tmp_path):
    made: list[Downloads] = []

    def make(max_bytes: int = 4 * MIB, tmpfs: bool = False) -> Downloads:
        made.append(Downloads(str(tmp_path), max_bytes, tmpfs))
        return made[-1]

    yield make
    for each in made:
        each.stop()
    mounts.unmount_below(str(tmp_path))


def test_under_the_bound_nothing_is_cut_and_finished_files_are_listed(downloads):
    d = downloads()
    write(Path(d.dir, "a.bin"), MIB)
    Path(d.dir, "b.bin").touch()  # Firefox's placeholder of the final name while it writes
    write(Path(d.dir, "b.x1y2.bin.part"), MIB)
    d.check()
    assert [(f.name, f.size) for f in d.files()] == [("a.bin", MIB)]  # no partial, no placeholder
    assert d.cuts == 0 and os.path.getsize(Path(d.dir, "b.x1y2.bin.part")) == MIB


def test_past_the_bound_a_partial_file_is_emptied_not_removed_and_its_download_cancelled(downloads):
    cancelled: list[str] = []
    d = downloads()
    d.start(cancel=cancelled.append)
    d.stop()  # the watcher's thread is not needed: check() is called by hand
    d.on_event("browsingContext.downloadWillBegin", {"download": "g1"})
    write(Path(d.dir, "a.bin"), MIB)
    partial = Path(d.dir, "bomb.bin.crdownload")
    write(partial, 4 * MIB)
    d.check()
    assert partial.exists() and partial.stat().st_size == 0  # emptied: the browser holds it open
    assert cancelled == ["g1"] and d.cuts == 1
    assert [f.name for f in d.files()] == ["a.bin"]  # the finished file under the bound stays
    d.check()
    assert cancelled == ["g1"]  # once


def test_a_cut_download_the_browser_finishes_anyway_is_removed(downloads):
    d = downloads()
    partial = Path(d.dir, "big.Ab12.bin.part")
    write(partial, 5 * MIB)
    d.check()
    os.replace(partial, Path(d.dir, "big.bin"))  # Firefox renames the .part when its body ends
    assert [f.name for f in d.files()] == []  # never listed: it was cut
    d.check()
    assert not Path(d.dir, "big.bin").exists()


def test_an_id_known_only_after_the_cut_is_cancelled_at_the_next_check(downloads):
    cancelled: list[str] = []
    d = downloads()
    d.start(cancel=cancelled.append)
    d.stop()
    write(Path(d.dir, "late.bin.crdownload"), 5 * MIB)
    d.check()
    assert cancelled == []
    d.on_event("browsingContext.downloadWillBegin", {"download": "late"})
    d.check()
    assert cancelled == ["late"]


def test_finished_files_past_the_bound_lose_the_newest(downloads):
    d = downloads()
    old, new = Path(d.dir, "old.bin"), Path(d.dir, "new.bin")
    write(old, 2 * MIB)
    os.utime(old, (1, 1))
    write(new, 3 * MIB)
    d.check()
    assert old.exists() and not new.exists()


def test_the_watcher_thread_cuts_while_the_file_is_written(downloads):
    d = downloads()
    d.start()
    partial = Path(d.dir, "stream.bin.part")
    with open(partial, "wb") as f:
        for _ in range(8):
            f.write(os.urandom(MIB))
            f.flush()
        wait_for(lambda: partial.stat().st_blocks * 512 < 4 * MIB, 5, interval=0.01, what="the watcher's cut")
    assert d.cuts >= 1


def test_as_root_a_tmpfs_of_the_bound_refuses_the_byte_past_it(downloads, tmp_path):
    """The project's tests run as root; anyone else gets the watcher alone (checked here too)."""
    d = downloads(max_bytes=2 * MIB, tmpfs=True)
    if os.geteuid() != 0:
        assert not d.kernel_bound and not os.path.ismount(d.dir)
        return
    assert d.kernel_bound
    with pytest.raises(OSError) as failed, open(Path(d.dir, "x.bin"), "wb") as f:
        for _ in range(3):
            f.write(os.urandom(MIB))
            f.flush()
    assert failed.value.errno == errno.ENOSPC
    assert mounts.unmount_below(str(tmp_path)) == 1
    assert not os.path.ismount(d.dir)


def test_without_the_tmpfs_the_dir_is_a_plain_dir(downloads):
    assert not downloads(tmpfs=False).kernel_bound


def test_end_and_the_reaper_unmount_the_downloads_tmpfs(tmp_path):
    procs = bp.SessionProcesses(temp_root=str(tmp_path))
    d = Downloads(procs.temp_dir, MIB)
    assert os.path.ismount(d.dir) == (os.geteuid() == 0)
    d.stop()
    procs.end()
    assert not os.path.exists(procs.temp_dir)
    # a worker that died: its dir (and mount) is the reaper's
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = bp.owner_of(child.pid)
    child.wait()
    dead = tmp_path / f"{bp.TEMP_PREFIX}{owner}-abc"
    dead.mkdir()
    orphan = Downloads(str(dead), MIB)
    assert os.path.ismount(orphan.dir) == (os.geteuid() == 0)
    _, removed = browser_reaper.reap_orphans(str(tmp_path))
    assert removed == 1 and not dead.exists()
