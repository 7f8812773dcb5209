"""inndx sessions: drive long-lived browser sessions over a WebSocket."""

__version__ = "0.1.0"
