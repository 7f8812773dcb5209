"""The command line: ``python -m inndx goto URL [options]`` (or the ``inndx`` script).

One session: goto, then (in this order) ``--wait-selector``, every ``--fill``, every
``--upload`` (a file of this machine, sent as bytes), every ``--click``, then ``--screenshot``;
then close. The service comes from ``--url`` (default
``$INNDX_URL``), the tenant from ``--tenant`` (``$INNDX_TENANT``), the API key from
``--api-key`` (``$INNDX_API_KEY``). Exit status: 0, 1 when the service answered an error,
2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from inndx.errors import Error
from inndx.results import GotoResult
from inndx.session import Session, connect

WAIT_SCRIPT = """
const selector = %s, limit = %d;
const deadline = Date.now() + limit;
return new Promise((resolve, reject) => {
  (function poll() {
    if (document.querySelector(selector)) { resolve(true); return; }
    if (Date.now() >= deadline) { reject(new Error("no element matches " + selector + " after " + limit + " ms")); return; }
    setTimeout(poll, 100);
  })();
});
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inndx", description="Drive an inndx session from the shell.")
    commands = parser.add_subparsers(dest="command", required=True)
    goto = commands.add_parser("goto", help="open a session, go to URL, print the reply")
    goto.add_argument("target", metavar="URL", help="the page to go to")
    goto.add_argument("--url", default=os.environ.get("INNDX_URL"), help="the service (default $INNDX_URL)")
    goto.add_argument("--tenant", default=os.environ.get("INNDX_TENANT"), help="tenant id (default $INNDX_TENANT)")
    goto.add_argument("--api-key", default=os.environ.get("INNDX_API_KEY"), help="API key (default $INNDX_API_KEY)")
    goto.add_argument("--client", default=None, help="standard, chrome or firefox (server default: standard)")
    goto.add_argument("--timeout", default=None, help="the session's timeout, e.g. 20s")
    goto.add_argument("--user-agent", default=None, help="inndx, chrome, firefox, safari, random or a string")
    goto.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'", help="a request header")
    goto.add_argument("--json", action="store_true", help="print the goto reply frame as JSON")
    goto.add_argument("--wait-selector", metavar="CSS", help="then wait until an element matches (browsers)")
    goto.add_argument("--wait-timeout", type=float, default=10.0, metavar="SECONDS", help="bound of --wait-selector")
    goto.add_argument("--fill", nargs=2, action="append", default=[], metavar=("CSS", "VALUE"), help="then fill a field")
    goto.add_argument("--upload", nargs=2, action="append", default=[], metavar=("CSS", "FILE"),
                      help="then give a file input this file's bytes (browsers)")
    goto.add_argument("--click", action="append", default=[], metavar="CSS", help="then click an element")
    goto.add_argument("--screenshot", metavar="FILE.png", help="then save a screenshot (browsers)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("the service is needed: --url or INNDX_URL")
    headers = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep:
            parser.error(f"--header {header!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    try:
        with connect(args.url, args.tenant, args.api_key, client=args.client, timeout=args.timeout) as session:
            result = session.goto(args.target, headers=headers or None, user_agent=args.user_agent)
            print(json.dumps(result.raw) if args.json else summary(result))
            _follow_up(session, args)
    except Error as exc:
        print(f"inndx: error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _follow_up(session: Session, args: argparse.Namespace) -> None:
    if args.wait_selector:
        session.evaluate(WAIT_SCRIPT % (json.dumps(args.wait_selector), int(args.wait_timeout * 1000)))
    for selector, value in args.fill:
        session.fill(selector, value)
    for selector, path in args.upload:
        session.upload(selector, [Path(path)])
    for selector in args.click:
        session.click(selector)
    if args.screenshot:
        png = session.screenshot()
        if png is None:
            raise Error("the service sent no screenshot", None)
        with open(args.screenshot, "wb") as out:
            out.write(png)
        print(f"inndx: screenshot saved to {args.screenshot} ({len(png)} bytes)", file=sys.stderr)


def summary(result: GotoResult) -> str:
    """A short human reading of a goto reply."""
    lines = [f"{result.status_code} {result.url} ({result.content_type or 'no content type'}, {len(result.body)} bytes)"]
    for hop in result.redirects:
        lines.append(f"  redirect {hop.side} {hop.type}: {hop.url} -> {hop.location}")
    lines.extend(f"  {name}: {value}" for name, value in result.headers.items())
    lines.extend(f"  cookie {c.name}={c.value} (domain {c.domain}, path {c.path})" for c in result.cookies)
    return "\n".join(lines)
