"""Pages for the actions of issue 20, served by the test site under ``/actions/<name>`` (an
unknown name is 404). ``respond(name, method, args, headers, body)`` -> ``(status, headers, body)``.

==================  ========================================================================
``delayed?ms=N``    after N ms (default 300): ``#late`` is added (text ``Late arrival``),
                    ``#going`` is hidden, and the URL becomes ``...?ms=N&step=2`` (pushState)
``polling``         fetches ``/actions/ping`` every 200 ms, forever
``ping``            ``pong`` (text/plain)
==================  ========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping

from tests.support.site import html_page

Answer = tuple[int, list[tuple[str, str]], bytes]
HTML = [("Content-Type", "text/html; charset=utf-8")]


def _delayed(args: Mapping[str, str]) -> bytes:
    try:
        ms = max(0, min(60_000, int(args.get("ms", "300"))))
    except ValueError:
        ms = 300
    script = f"""<script>
setTimeout(() => {{
  const late = document.createElement("div");
  late.id = "late"; late.textContent = "Late arrival";
  document.body.appendChild(late);
  document.getElementById("going").style.display = "none";
  history.pushState(null, "", location.pathname + (location.search ? location.search + "&" : "?") + "step=2");
}}, {ms});
</script>"""
    return html_page("Delayed", body='<div id="going">going soon</div>' + script)


POLLING = html_page("Polling", body="""<script>
setInterval(() => { fetch("/actions/ping").catch(() => {}); }, 200);
</script>""")


def respond(name: str, method: str, args: Mapping[str, str], headers: list[list[str]], body: bytes) -> Answer | None:
    if name == "delayed":
        return 200, HTML, _delayed(args)
    if name == "polling":
        return 200, HTML, POLLING
    if name == "ping":
        return 200, [("Content-Type", "text/plain")], b"pong"
    return None
