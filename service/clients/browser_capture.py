"""Pictures of the page: ``screenshot`` (the viewport, the whole document, or one element; PNG,
JPEG or WebP) and ``pdf`` (``browsingContext.print``), bounded by ``max_reply_bytes``.

What would be captured is measured first, in our sandbox (the viewport, the document's scroll
size, or the element's box, in device pixels), and refused (413) when its PNG's worst case is
past the headroom of the bound (``reply_bound.screenshot_precheck``); what arrives is measured
before it is decoded.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service import errors, reply_bound
from service.clients import browser_page as page
from service.clients.page_scripts import LOCATE, SANDBOX
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.bidi import Bidi

FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

# The size, in device pixels, of what a screenshot of ``mode`` would hold: [width, height]
DOCUMENT_SIZE = """function(full) {
  const ratio = window.devicePixelRatio || 1, root = document.scrollingElement || document.documentElement;
  const width = full ? Math.max(root.scrollWidth, window.innerWidth) : window.innerWidth;
  const height = full ? Math.max(root.scrollHeight, window.innerHeight) : window.innerHeight;
  return [Math.ceil(width * ratio), Math.ceil(height * ratio)];
}"""

# The element (waited for), and its box in device pixels
ELEMENT_BOX = "async function(selector, waitMs) {\n" + """  const found = await (""" + LOCATE + """)(selector, waitMs);
  if (found.state !== "ok" && found.state !== "covered") { delete found.el; return found; }
  const el = found.el || document.querySelector(selector), rect = el.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  return {state: "ok", el, width: Math.ceil(rect.width * ratio), height: Math.ceil(rect.height * ratio)};
}"""


def _decoded(what: str, data: str, bound: int) -> bytes:
    reply_bound.check(what, len(data) // 4 * 3 - data[-2:].count("="), bound)  # its decoded size
    raw = base64.b64decode(data)
    reply_bound.check(what, len(raw), bound)
    return raw


def screenshot(bidi: Bidi, context: str, options: Mapping[str, Any], wait: float, bound: int, deadline: Deadline) -> bytes:
    params: dict[str, Any] = {"context": context, "origin": "viewport"}
    selector = options.get("selector")
    if selector is not None:
        wait_ms = int(1000 * min(wait, max(0.0, deadline.remaining() - 0.2)))
        box = page.call(bidi, context, ELEMENT_BOX, [selector, wait_ms], deadline, activation=False, sandbox=SANDBOX) or {}
        page.judged(box, selector, "take a screenshot of")
        width, height = int(box["width"]), int(box["height"])
        if width == 0 or height == 0:
            raise errors.Conflict(f"cannot take a screenshot of {selector!r}: it has no size")
        params["clip"] = {"type": "element", "element": {"sharedId": box["el"]}}
        params["origin"] = "document"
    else:
        full = bool(options.get("full_page"))
        size = page.call(bidi, context, DOCUMENT_SIZE, [full], deadline, activation=False, sandbox=SANDBOX)
        width, height = (int(v) for v in size)
        if full:
            params["origin"] = "document"
    reply_bound.screenshot_precheck(width, height, bound)
    image_format = options.get("format", "png")
    if image_format != "png" or "quality" in options:
        wanted: dict[str, Any] = {"type": FORMATS[image_format]}
        if "quality" in options and image_format != "png":
            wanted["quality"] = options["quality"] / 100
        params["format"] = wanted
    result = bidi.command("browsingContext.captureScreenshot", params, deadline)
    return _decoded("screenshot", result["data"], bound)


def pdf(bidi: Bidi, context: str, options: Mapping[str, Any], bound: int, deadline: Deadline) -> bytes:
    params: dict[str, Any] = {
        "context": context,
        "background": bool(options.get("print_background", False)),
        "orientation": "landscape" if options.get("landscape") else "portrait",
        "scale": options.get("scale", 1.0),
    }
    if options.get("page_ranges"):
        params["pageRanges"] = list(options["page_ranges"])
    result = bidi.command("browsingContext.print", params, deadline)
    return _decoded("pdf", result["data"], bound)
