"""The service's own files: nothing outside ``service/static/`` and ``schemas/`` is served, by any
spelling of a path (``..``, encoded ``%2e%2e`` and ``%2f``, absolute, backslashes), and a symlink
under those folders is served only when it points inside them.

Asked directly over HTTP and through a session's goto (a tenant's browser can reach the service
when private networks are allowed, as here). Controls: the playground's files and the schemas
are served, byte for byte, by the same routes.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import service_env
from tests.support.service import REPO_ROOT, Service
from tests.support.wsclient import Session, http_get

OUTSIDE = [  # each would name a file outside the two folders
    "/static/../service/app.py", "/static/%2e%2e/app.py", "/static/%2E%2E/config.py", "/static/..%2fapp.py",
    "/static/%2e%2e%2fapp.py", "/static/..%2f..%2fgunicorn.conf.py", "/static/%2fetc%2fpasswd",
    "/static//etc/passwd", "/static/....//app.py", "/static/..%5capp.py", "/static/..\\app.py",
    "/static/%252e%252e/app.py", "/static/.%2e/app.py", "/static/%c0%ae%c0%ae/app.py",
    "/schemas/../service/app.py", "/schemas/..%2fservice%2fconfig.json", "/schemas/%2e%2e/gunicorn.conf.py",
    "/schemas/%2fetc%2fpasswd", "/schemas//etc/passwd", "/schemas/middleware/..%2f..%2fpyproject.json",
    "/schemas/..%2f..%2f..%2fetc%2fhosts.json", "/asyncapi.yaml/../service/app.py",
    "/app.py", "/service/app.py", "/gunicorn.conf.py", "/pyproject.toml", "/.env", "/README.md", "/Makefile",
    "/static/", "/static", "/schemas/", "/schemas/middleware", "/service/static/index.html",
]
MARKERS = (b"def create_app", b"root:", b"import ", b"[project]", b"Settings", b"localhost")


@pytest.mark.clientless
def test_nothing_outside_static_and_schemas_is_served(service: Service):
    for path in OUTSIDE:
        status, _, body = http_get(service.url + path)
        assert status in (404, 400, 308), (path, status, body[:200])
        assert not any(marker in body for marker in MARKERS), (path, body[:200])
    for path, local in (("/static/playground.js", "service/static/playground.js"),
                        ("/schemas/middleware/block.json", "schemas/middleware/block.json"),
                        ("/asyncapi.yaml", "schemas/asyncapi.yaml")):
        status, _, body = http_get(service.url + path)
        assert status == 200 and body == (REPO_ROOT / local).read_bytes(), path  # the control


@pytest.mark.clients("standard", "chrome", "firefox")
def test_a_session_reaches_no_service_file_outside_the_folders(page: Session, service: Service):
    control = page.request({"action": "goto", "url": service.url + "/static/playground.js"}, timeout=60)
    assert control.get("status_code") == 200, control
    for path in ("/static/..%2fapp.py", "/static/%2e%2e/config.py", "/schemas/..%2fservice%2fapp.py",
                 "/static/%2fetc%2fpasswd", "/gunicorn.conf.py"):
        reply = page.request({"action": "goto", "url": service.url + path}, timeout=60)
        assert reply.get("status_code") == 404, (path, reply)
        body = base64.b64decode(reply.get("body") or "")
        assert not any(marker in body for marker in MARKERS), (path, body[:200])


@pytest.fixture(scope="module")
def linked(grid, logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    """The service run from a copy of the repo whose static and schema folders hold symlinks:
    to a secret file outside (and a folder link to ``/``), and to files inside (the control)."""
    root = tmp_path_factory.mktemp("linked")
    for name in ("service", "schemas"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "gunicorn.conf.py", root)
    token = "SECRET-" + secrets.token_hex(16)
    secret = root / "outside.json"
    secret.write_text(f'{{"token": "{token}"}}\n')
    static, schemas = root / "service" / "static", root / "schemas"
    (static / "leak.js").symlink_to(secret)
    (static / "up").symlink_to("/")
    (static / "relative.js").symlink_to("../../outside.json")
    (static / "alias.js").symlink_to("playground.js")
    (schemas / "leak.json").symlink_to(secret)
    (schemas / "middleware" / "up.json").symlink_to("../../outside.json")
    (schemas / "alias.json").symlink_to("goto.request.json")
    with Service(env=service_env(grid), log_dir=logs, cwd=root) as running:
        yield running, token


@pytest.mark.clientless
def test_a_symlink_out_of_the_folders_is_not_followed(linked: tuple[Service, str]):
    service, token = linked
    for path in ("/static/leak.js", "/static/relative.js", "/static/up/etc/passwd", "/static/up/etc/hosts",
                 "/schemas/leak.json", "/schemas/middleware/up.json"):
        status, _, body = http_get(service.url + path)
        assert status == 404, (path, status)
        assert token.encode() not in body and b"root:" not in body, path
    # the control: a symlink that stays inside is followed, so the copy's links do work
    status, _, body = http_get(service.url + "/static/alias.js")
    assert status == 200 and body == (REPO_ROOT / "service/static/playground.js").read_bytes()
    status, _, body = http_get(service.url + "/schemas/alias.json")
    assert status == 200 and body == (REPO_ROOT / "schemas/goto.request.json").read_bytes()
