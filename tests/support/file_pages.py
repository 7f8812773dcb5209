"""Pages with file inputs, for the tests that no frame attaches a host file (served by the test
site under ``/files/<name>``; an unknown name is 404).

Every page records, in ``window.seen`` (read with ``evaluate``), each ``change``, ``input`` and
``drop`` event that reached a file input or the drop zone, with the files it carried; ``FILES``
below is the script a test evaluates to read every file input of the page (iframes and open
shadow roots included): ``[{where, type, files: [names], text: first file's text or null}]``.

========================  =================================================================
``input``                 ``#f`` a file input, ``#hidden-file`` one with ``display:none``,
                          ``#t`` a text input, ``label#label`` for ``#f``, ``#opener`` a
                          button whose click calls ``f.click()``, ``#drop`` a contenteditable
                          drop zone
``frame``                 ``iframe#frame`` (same origin, ``contenteditable``) of
                          ``/files/input?focus=1``: its ``#f`` has the frame's focus
``shadow``                ``#host`` with an open shadow root holding ``input#inner``
                          (type file); ``#edit-host``, contenteditable, whose open shadow root
                          (``delegatesFocus``) holds a file input, which takes its focus
``race-focus``            ``#r``, a text input that becomes a file input when it gets focus
``race-keydown``          ``#r``, a text input that becomes a file input on its first keydown
``race-blur``             ``#r``, a text input holding ``prefilled`` that becomes a file input
                          when it loses focus (as WebDriver's Element Clear of a value makes it)
``liar``                  ``#f`` a file input and ``#b`` a button (a click on it, or on
                          ``#decoy``, sets the title) in a page that lies in its own world: the
                          ``type`` getter of every input says ``text``, ``querySelector``
                          answers ``#decoy`` (a text input) for any selector, ``getAttribute``
                          says ``text``, and ``focus``/``dispatchEvent`` are no-ops
========================  =================================================================
"""

from __future__ import annotations

from tests.support.site import html_page

# Records events on every file input (present or made later: capture on the document).
_RECORD = """<script>
window.seen = [];
for (const name of ["change", "input", "drop"]) {
  document.addEventListener(name, e => {
    const t = e.target;
    const files = (t && t.files) || (e.dataTransfer && e.dataTransfer.files) || [];
    if ((t && t.files) || name === "drop")
      window.seen.push({event: name, id: t && t.id, files: Array.from(files).map(f => f.name)});
  }, true);
}
</script>"""

FILES = """
const found = [];
const visit = (root, where) => {
  for (const el of root.querySelectorAll("input")) {
    if (!el.files) continue;  // not a file input (asked without the type getter, which a page may redefine)
    const files = Array.from(el.files).map(f => f.name);
    found.push({where: where + "#" + el.id, type: el.type, files, file: el.files[0]});
  }
  for (const host of root.querySelectorAll("*")) if (host.shadowRoot) visit(host.shadowRoot, where + " >> " + host.id);
  for (const frame of root.querySelectorAll("iframe")) visit(frame.contentDocument, where + " > iframe#" + frame.id);
};
visit(document, "page");
return Promise.all(found.map(async f => ({
  where: f.where, type: f.type, files: f.files, text: f.file ? await f.file.text() : null,
})));
"""

_INPUT = """
<main>
  <input id="f" type="file">
  <input id="hidden-file" type="file" style="display:none">
  <label id="label" for="f">attach</label>
  <button id="opener" type="button" onclick="document.getElementById('f').click()">open</button>
  <input id="t" type="text">
  <div id="drop" contenteditable="true" style="min-height:40px">drop here</div>
</main>
<script>
  if (location.search.includes("focus=1")) document.getElementById("f").focus();
  for (const name of ["dragover", "dragenter"]) document.getElementById("drop").addEventListener(name, e => e.preventDefault());
</script>
"""

_FRAME = """
<main><iframe id="frame" contenteditable="true" src="/files/input?focus=1" width="400" height="200"></iframe></main>
"""

_SHADOW = """
<main>
  <div id="host"></div>
  <div id="edit-host" contenteditable="true" style="min-height:40px"></div>
</main>
<script>
  document.getElementById("host").attachShadow({mode: "open"}).innerHTML = '<input id="inner" type="file">';
  const root = document.getElementById("edit-host").attachShadow({mode: "open", delegatesFocus: true});
  root.innerHTML = '<input id="delegate" type="file">';
</script>
"""

_RACE = """
<main><input id="r" type="text" value="%s"></main>
<script>
  const r = document.getElementById("r");
  r.addEventListener("%s", () => { r.type = "file"; }, {once: true});
</script>
"""

_LIAR = """
<main>
  <input id="decoy" type="text" onclick="document.title = 'decoy clicked'"><input id="f" type="file">
  <button id="b" type="button" onclick="document.title = 'b clicked'">b</button>
</main>
<script>
  const decoy = document.getElementById("decoy");
  Object.defineProperty(HTMLInputElement.prototype, "type", {get() { return "text"; }, set(v) {}, configurable: true});
  Document.prototype.querySelector = function() { return decoy; };
  Element.prototype.querySelector = function() { return decoy; };
  Element.prototype.getAttribute = function(name) { return name === "type" ? "text" : null; };
  HTMLElement.prototype.focus = function() {};
  EventTarget.prototype.dispatchEvent = function() { return true; };
  Element.prototype.closest = function() { return null; };
</script>
"""

PAGES: dict[str, bytes] = {
    "input": html_page("File input", body=_INPUT, head=_RECORD),
    "frame": html_page("File input in a frame", body=_FRAME, head=_RECORD),
    "shadow": html_page("File inputs in shadow roots", body=_SHADOW, head=_RECORD),
    "race-focus": html_page("Becomes a file input on focus", body=_RACE % ("", "focus"), head=_RECORD),
    "race-keydown": html_page("Becomes a file input on keydown", body=_RACE % ("", "keydown"), head=_RECORD),
    "race-blur": html_page("Becomes a file input on blur", body=_RACE % ("prefilled", "blur"), head=_RECORD),
    "liar": html_page("Lies about its inputs", body=_LIAR, head=_RECORD),
}
