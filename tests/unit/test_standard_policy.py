"""The standard client enforces the network policy where it connects, not only before."""

import pytest

from service.clients.base import ClientOptions, GotoRequest
from service.clients.standard import StandardClient
from service.deadline import Deadline
from service.errors import Forbidden
from tests.support.site import Site


@pytest.fixture()
def site():
    with Site() as running:
        yield running


def test_connection_to_a_private_address_is_refused_even_when_the_check_before_passed(site, monkeypatch):
    # As if DNS had answered a public address to the check and a private one to the connection.
    monkeypatch.setattr("service.network_policy.check_url", lambda url, allow_private: None)
    client = StandardClient(ClientOptions(allow_private_networks=False))
    try:
        with pytest.raises(Forbidden, match="non-public"):
            client.goto(GotoRequest(url=site.url("/html"), user_agent="t"), Deadline(5))
    finally:
        client.close()
    assert site.requests == []


def test_private_networks_allowed_connects(site):
    client = StandardClient(ClientOptions(allow_private_networks=True))
    try:
        assert client.goto(GotoRequest(url=site.url("/html"), user_agent="t"), Deadline(5)).status_code == 200
    finally:
        client.close()
