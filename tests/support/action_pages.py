"""Pages for the actions of issue 20, served by the test site under ``/actions/<name>`` (an
unknown name is 404). ``respond(name, method, args, headers, body)`` -> ``(status, headers, body)``.

==================  ========================================================================
``delayed?ms=N``    after N ms (default 300): ``#late`` is added (text ``Late arrival``),
                    ``#going`` is hidden, and the URL becomes ``...?ms=N&step=2`` (pushState)
``polling``         fetches ``/actions/ping`` every 200 ms, forever
``ping``            ``pong`` (text/plain)
``input``           ``input#k`` (a text field), ``button#b``, ``div#plain`` (takes no focus);
                    every keydown is in ``window.keys`` as ``[ctrl, shift, key]``; ``#menu``
                    shows ``#sub`` and counts ``window.hovers`` on mouseenter; ``select#one``
                    (options a, b, c), ``select#many`` (multiple: a, b, c), each change counted
                    in ``window.changes``
``print``           a page of text (``Printed by inndx``) on a coloured background, with a
                    ``#box`` of 200x100 CSS pixels, three pages long when printed
``login``           sets cookies ``session=ok`` (Path=/) and ``pref=1`` (Max-Age=3600), and
                    ``localStorage.theme = "dark"`` from a script
``account``         ``Welcome back`` when the request carried ``session=ok``, else
                    ``Please log in``; its script copies ``localStorage.theme`` into the title
``lazy``            20 items (``.item``, 100 px tall each); scrolling within 200 px of the bottom
                    appends 20 more, up to 100
``upload``          ``form#form`` (multipart, POST to ``uploaded``): ``input#f`` (type file),
                    ``input#many`` (type file, multiple), ``input#off`` (type file, disabled),
                    ``input#hidden`` (type file, ``display:none``, behind ``label#styled``),
                    ``input#t`` (text, ``name=t``), ``div#plain``, ``button#send``; and
                    ``form#autoform``, whose ``input#auto`` (type file) sends it on change; each change of
                    a file input is in ``window.picked`` as ``[id, [names], [sizes]]``, and each
                    ``input`` and ``change`` event a file input gets in ``window.seen`` as
                    ``[event type, id, isTrusted, [its files' types]]`` (as its listener saw them);
                    ``upload?stop=1``: the same, and a capturing listener on the window, added
                    first, stops every ``input`` event (``stopImmediatePropagation``)
``uploaded``        (POST, multipart) the site checks the parts: ``<pre id="parts">``, JSON, one
                    ``{field, filename, content_type, size, sha256}`` per file part (the part's
                    ``Content-Type``) and ``{field, value}`` per other part, in the order sent
==================  ========================================================================
"""

from __future__ import annotations

import hashlib
import html
import io
import json
from collections.abc import Mapping

from werkzeug.wrappers import Request

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


INPUT = html_page("Input", body="""
<input id="k"> <button id="b" type="button">b</button> <div id="plain">plain</div>
<div id="menu" style="padding:20px;background:#ddd">menu</div><div id="sub" style="display:none">submenu</div>
<select id="one"><option value="a">A</option><option value="b">B</option><option value="c">C</option></select>
<select id="many" multiple><option value="a">A</option><option value="b" selected>B</option><option value="c">C</option></select>
<script>
window.keys = []; window.hovers = 0; window.changes = 0;
document.addEventListener("keydown", e => keys.push([e.ctrlKey, e.shiftKey, e.key]));
document.getElementById("menu").addEventListener("mouseenter", () => {
  hovers++; document.getElementById("sub").style.display = "block";
});
for (const id of ["one", "many"]) document.getElementById(id).addEventListener("change", () => changes++);
</script>""")

LAZY = html_page("Lazy", head="<style>.item{height:100px;border-bottom:1px solid #ccc}</style>", body="""
<div id="list"></div>
<script>
const list = document.getElementById("list");
const more = () => {
  const n = list.children.length;
  for (let i = n; i < n + 20 && i < 100; i++) {
    const item = document.createElement("div");
    item.className = "item"; item.id = "item-" + (i + 1); item.textContent = "item " + (i + 1);
    list.appendChild(item);
  }
};
more();
window.addEventListener("scroll", () => {
  if (window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 200) more();
});
</script>""")


