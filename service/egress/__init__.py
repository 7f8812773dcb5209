"""The egress gateway: every connection of every browser goes through it (see ``gateway``)."""

from service.egress.gateway import Gateway, Listener

__all__ = ["Gateway", "Listener"]
