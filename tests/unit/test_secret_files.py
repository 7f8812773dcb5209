"""secret_files: the tenants and proxies files are read whole, and one readable by every user
(the browser user among them) is named in a warning."""

from __future__ import annotations

import logging

from service import secret_files
from service.proxies import Proxies
from service.tenants import Tenants


def test_a_world_readable_secret_file_is_named_in_a_warning(tmp_path, caplog):
    path = tmp_path / "tenants.json"
    path.write_text('{"tenants": {"acme": {"api_keys": ["k"]}}}')
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="service.secret_files"):
        Tenants.load(str(path), 5)
    assert [r.getMessage() for r in caplog.records] == [
        f"the tenants file {path} is readable by every user, the browser user included: chmod 600 it"
    ]


def test_a_private_secret_file_reads_without_a_word(tmp_path, caplog):
    path = tmp_path / "proxies.json"
    path.write_text('{"proxies": {"p": {"url": "http://u:pw@h:1"}}}')
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="service.secret_files"):
        proxies = Proxies.load(str(path))
        assert secret_files.read_json(str(path), "proxies")["proxies"]["p"]["url"].endswith("h:1")
    assert caplog.records == [] and proxies is not None
