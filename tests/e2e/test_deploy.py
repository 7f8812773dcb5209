"""The Procfile's web command, run exactly as a Heroku-style platform runs it, serves sessions."""

import os
import shlex
import sys
from pathlib import Path

import pytest

from tests.support.service import Service
from tests.support.wsclient import connect

REPO = Path(__file__).resolve().parents[2]


def procfile_web_command() -> str:
    for line in (REPO / "Procfile").read_text().splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == "web":
            return command.strip()
    raise AssertionError("the Procfile has no web: line")


@pytest.mark.clientless
def test_procfile_web_command_serves_a_session(site, logs):
    command = procfile_web_command()
    assert "0.0.0.0:$PORT" in command and "gunicorn.conf.py" in command
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # The platform runs the line through a shell with PORT set; exec keeps gunicorn the process we signal.
    service = Service(command=["bash", "-c", f"exec {command}"], env={"PATH": path}, log_dir=logs)
    with service:
        assert f"0.0.0.0:{service.port}" in service.log_text()
        with connect(service.ws_url) as session:
            session.open()
            reply = session.request({"action": "goto", "url": site.url("/html?title=Procfile")})
            assert reply["status_code"] == 200 and reply["content_type"] == "text/html"
            assert session.request({"action": "close"}) == {"action": "closed"}
            assert session.expect_close()[0] == 1000
    assert service.returncode == 0 and service.leftovers == []


@pytest.mark.clientless
def test_procfile_line_is_one_shell_command():
    assert shlex.split(procfile_web_command())[0] == "gunicorn"
