"""The standard client enforces the network policy where it connects, not only before."""

import pytest

from service.clients.base import ClientOptions, GotoRequest
from service.clients.standard import StandardClient
from service.deadline import Deadline
from service.errors import Forbidden
from service.policy import Policy
from tests.support.site import Site


@pytest.fixture()
def site():
    with Site() as running:
        yield running


def test_connection_to_a_private_address_is_refused_even_when_the_check_before_passed(site, monkeypatch):
    # As if DNS had answered a public address to the check and a private one to the connection.
    monkeypatch.setattr(Policy, "check_url", lambda self, url: None)
    client = StandardClient(ClientOptions(policy=Policy()))
    try:
        with pytest.raises(Forbidden, match="loopback"):
            client.goto(GotoRequest(url=site.url("/html"), user_agent="t"), Deadline(5))
    finally:
        client.close()
    assert site.requests == []


def test_private_networks_allowed_connects(site):
    client = StandardClient(ClientOptions(policy=Policy(allow_private=True)))
    try:
        assert client.goto(GotoRequest(url=site.url("/html"), user_agent="t"), Deadline(5)).status_code == 200
    finally:
        client.close()
