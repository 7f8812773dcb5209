"""The JavaScript the browser client runs in pages (through BiDi ``script.callFunction``).

- ``FIND``: wait (bounded) for the first element matching a selector and say whether it can be
  clicked or filled, and if not, why (hidden, disabled, covered and by what).
- ``SELECT``: pick a ``<select>``'s option by value.
- ``CONTENT``: the live DOM serialised, doctype included.
- ``EVALUATE``: run the user's function body, await a promise, and cross the result as JSON
  (a DOM node, the window, a cycle or a BigInt is an error saying so).
"""

FIND = """async function(selector, waitMs) {
  const end = performance.now() + waitMs;
  let el;
  for (;;) {
    try { el = document.querySelector(selector); }
    catch (e) { return {state: "invalid", why: String(e.message || e)}; }
    if (el || performance.now() >= end) break;
    await new Promise(r => setTimeout(r, 25));
  }
  if (!el) return {state: "missing"};
  const tag = el.tagName.toLowerCase();
  if (el.disabled || (el.closest && el.closest("fieldset[disabled]"))) return {state: "disabled", tag};
  el.scrollIntoView({block: "center", inline: "center"});
  const style = getComputedStyle(el), rect = el.getBoundingClientRect();
  if (style.visibility === "hidden" || style.display === "none" || rect.width === 0 || rect.height === 0)
    return {state: "hidden", tag};
  const x = rect.left + rect.width / 2, y = rect.top + rect.height / 2;
  const top = document.elementFromPoint(x, y);
  if (top && top !== el && !el.contains(top) && !(top.contains && top.contains(el) && top.tagName === "LABEL"))
    return {state: "covered", tag, by: top.tagName.toLowerCase() + (top.id ? "#" + top.id : "")};
  return {state: "ok", tag, editable: el.isContentEditable, type: (el.type || "").toLowerCase()};
}"""

SELECT = """function(selector, value) {
  const el = document.querySelector(selector);
  const option = Array.from(el.options).find(o => o.value === value);
  if (!option) return false;
  el.value = value; option.selected = true;
  el.dispatchEvent(new Event("input", {bubbles: true}));
  el.dispatchEvent(new Event("change", {bubbles: true}));
  return true;
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
