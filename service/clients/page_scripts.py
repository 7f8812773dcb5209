"""The JavaScript the browser client runs in pages (through BiDi ``script.callFunction``).

- ``FIND`` (click) and ``FILL``: wait (bounded) for the first element matching a selector and say
  whether it can be clicked or filled, and if not, why (a file input, hidden, disabled, covered and
  by what); ``FILL`` then picks a select's option, or clears and focuses the field for typing. Both
  run in our sandbox (``SANDBOX``), out of the page's reach.
- ``CONTENT``: the live DOM serialised, doctype included.
- ``EVALUATE``: run the user's function body, await a promise, and cross the result as JSON
  (a DOM node, the window, a cycle or a BigInt is an error saying so).
"""

# Our helpers (click, fill, content, the syntax check; the screenshot's measure in browser_capture) run in a sandbox of ours
# (``SANDBOX``: a BiDi sandbox realm, an isolated world in Chrome, Xray wrappers in Firefox), never
# in the page's world: what they call (querySelector, the ``type`` getter, focus, outerHTML) is the
# browser's own, whatever the page redefined.
SANDBOX = "inndx-helpers"

# The first element matching a selector, waiting up to waitMs: {el} (null when none came), or
# {state: "invalid", why} for a selector the page's engine refuses. Shared by LOCATE and the
# upload action's own check (``browser_upload``).
FIRST_MATCH = """async (selector, waitMs) => {
  const end = performance.now() + waitMs;
  for (;;) {
    let el;
    try { el = document.querySelector(selector); }
    catch (e) { return {state: "invalid", why: String(e.message || e)}; }
    if (el || performance.now() >= end) return {el};
    await new Promise(r => setTimeout(r, 25));
  }
}"""

# The first element matching a selector (waiting up to waitMs), and whether it can be acted on:
# {state: "ok" | "file" | "invalid" | "missing" | "disabled" | "hidden" | "covered", tag, ...}, and
# on "ok" the element itself (``el``). A file input is "file" before anything else: no action of
# ours gives it a file (the ``upload`` action does, with the client's bytes).
_LOCATE = """async (selector, waitMs) => {
  const match = await (""" + FIRST_MATCH + """)(selector, waitMs);
  if (match.state) return match;
  const el = match.el;
  if (!el) return {state: "missing"};
  const tag = el.localName;
  if (tag === "input" && el.type === "file") return {state: "file", tag};
  if (el.disabled || (el.closest && el.closest("fieldset[disabled]"))) return {state: "disabled", tag};
  el.scrollIntoView({block: "center", inline: "center"});
  const style = getComputedStyle(el), rect = el.getBoundingClientRect();
  if (style.visibility === "hidden" || style.display === "none" || rect.width === 0 || rect.height === 0)
    return {state: "hidden", tag};
  const x = rect.left + rect.width / 2, y = rect.top + rect.height / 2;
  const top = document.elementFromPoint(x, y);
  if (top && top !== el && !el.contains(top) && !(top.contains && top.contains(el) && top.tagName === "LABEL"))
    return {state: "covered", tag, by: top.tagName.toLowerCase() + (top.id ? "#" + top.id : "")};
  return {state: "ok", tag, el, editable: el.isContentEditable};
}"""

LOCATE = _LOCATE  # for the helpers of the other actions (``browser_input``)

# click: the element's state, and on "ok" the element (``el``), which WebDriver then clicks: the
# very element checked here, not one the page's world would resolve.
FIND = "async function(selector, waitMs) {\n  return await (" + _LOCATE + """)(selector, waitMs);
}"""

# fill, up to the typing: a select picks the option ("selected", or "no option"); a field
# (input, textarea, contenteditable) is cleared (input and change fired when it held a value) and
# focused, the caret at its end: "focused", then the client types with key actions, which give a
# file input no file even if the page makes the field one now. "file" again when the page turned
# the field into a file input while it took focus; "unfocused" when it would not take focus;
# "ok" (with the tag) for an element that cannot be filled.
FILL = "async function(selector, waitMs, value) {\n  const found = await (" + _LOCATE + """)(selector, waitMs);
  const el = found.el, tag = found.tag;
  delete found.el;
  if (found.state !== "ok") return found;
  const fire = (name) => el.dispatchEvent(new Event(name, {bubbles: true}));
  if (tag === "select") {
    const option = Array.from(el.options).find(o => o.value === value);
    if (!option) return {state: "no option", tag};
    el.value = value; option.selected = true;
    fire("input"); fire("change");
    return {state: "selected", tag};
  }
  let target = el;
  if (tag === "input" || tag === "textarea") {
    if (el.value !== "") { el.value = ""; fire("input"); fire("change"); }
  } else if (el.isContentEditable) {
    if (el.firstChild) { el.textContent = ""; fire("input"); }
    while (target.parentElement && target.parentElement.isContentEditable) target = target.parentElement;
  } else return {state: "ok", tag};
  target.focus({preventScroll: true});
  if (el.localName === "input" && el.type === "file") return {state: "file", tag};
  if (document.activeElement !== target) return {state: "unfocused", tag};
  if (el.isContentEditable) {
    const range = document.createRange(), selection = window.getSelection();
    range.selectNodeContents(el); range.collapse(false);
    selection.removeAllRanges(); selection.addRange(range);
  }
  return {state: "focused", tag};
}"""

