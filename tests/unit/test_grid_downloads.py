"""A Grid download's bytes from the node's answer (``grid_downloads.unpack``): one member, within
the bound whatever the zip claims, and never more read than the bound allows."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.clients.grid_downloads import GridFiles, response_limit, unpack


def answer(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    contents = base64.b64encode(buffer.getvalue()).decode()
    return json.dumps({"value": {"filename": next(iter(files), ""), "file": "", "contents": contents}}).encode()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000), st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), st.booleans())
def test_one_file_within_the_bound_comes_back_exactly(data: bytes, method: int, keep: bool):
    body = answer({"f.bin": data}, method)
    assert len(body) <= response_limit(max(len(data), 1))  # what the fetch lets through
    assert unpack(body, len(data), keep) == (len(data), hashlib.sha256(data).hexdigest(), data if keep else b"")
    if data:
        assert unpack(body, len(data) - 1, keep) is None


def test_the_limit_holds_for_incompressible_files_of_the_bound():
    import os

    data = os.urandom(300_000)
    assert len(answer({"r": data}, zipfile.ZIP_DEFLATED)) <= response_limit(len(data))
    assert len(answer({"r": data}, zipfile.ZIP_STORED)) <= response_limit(len(data))


def test_a_header_that_lies_about_its_size_is_read_only_to_the_bound():
    body = answer({"bomb": b"\0" * 1_000_000})
    raw = json.loads(body)
    archive = bytearray(base64.b64decode(raw["value"]["contents"]))
    # patch the central directory's and the local header's uncompressed size to 10 bytes
    with zipfile.ZipFile(io.BytesIO(bytes(archive))) as z:
        info = z.infolist()[0]
    central = archive.rfind(b"PK\x01\x02")
    archive[central + 24:central + 28] = (10).to_bytes(4, "little")
    archive[info.header_offset + 22:info.header_offset + 26] = (10).to_bytes(4, "little")
    raw["value"]["contents"] = base64.b64encode(bytes(archive)).decode()
    assert unpack(json.dumps(raw).encode(), 1000, keep=True) is None


@pytest.mark.parametrize(
    "body",
    [
        b"", b"not json", b"[]", b'{"value": null}', b'{"value": {"contents": "###"}}',
        json.dumps({"value": {"contents": base64.b64encode(b"not a zip").decode()}}).encode(),
        answer({}), answer({"a": b"1", "b": b"2"}),
    ],
    ids=["empty", "text", "list", "null", "not-base64", "not-zip", "no-member", "two-members"],
)
def test_anything_else_is_no_file(body: bytes):
    assert unpack(body, 1000, keep=True) is None


@given(st.text(max_size=80))
def test_only_a_plain_name_is_asked_of_the_node(path: str):
    name = GridFiles("http://127.0.0.1:4444", "s", 10).name_of(path)
    if name is not None:
        assert "/" not in name and "\\" not in name and name not in (".", "..") and "\0" not in name


def test_the_grid_url_credentials_become_a_header():
    files = GridFiles("http://u:p@grid.test:4444/wd/hub/", "abc", 10)
    assert files._url == "http://grid.test:4444/wd/hub/session/abc/se/files"
    assert files._headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