PRINT = html_page("Print", head="<style>body{background:#fc0} .page{height:1100px}</style>", body="""
<div id="box" style="width:200px;height:100px;background:#06c">box</div>
<div class="page">Printed by inndx</div><div class="page">page two</div><div class="page">page three</div>""")


LOGIN = html_page("Logged in", body="<script>localStorage.setItem('theme', 'dark');</script>")


def _account(headers: list[list[str]]) -> bytes:
    cookie = "; ".join(value for name, value in headers if name.lower() == "cookie")
    logged = "session=ok" in [part.strip() for part in cookie.split(";")]
    text = "Welcome back" if logged else "Please log in"
    script = "<script>document.title = 'theme ' + localStorage.getItem('theme');</script>"
    return html_page("Account", body=f"<div id='who'>{text}</div>{script}")


UPLOAD_BODY = """
<form id="form" method="post" enctype="multipart/form-data" action="/actions/uploaded">
<input id="f" name="f" type="file"> <input id="many" name="many" type="file" multiple>
<input id="off" name="off" type="file" disabled> <input id="t" name="t" value="text field">
<label for="hidden" id="styled">pick a file</label><input id="hidden" name="hidden" type="file" style="display:none">
<div id="plain">plain</div> <button id="send" type="submit">send</button>
</form>
<form id="autoform" method="post" enctype="multipart/form-data" action="/actions/uploaded">
<input id="auto" name="auto" type="file" onchange="this.form.submit()">
</form>
<script>
window.picked = [];
window.seen = [];
for (const input of document.querySelectorAll("input[type=file]")) {
  input.addEventListener("change", () => {
    picked.push([input.id, Array.from(input.files, f => f.name), Array.from(input.files, f => f.size)]);
  });
  for (const kind of ["input", "change"])
    input.addEventListener(kind, event => {
      seen.push([kind, input.id, event.isTrusted, Array.from(input.files, f => f.type)]);
    });
}
</script>"""
UPLOAD = html_page("Upload", body=UPLOAD_BODY)
# a page whose own capturing listener on its window, added first, stops every input event there
UPLOAD_STOPPING = html_page("Upload", body=UPLOAD_BODY, head=(
    "<script>addEventListener('input', event => event.stopImmediatePropagation(), true);</script>"
))


def _uploaded(method: str, headers: list[list[str]], body: bytes) -> bytes:
    """The parts of a multipart form, as the site read them (werkzeug's parser)."""
    content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
    request = Request.from_values(
        input_stream=io.BytesIO(body), content_length=len(body), content_type=content_type, method=method
    )
    with request:  # closes the parsed files
        parts: list[dict] = [{"field": field, "value": value} for field, value in request.form.items(multi=True)]
        for field, storage in request.files.items(multi=True):
            data = storage.read()
            sha256 = hashlib.sha256(data).hexdigest()
            parts.append({
                "field": field, "filename": storage.filename, "content_type": storage.content_type,
                "size": len(data), "sha256": sha256,
            })
    return html_page("Uploaded", body=f'<pre id="parts">{html.escape(json.dumps(parts))}</pre>')


def respond(name: str, method: str, args: Mapping[str, str], headers: list[list[str]], body: bytes) -> Answer | None:
    if name == "delayed":
        return 200, HTML, _delayed(args)
    if name == "polling":
        return 200, HTML, POLLING
    if name == "input":
        return 200, HTML, INPUT
    if name == "print":
        return 200, HTML, PRINT
    if name == "login":
        return 200, [*HTML, ("Set-Cookie", "session=ok; Path=/"), ("Set-Cookie", "pref=1; Path=/; Max-Age=3600")], LOGIN
    if name == "account":
        return 200, HTML, _account(headers)
    if name == "lazy":
        return 200, HTML, LAZY
    if name == "upload":
        return 200, HTML, UPLOAD_STOPPING if args.get("stop") else UPLOAD
    if name == "uploaded":
        return 200, HTML, _uploaded(method, headers, body)
    if name == "ping":
        return 200, [("Content-Type", "text/plain")], b"pong"
    return None