# Weighs ``text`` against ``bound`` with primitive operations only (``.length`` and indexing of a
# primitive string, comparisons, arithmetic), which no page script can redefine: the UTF-8 bytes,
# except that a control character (but tab, LF, CR) or an unpaired surrogate counts 6: it crosses
# BiDi as a \\uXXXX escape. So what crosses is at most twice the weight (a quote or a backslash
# is escaped with one more byte). Sets ``weight``, stopping as soon as it passes ``bound``.
_WEIGH = """
  let weight = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text[i];
    if (c < "\\x80") weight += c < " " && c !== "\\t" && c !== "\\n" && c !== "\\r" ? 6 : 1;
    else if (c < "\\u0800") weight += 2;
    else if (c < "\\ud800" || c >= "\\ue000") weight += 3;
    else if (c < "\\udc00" && i + 1 < n && text[i + 1] >= "\\udc00" && text[i + 1] < "\\ue000") { weight += 4; i++; }
    else weight += 6;
    if (weight > bound) break;
  }
"""

# Checks that ``text`` is one JSON text (RFC 8259) with primitive operations only (indexing,
# comparisons, a stack in an object without a prototype), so that the service can pass it on as
# it is, never building it into objects: a page's JSON.stringify may answer anything. Sets ``why``
# ("" when it is JSON). An unpaired surrogate is refused: it has no UTF-8 form.
_VALIDATE = """
  let why = "", i = 0, depth = 0, state = 0;  // 0 a value, 1 a value or ], 2 a key or }, 3 a key, 4 a colon, 5 after a value
  const n = text.length, stack = {__proto__: null};
  const digit = (k) => k < n && text[k] >= "0" && text[k] <= "9";
  const hex = (k) => k < n && ((text[k] >= "0" && text[k] <= "9") || (text[k] >= "a" && text[k] <= "f")
    || (text[k] >= "A" && text[k] <= "F"));
  const string = (k) => {
    for (k++; k < n; k++) {
      const c = text[k];
      if (c === "\\"") return k + 1;
      if (c < " ") return -1;
      if (c === "\\\\") {
        const e = text[k + 1];
        if (e === "u") { if (!(hex(k + 2) && hex(k + 3) && hex(k + 4) && hex(k + 5))) return -1; k += 5; }
        else if (e === "\\"" || e === "\\\\" || e === "/" || e === "b" || e === "f" || e === "n" || e === "r" || e === "t") k++;
        else return -1;
      } else if (c >= "\\ud800" && c < "\\ue000") {
        if (c >= "\\udc00" || !(k + 1 < n && text[k + 1] >= "\\udc00" && text[k + 1] < "\\ue000")) return -1;
        k++;
      }
    }
    return -1;
  };
  const number = (k) => {
    if (text[k] === "-") k++;
    if (k < n && text[k] === "0") k++;
    else if (digit(k)) { while (digit(k)) k++; }
    else return -1;
    if (k < n && text[k] === ".") { k++; if (!digit(k)) return -1; while (digit(k)) k++; }
    if (k < n && (text[k] === "e" || text[k] === "E")) {
      k++;
      if (k < n && (text[k] === "+" || text[k] === "-")) k++;
      if (!digit(k)) return -1;
      while (digit(k)) k++;
    }
    return k;
  };
  const word = (k, w) => {
    for (let j = 0; j < w.length; j++) if (k + j >= n || text[k + j] !== w[j]) return -1;
    return k + w.length;
  };
  while (why === "") {
    while (i < n && (text[i] === " " || text[i] === "\\t" || text[i] === "\\n" || text[i] === "\\r")) i++;
    if (i >= n) { if (state !== 5 || depth !== 0) why = "the text ends early"; break; }
    const c = text[i];
    let next = -1;
    if (state === 0 || state === 1) {
      if (state === 1 && c === "]") { depth--; next = i + 1; state = 5; }
      else if (c === "{") { stack[depth++] = "{"; next = i + 1; state = 2; }
      else if (c === "[") { stack[depth++] = "["; next = i + 1; state = 1; }
      else if (c === "\\"") { next = string(i); state = 5; }
      else if (c === "-" || (c >= "0" && c <= "9")) { next = number(i); state = 5; }
      else if (c === "t") { next = word(i, "true"); state = 5; }
      else if (c === "f") { next = word(i, "false"); state = 5; }
      else if (c === "n") { next = word(i, "null"); state = 5; }
    } else if (state === 2 || state === 3) {
      if (state === 2 && c === "}") { depth--; next = i + 1; state = 5; }
      else if (c === "\\"") { next = string(i); state = 4; }
    } else if (state === 4) {
      if (c === ":") { next = i + 1; state = 0; }
    } else if (depth > 0) {
      const top = stack[depth - 1];
      if (c === ",") { next = i + 1; state = top === "[" ? 0 : 3; }
      else if ((c === "]" && top === "[") || (c === "}" && top === "{")) { depth--; next = i + 1; state = 5; }
    }
    if (next < 0) why = "not JSON text at character " + i;
    i = next;
  }
"""

