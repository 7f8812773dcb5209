"""upload without a browser: the names it writes (``browser_upload.safe_name``), the files it
writes (``write_local``: a fresh 0700 dir, nothing through a link, nothing outside it), and the
frame's bounds (``INNDX_MAX_UPLOAD_BYTES``: 413 before anything is decoded; bad base64: 400), and
a file's ``mime_type`` as the browser gets it (lower case)."""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import protocol
from service.clients.bidi_values import Node, local_value
from service.clients.browser_upload import DIR_PREFIX, NAME_BYTES, safe_name, safe_names, write_local
from service.config import Settings
from service.errors import BadRequest, InternalError, TooLarge

NAMES = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(["/", "\\", ".", "\x00", " ", "a", "é", "\n", "\u202e", "😀"])),
    st.lists(st.sampled_from(["..", ".", "", "a", "b.txt", "\x00"]), max_size=6).map("/".join),
)


@settings(max_examples=1000, deadline=None, database=None)
@given(NAMES)
def test_any_name_becomes_a_safe_base_name(name: str):
    safe = safe_name(name)
    assert safe and safe not in (".", "..")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in safe)
    assert 0 < len(safe.encode("utf-8")) <= NAME_BYTES
    assert os.path.basename(safe) == safe
    assert safe_name(safe) == safe  # a safe name stays as it is


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(NAMES, min_size=1, max_size=20))
def test_the_names_of_one_upload_are_safe_and_distinct(names: list[str]):
    safe = safe_names(names)
    assert len(safe) == len(names) and len(set(safe)) == len(safe)
    assert all(safe_name(name) == name for name in safe)


@pytest.mark.parametrize(
    "name, safe",
    [
        ("a.txt", "a.txt"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("..", "file"),
        (".", "file"),
        ("/", "file"),
        ("dir/", "file"),
        ("a\x00b\n.txt", "ab.txt"),
        ("  spaced.txt  ", "spaced.txt"),
        (".bashrc", ".bashrc"),
        ("é" * 300 + ".txt", "é" * 98 + ".txt"),
    ],
)
def test_safe_name_examples(name, safe):
    assert safe_name(name) == safe


def test_duplicate_names_are_made_distinct():
    names = ["a.txt", "a.txt", "x/a.txt", "a (2).txt", "b"]
    assert safe_names(names) == ["a.txt", "a (2).txt", "a (3).txt", "a (2) (2).txt", "b"]
    long = "x" * 300 + ".txt"  # the mark fits within the bound too
    assert safe_names([long, long]) == ["x" * 196 + ".txt", "x" * 192 + " (2).txt"]


def test_files_are_written_into_a_fresh_private_dir_and_nowhere_else(tmp_path):
    temp = tmp_path / "session"
    temp.mkdir(mode=0o700)
    outside = tmp_path / "outside.txt"
    paths = write_local(str(temp), ["a.txt", "empty"], [b"alpha", b""])
    [folder] = list(temp.iterdir())
    assert folder.name.startswith(DIR_PREFIX) and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert paths == [str(folder / "a.txt"), str(folder / "empty")] and all(os.path.isabs(p) for p in paths)
    assert (folder / "a.txt").read_bytes() == b"alpha" and (folder / "empty").read_bytes() == b""
    assert stat.S_IMODE((folder / "a.txt").stat().st_mode) == 0o600
    assert not outside.exists()
    second = write_local(str(temp), ["a.txt"], [b"again"])  # another upload: another dir
    assert os.path.dirname(second[0]) != str(folder) and (folder / "a.txt").read_bytes() == b"alpha"


def test_a_name_that_is_a_link_is_never_followed(tmp_path, monkeypatch):
    """Should the dir hold a link by that name (it is fresh, so only a race could put one there),
    the write fails rather than follow it."""
    temp = tmp_path / "session"
    temp.mkdir()
    target = tmp_path / "target"
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_with_a_link(**kw):
        made = real_mkdtemp(**kw)
        os.symlink(target, os.path.join(made, "a.txt"))
        return made

    monkeypatch.setattr("service.clients.browser_upload.tempfile.mkdtemp", mkdtemp_with_a_link)
    with pytest.raises(InternalError) as caught:
        write_local(str(temp), ["a.txt"], [b"x"])
    assert not caught.value.fatal
    assert not target.exists() and list(temp.iterdir()) == []  # the failed upload's dir went too


def test_a_temp_dir_that_is_gone_is_a_500_the_session_survives(tmp_path):
    with pytest.raises(InternalError) as caught:
        write_local(str(tmp_path / "gone"), ["a.txt"], [b"x"])
    assert not caught.value.fatal and "could not write" in caught.value.message


# ------------------------------------------------------------------------------- the frame


def _frame(*contents: str) -> str:
    files = [{"name": f"f{i}", "content": content} for i, content in enumerate(contents)]
    return json.dumps({"action": "upload", "id": "u", "selector": "#f", "files": files})


def test_the_bound_is_on_all_the_files_together_and_checked_before_decoding():
    parser = protocol.Protocol(max_upload_bytes=10)
    action = parser.receive(_frame(base64.b64encode(b"12345").decode(), base64.b64encode(b"67890").decode(), ""), 1 << 20)
    assert [f.content for f in action.args["files"]] == [b"12345", b"67890", b""]
    with pytest.raises(TooLarge) as caught:  # 11 bytes; the second is not even base64
        parser.receive(_frame(base64.b64encode(b"123456").decode(), "%%%%%%%%"), 1 << 20)
    assert caught.value.code == 413 and caught.value.action_id == "u" and not caught.value.fatal
    assert "INNDX_MAX_UPLOAD_BYTES" in caught.value.message and "10-byte" in caught.value.message


@pytest.mark.parametrize("content", ["a", "YQ", "YQ=", "Y===", "YW Jj", "YWJj\n", "*AAA"])
def test_content_that_is_not_base64_is_400_naming_the_file(content):
    with pytest.raises(BadRequest) as caught:
        protocol.Protocol().receive(_frame("", content), 1 << 20)
    assert "$.files[1].content" in caught.value.message


def test_the_setting_and_its_default():
    assert Settings().max_upload_bytes == 16 * 1024 * 1024
    assert Settings.from_env({"INNDX_MAX_UPLOAD_BYTES": "1024"}).max_upload_bytes == 1024
    assert protocol.Protocol.for_settings(Settings(max_upload_bytes=7)).max_upload_bytes == 7


def test_a_mime_type_is_kept_in_lower_case_and_an_absent_one_stays_absent():
    """A media type is case-insensitive, and a page's File keeps it in lower case: the service
    hands the browser what the page will see."""
    files = [
        {"name": "a.bin", "mime_type": "Image/PNG", "content": ""},
        {"name": "b.txt", "content": ""},
        {"name": "c", "mime_type": "application/x-inndx-test", "content": ""},
    ]
    action = protocol.Protocol().receive(json.dumps({"action": "upload", "selector": "#f", "files": files}), 1 << 20)
    assert [f.mime_type for f in action.args["files"]] == ["image/png", None, "application/x-inndx-test"]


def test_an_element_argument_reaches_the_page_as_its_shared_reference():
    assert local_value([Node("f.1.d.2"), None, "image/png"]) == {
        "type": "array",
        "value": [{"sharedId": "f.1.d.2"}, {"type": "null"}, {"type": "string", "value": "image/png"}],
    }
