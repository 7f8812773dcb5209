"""press, hover, select and scroll in a browser, over BiDi: the element is found and judged in our
sandbox (``page_scripts.LOCATE``: a file input is refused as for click and fill, hidden, disabled
or covered is 409, none is 404 after the element wait), keys and the mouse go through
``input.performActions`` (never WebDriver's Element Send Keys, which attaches host files to a file
input), and select and scroll are done in the sandbox, with the browser's own DOM methods.

Decisions where the protocol is silent:
- press with a selector focuses that element first (a field, a button, a link; 409 when it will
  not take focus); without one, the keys go to whatever has focus.
- select takes values, not labels; each value must name an option (404 naming the first that
  does not); several values on a select that is not ``multiple`` is a 409; the options not
  named are unselected; input and change fire once.
- scroll by selector scrolls the element to the middle of the viewport; x/y and top/bottom scroll
  the page (``window.scrollTo``); the reply is the page's scroll position afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service import errors
from service.clients import browser_page as page
from service.clients.page_scripts import LOCATE, SANDBOX
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.bidi import Bidi

# press: the element found, then focused ("focused" or "unfocused")
FOCUS = "async function(selector, waitMs) {\n  const found = await (" + LOCATE + """)(selector, waitMs);
  const el = found.el;
  delete found.el;
  if (found.state !== "ok") return found;
  el.focus({preventScroll: true});
  if (el.localName === "input" && el.type === "file") return {state: "file", tag: found.tag};
  return {state: document.activeElement === el || el.contains(document.activeElement) ? "focused" : "unfocused", tag: found.tag};
}"""

SELECT = "async function(selector, waitMs, values) {\n  const found = await (" + LOCATE + """)(selector, waitMs);
  const el = found.el, tag = found.tag;
  delete found.el;
  if (found.state !== "ok") return found;
  if (tag !== "select") return {state: "not select", tag};
  if (values.length > 1 && !el.multiple) return {state: "single", tag};
  const options = Array.from(el.options);
  for (const value of values)
    if (!options.some(o => o.value === value)) return {state: "no option", value};
  for (const option of options) option.selected = values.includes(option.value);
  el.dispatchEvent(new Event("input", {bubbles: true}));
  el.dispatchEvent(new Event("change", {bubbles: true}));
  return {state: "selected"};
}"""

SCROLL = "async function(selector, waitMs, x, y, to) {\n  if (selector !== null) {\n" + """
    const found = await (""" + LOCATE + """)(selector, waitMs);
    delete found.el;
    if (found.state !== "ok" && found.state !== "covered") return found;
  } else {
    const root = document.scrollingElement || document.documentElement;
    if (to === "bottom") window.scrollTo(window.scrollX, root.scrollHeight);
    else if (to === "top") window.scrollTo(window.scrollX, 0);
    else window.scrollTo(x === null ? window.scrollX : x, y === null ? window.scrollY : y);
  }
  return {state: "scrolled", x: window.scrollX, y: window.scrollY};
}"""


def _located(bidi: Bidi, context: str, script: str, args: list, wait: float, deadline: Deadline) -> dict:
    wait_ms = int(1000 * min(wait, max(0.0, deadline.remaining() - 0.2)))
    return page.call(bidi, context, script, [args[0], wait_ms, *args[1:]], deadline, activation=False, sandbox=SANDBOX) or {}


def _perform(bidi: Bidi, context: str, source: dict, deadline: Deadline) -> None:
    calls = [("input.performActions", {"context": context, "actions": [source]}), ("input.releaseActions", {"context": context})]
    for reply in bidi.pipeline(calls, deadline):
        if isinstance(reply, Exception):
            raise reply


def press(bidi: Bidi, context: str, keys: list[str], selector: str | None, wait: float, deadline: Deadline) -> None:
    if selector is not None:
        found = page.judged(_located(bidi, context, FOCUS, [selector], wait, deadline), selector, "press into")
        if found.get("state") == "unfocused":
            raise errors.Conflict(f"cannot press into {selector!r}: the <{found.get('tag')}> does not take focus")
    actions = [{"type": "keyDown", "value": key} for key in keys]
    actions += [{"type": "keyUp", "value": key} for key in reversed(keys)]
    _perform(bidi, context, {"type": "key", "id": "inndx-keys", "actions": actions}, deadline)


def hover(bidi: Bidi, context: str, selector: str, wait: float, deadline: Deadline) -> None:
    found = page.find(bidi, context, selector, wait, deadline, "hover")
    if not isinstance(found.get("el"), str):
        raise errors.InternalError(f"the browser gave no reference to the element {selector!r} found")
    move = {"type": "pointerMove", "x": 0, "y": 0, "origin": {"type": "element", "element": {"sharedId": found["el"]}}}
    source = {"type": "pointer", "id": "inndx-mouse", "parameters": {"pointerType": "mouse"}, "actions": [move]}
    _perform(bidi, context, source, deadline)


def select(bidi: Bidi, context: str, selector: str, values: list[str], wait: float, deadline: Deadline) -> None:
    found = page.judged(_located(bidi, context, SELECT, [selector, list(values)], wait, deadline), selector, "select in")
    state = found.get("state")
    if state == "not select":
        raise errors.Conflict(f"{selector!r} matches a <{found.get('tag')}>, not a <select>")
    if state == "single":
        raise errors.Conflict(f"the select {selector!r} is not multiple: pick one value")
    if state == "no option":
        raise errors.NotFound(f"select {selector!r} has no option with value {str(found.get('value'))[:200]!r}")


def scroll(bidi: Bidi, context: str, args: Mapping[str, Any], wait: float, deadline: Deadline) -> dict[str, float]:
    selector = args.get("selector")
    call_args = [selector, args.get("x"), args.get("y"), args.get("to")]
    found = _located(bidi, context, SCROLL, call_args, wait if selector is not None else 0, deadline)
    if found.get("state") != "scrolled":
        page.judged(found, selector or "", "scroll to")
        raise errors.Conflict(f"cannot scroll to {selector!r}: {found.get('state')}")
    return {"x": found.get("x", 0), "y": found.get("y", 0)}