# Run in our sandbox (``target.sandbox``): outerHTML and XMLSerializer there are the browser's own,
# whatever the page redefined in its world. Answers ``T<text>``, or ``L<bytes>`` past the bound.
CONTENT = """function(bound) {
  const d = document.doctype, root = document.documentElement;
  const head = d ? new XMLSerializer().serializeToString(d) : "";
  const text = head + (!root ? "" : root.outerHTML !== undefined ? root.outerHTML : new XMLSerializer().serializeToString(root));
  if (text.length > bound) return "L" + text.length;
  if (text.length * 6 > bound) {/*WEIGH*/    if (weight > bound) return "L" + weight;
  }
  return "T" + text;
}""".replace("/*WEIGH*/", _WEIGH)

# Run in our sandbox, before EVALUATE: is the user's script a function body on its own? The
# Function constructor parses the body alone (so "}) ... (function() {" is a SyntaxError), and the
# sandbox's Function is the browser's, not the page's. Answers "" (yes), ``S<why>`` (a syntax
# error) or ``U<why>`` (the browser would not parse it here).
SYNTAX = """function(body) {
  try { new Function(body); return ""; }
  catch (e) { return (e instanceof SyntaxError ? "S" : "U") + e.name + ": " + e.message; }
}"""

# Cuts ``text`` to its first 2000 UTF-16 units with primitive operations only.
_CLIP = """
  if (text.length > 2000) {
    let cut = "";
    for (let i = 0; i < 2000; i++) cut += text[i];
    text = cut + "... (" + text.length + " characters)";
  }
"""

# Runs in the page's world (the user's script needs the page's globals), so after the user's code
# everything but primitive operations may be the page's: JSON.stringify, String, a thrown error's
# message. Each answer is checked as a primitive string, its length and weight against ``bound``
# before it is returned: ``J<json>``, ``L<bytes>`` past the bound, ``N<why>`` not JSON, ``E<what>``
# the script threw (clipped). The user's function is called directly (no Function.prototype
# method, which the page could redefine); SYNTAX has made sure its body cannot close it early.
EVALUATE = """async function(bound) {
  let value, text, threw = false, failed = false;
  try {
    value = await (function() {
%s
    })();
  } catch (e) { threw = true; value = e; }
  if (!threw) {
    try {
      text = JSON.stringify(value, function(key, v) {
        if (typeof Node !== "undefined" && v instanceof Node)
          throw new TypeError("the result holds a DOM node (" + v.nodeName.toLowerCase() + "), which is not a JSON value");
        if (v === window) throw new TypeError("the result holds the window object, which is not a JSON value");
        return v;
      });
    } catch (e) { failed = true; value = e; }
  }
  if (threw || failed) {
    try { text = "" + (failed && value && value.message || value); } catch (e) { text = "an exception that cannot be read"; }
    if (typeof text !== "string") text = "an exception that cannot be read";/*CLIP*/
    return (threw ? "E" : "N") + text;
  }
  if (text === undefined) return "Jnull";
  if (typeof text !== "string") return "Nthe page's JSON.stringify answered a " + typeof text + ", not text";
  if (text.length > bound) return "L" + text.length;
  if (text.length * 6 > bound) {/*WEIGH*/    if (weight > bound) return "L" + weight;
  }
  {/*VALIDATE*/    if (why !== "") return "Nthe page's JSON.stringify answered " + why;
  }
  return "J" + text;
}""".replace("/*WEIGH*/", _WEIGH).replace("/*CLIP*/", _CLIP).replace("/*VALIDATE*/", _VALIDATE)
