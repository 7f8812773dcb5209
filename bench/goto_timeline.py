"""The timeline of one goto: every BiDi command our channel sends and every reply and event it
receives, in milliseconds from the start of the goto, then a bare navigate of the same page.

    .venv/bin/python bench/goto_timeline.py [chrome|firefox] [--warmup 5]

In-process (no service, no WebSocket): a ``BrowserClient`` started as a session starts one, through
an egress gateway listener of its own, against the test site on loopback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clients import bidi as channel  # noqa: E402
from service.clients import browser_settings  # noqa: E402
from service.clients.browser import BrowserClient  # noqa: E402
from service.config import Settings  # noqa: E402
from service.deadline import Deadline  # noqa: E402
from service.egress import Gateway  # noqa: E402
from service.model import ClientOptions, GotoRequest  # noqa: E402
from service.policy import Policy  # noqa: E402
from tests.support.site import Site  # noqa: E402

LOG: list[tuple[float, str, str]] = []


def _record() -> None:
    send, receive = channel.Bidi.send, channel.Bidi._on_message

    def recording_send(self, method: str, params: dict) -> int:
        ident = send(self, method, params)
        LOG.append((time.perf_counter(), "->", f"{method} #{ident}"))
        return ident

    def recording_receive(self, message: str) -> None:
        data = json.loads(message)
        LOG.append((time.perf_counter(), "<-", data.get("method") or f"reply #{data.get('id')}"))
        receive(self, message)

    channel.Bidi.send = recording_send
    channel.Bidi._on_message = recording_receive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", nargs="?", default="chrome", choices=["chrome", "firefox"])
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    _record()
    policy = Policy(allow_private=True)
    gateway = Gateway(policy)
    with Site() as site:
        listener = gateway.open("timeline", args.kind)
        client = BrowserClient(args.kind, ClientOptions(policy=policy, egress=listener), browser_settings(Settings()))
        client.start(Deadline(60))
        try:
            url = site.url("/html")
            for _ in range(args.warmup):
                client.goto(GotoRequest(url), Deadline(30))
            LOG.clear()
            started = time.perf_counter()
            client.goto(GotoRequest(url), Deadline(30))
            total = (time.perf_counter() - started) * 1000
            for stamp, direction, what in LOG:
                print(f"{(stamp - started) * 1000:8.1f} ms  {direction} {what}")
            print(f"goto: {total:.1f} ms")
            launched = client._launched
            started = time.perf_counter()
            launched.bidi.command(
                "browsingContext.navigate", {"context": launched.context, "url": url, "wait": "complete"}, 30
            )
            print(f"bare navigate: {(time.perf_counter() - started) * 1000:.1f} ms")
        finally:
            client.close()
            listener.close()
            gateway.stop()


if __name__ == "__main__":
    main()
