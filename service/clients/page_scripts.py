"""The JavaScript the browser client runs in pages (through BiDi ``script.callFunction``).

- ``FIND`` (click) and ``FILL``: wait (bounded) for the first element matching a selector and say
  whether it can be clicked or filled, and if not, why (a file input, hidden, disabled, covered and
  by what); ``FILL`` then picks a select's option, or clears and focuses the field for typing. Both
  run in our sandbox (``SANDBOX``), out of the page's reach.
- ``CONTENT``: the live DOM serialised, doctype included.
- ``EVALUATE``: run the user's function body, await a promise, and cross the result as JSON
  (a DOM node, the window, a cycle or a BigInt is an error saying so).
"""

# Our helpers for click and fill run in a sandbox of ours (``SANDBOX``: a BiDi sandbox realm, an
# isolated world in Chrome, Xray wrappers in Firefox), never in the page's world: what they call
# (querySelector, the ``type`` getter, focus) is the browser's own, whatever the page redefined.
SANDBOX = "inndx-actions"

# The first element matching a selector (waiting up to waitMs), and whether it can be acted on:
# {state: "ok" | "file" | "invalid" | "missing" | "disabled" | "hidden" | "covered", tag, ...}, and
# on "ok" the element itself (``el``). A file input is "file" before anything else: no action of
# ours gives it a file (the ``upload`` action does, with the client's bytes).
_LOCATE = """async (selector, waitMs) => {
  const end = performance.now() + waitMs;
  let el;
  for (;;) {
    try { el = document.querySelector(selector); }
    catch (e) { return {state: "invalid", why: String(e.message || e)}; }
    if (el || performance.now() >= end) break;
    await new Promise(r => setTimeout(r, 25));
  }
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

CONTENT = """function() {
  const d = document.doctype, root = document.documentElement;
  const head = d ? new XMLSerializer().serializeToString(d) : "";
  if (!root) return head;
  return head + (root.outerHTML !== undefined ? root.outerHTML : new XMLSerializer().serializeToString(root));
}"""

EVALUATE = """async function() {
  const value = await (function() {
%s
  }).apply(this, arguments);
  try {
    const text = JSON.stringify(value, function(key, v) {
      if (typeof Node !== "undefined" && v instanceof Node)
        throw new TypeError("the result holds a DOM node (" + v.nodeName.toLowerCase() + "), which is not a JSON value");
      if (v === window) throw new TypeError("the result holds the window object, which is not a JSON value");
      return v;
    });
    return "J" + (text === undefined ? "null" : text);
  } catch (e) { return "N" + String(e.message || e); }
}"""
