"""The log line format: every line names its tenant and session, or ``-`` outside one."""

from __future__ import annotations

import logging


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.__dict__.setdefault("tenant", "-")
        record.__dict__.setdefault("session_id", "-")
        return super().format(record)
