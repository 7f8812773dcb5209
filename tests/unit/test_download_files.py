"""The downloads a reply lists and the ``download`` action's bytes (``browser_download_files``):
events in, files read safely, frames out that match their schemas."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import protocol, replies
from service.clients import browser_download_files as files
from service.clients.base import GotoResult
from service.clients.browser_download_files import END, WILL_BEGIN, DownloadLog, LocalFiles
from service.deadline import Deadline
from service.errors import NotFound, TooLarge
from service.model import RawJson

PROTOCOL = protocol.Protocol()


def begin(log: DownloadLog, key: str, name: str, url: str = "http://site.test/f") -> None:
    log.on_event(WILL_BEGIN, {"navigation": key, "suggestedFilename": name, "url": url, "context": "c"})


def end(log: DownloadLog, key: str, path: str | None, status: str = "complete") -> None:
    log.on_event(END, {"navigation": key, "status": status, "filepath": path, "url": "http://site.test/f"})


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    where = tmp_path / "downloads"
    where.mkdir()
    return where


def test_a_finished_download_is_listed_once_with_its_size_and_sha256(folder: Path):
    log = DownloadLog(LocalFiles(str(folder), 1024))
    body = os.urandom(300)
    begin(log, "n1", "report.pdf")
    (folder / "report.pdf").write_bytes(body)
    end(log, "n1", str(folder / "report.pdf"))
    listed = log.take(Deadline(1))
    assert listed == [{
        "id": "d1", "url": "http://site.test/f", "suggested_filename": "report.pdf",
        "mime_type": "application/pdf", "size": 300, "sha256": hashlib.sha256(body).hexdigest(),
    }]
    assert log.take(Deadline(1)) == []  # once
    reply = files.reply(log, "d1", 10_000, Deadline(5))
    assert base64.b64decode(reply["content"]) == body and reply["download_id"] == "d1"
    PROTOCOL.validate_outgoing({"action": "download", "id": 3, **reply})


def test_chrome_keys_a_download_by_its_own_id(folder: Path):
    log = DownloadLog(LocalFiles(str(folder), 1024))
    log.on_event(WILL_BEGIN, {"download": "g1", "navigation": None, "suggestedFilename": "a.csv", "url": "http://s/a"})
    (folder / "a.csv").write_bytes(b"x,y\n")
    log.on_event(END, {"download": "g1", "navigation": None, "status": "complete", "filepath": str(folder / "a.csv")})
    assert [item["mime_type"] for item in log.take(Deadline(1))] == ["text/csv"]


def test_cancelled_cut_outside_symlinked_or_oversized_downloads_are_not_listed(folder: Path, tmp_path: Path):
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    (folder / "link").symlink_to(outside)
    (folder / "big").write_bytes(b"x" * 2000)
    (folder / "cut").write_bytes(b"y" * 10)
    cut = os.stat(folder / "cut")
    log = DownloadLog(LocalFiles(str(folder), 1024, lambda dev, ino: (dev, ino) == (cut.st_dev, cut.st_ino)))
    cases = {
        "cancelled": (str(folder / "whatever"), "canceled"),
        "outside": (str(outside), "complete"),
        "dotdot": (str(folder / ".." / "secret"), "complete"),
        "relative": ("downloads/big", "complete"),
        "symlink": (str(folder / "link"), "complete"),
        "big": (str(folder / "big"), "complete"),
        "cut": (str(folder / "cut"), "complete"),
        "gone": (str(folder / "gone"), "complete"),
        "none": (None, "complete"),
        "dir": (str(folder), "complete"),
    }
    for key, (path, status) in cases.items():
        begin(log, key, key)
        end(log, key, path, status)
    assert log.take(Deadline(1)) == []


def test_a_download_still_written_waits_within_the_deadline_then_goes_to_a_later_reply(folder: Path):
    log = DownloadLog(LocalFiles(str(folder), 1024))
    begin(log, "n1", "slow.bin")
    assert log.take(Deadline(0)) == []  # not finished: not listed, not forgotten
    (folder / "slow.bin").write_bytes(b"done")
    end(log, "n1", str(folder / "slow.bin"))
    assert [item["size"] for item in log.take(Deadline(0))] == [4]


def test_unknown_changed_or_too_large_for_a_reply(folder: Path):
    log = DownloadLog(LocalFiles(str(folder), 1024))
    with pytest.raises(NotFound):
        files.reply(log, "d1", 1000, Deadline(5))
    with pytest.raises(NotFound):
        files.reply(None, "d1", 1000, Deadline(5))
    begin(log, "n1", "a.bin")
    (folder / "a.bin").write_bytes(b"a" * 100)
    end(log, "n1", str(folder / "a.bin"))
    assert len(log.take(Deadline(1))) == 1
    with pytest.raises(TooLarge):
        files.reply(log, "d1", 99, Deadline(5))
    (folder / "a.bin").write_bytes(b"b" * 100)  # same size, other bytes
    with pytest.raises(NotFound, match="gone or changed"):
        files.reply(log, "d1", 1000, Deadline(5))
    (folder / "a.bin").unlink()
    with pytest.raises(NotFound, match="gone or changed"):
        files.reply(log, "d1", 1000, Deadline(5))


def test_ids_are_unique_in_the_session(folder: Path):
    log = DownloadLog(LocalFiles(str(folder), 10_000))
    for n in range(5):
        begin(log, f"n{n}", f"f{n}.txt")
        (folder / f"f{n}.txt").write_text(str(n))
        end(log, f"n{n}", str(folder / f"f{n}.txt"))
        assert [item["id"] for item in log.take(Deadline(1))] == [f"d{n + 1}"]


def test_events_without_a_key_or_for_unknown_downloads_change_nothing(folder: Path):
    log = DownloadLog(LocalFiles(str(folder), 1024))
    log.on_event(WILL_BEGIN, {"suggestedFilename": "x"})
    end(log, "never-began", str(folder / "x"))
    log.on_event(WILL_BEGIN, {"navigation": "n", "suggestedFilename": 5, "url": None})  # odd types
    end(log, "n", None, "canceled")
    assert log.take(Deadline(0)) == []


@given(st.text(max_size=60))
def test_name_in_gives_only_a_plain_name_directly_in_the_dir(path: str):
    name = files.name_in("/srv/t/downloads", path)
    if name is not None:
        assert "/" not in name and name not in (".", "..") and "\x00" not in name
        assert os.path.join("/srv/t/downloads", name) == os.path.normpath(path)


@given(st.text(alphabet=st.characters(blacklist_characters="/\x00"), min_size=1, max_size=40))
def test_name_in_takes_any_plain_name(name: str):
    expected = None if name in (".", "..") else name
    assert files.name_in("/d", "/d/" + name) == expected


def test_mime_types_come_from_the_builtin_table():
    assert files.mime_type("a.pdf") == "application/pdf"
    assert files.mime_type("A.JSON") == "application/json"
    assert files.mime_type("noext") == "application/octet-stream"
    assert files.mime_type("x.weird-ext") == "application/octet-stream"


LISTED = [{"id": "d1", "url": "http://s/a", "suggested_filename": "a", "mime_type": "text/plain", "size": 1,
           "sha256": "0" * 64}]


@pytest.mark.parametrize(
    "name, value",
    [("click", None), ("evaluate", RawJson("[1]")), ("goto", GotoResult(url="http://s/", status_code=200)),
     ("press", None), ("content", b"<p>"), ("wait_for", {"elapsed_ms": 1})],
)
def test_a_reply_with_downloads_matches_its_schema(name: str, value):
    frame = replies.reply(protocol.Action(name, 9), replies.WithDownloads(value, LISTED))
    assert frame["downloads"] == LISTED and frame["id"] == 9
    PROTOCOL.validate_outgoing(frame)
    PROTOCOL.validate_outgoing(replies.reply(protocol.Action(name, 9), value))
    assert '"downloads":[{"id":"d1"' in replies.encode(frame)
