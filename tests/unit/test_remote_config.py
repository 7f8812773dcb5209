"""A Grid's classic commands are asked once: a GET the Grid does not answer in its bound ends as
a read timeout (the "slow, not lost" error) after one bound, not as a MaxRetryError after four."""

from __future__ import annotations

import socket
import threading

import urllib3
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.remote_connection import RemoteConnection

from service.clients import browser_errors
from service.clients.browser_launch import remote_config


def test_a_silent_grid_is_asked_once_and_its_silence_is_a_timeout():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    connection = RemoteConnection(client_config=remote_config(url, 0.5))
    try:
        try:
            connection.execute(Command.W3C_GET_WINDOW_HANDLES, {"sessionId": "s"})
        except Exception as exc:  # noqa: BLE001 - the type is what is tested
            raised = exc
        else:
            raise AssertionError("a silent Grid answered")
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert isinstance(raised, urllib3.exceptions.ReadTimeoutError), repr(raised)
    assert not browser_errors.means_lost(raised)
    assert len(accepted) == 1, accepted


def test_a_grid_that_is_gone_is_lost_at_once():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    connection = RemoteConnection(client_config=remote_config(url, 0.5))
    try:
        connection.execute(Command.W3C_GET_WINDOW_HANDLES, {"sessionId": "s"})
    except Exception as exc:  # noqa: BLE001 - the type is what is tested
        assert browser_errors.means_lost(exc), repr(exc)
    else:
        raise AssertionError("a closed port answered")
