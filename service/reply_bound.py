"""The reply bound (``INNDX_MAX_REPLY_BYTES``): what a page controls in a reply, checked first in
the browser, before it crosses to the worker, and again here on what did arrive.

What is measured, in bytes:
- an ``evaluate`` result: the UTF-8 bytes of its JSON text (``JSON.stringify``'s, compact);
- ``content``: the UTF-8 bytes of the serialised DOM (the standard client: the body's bytes);
- a ``screenshot``: the PNG's bytes.
(Base64 on the wire adds a third; the bound is on the data, as the client decodes it.)

The page scripts (``page_scripts``) answer a string that starts with a marker: ``J`` (evaluate)
or ``T`` (content) then the text; ``L<n>`` when the text is over the bound (``n`` is its size,
or a lower bound on it: the browser stops counting once past); ``N<why>`` when the result is
not JSON; ``E<what>`` when the script threw (clipped). ``unwrap`` reads them and checks the exact size of what arrived.

A screenshot cannot be measured before it is encoded: ``png_worst_case`` bounds the PNG of a
viewport (incompressible pixels, stored deflate blocks), and a viewport whose worst case passes
``SCREENSHOT_HEADROOM`` times the bound is refused before the capture; the PNG that arrives is
then checked exactly. So the worker never receives more than that many times the bound.
"""

from __future__ import annotations

from service.errors import ScriptError, TooLarge

SETTING = "INNDX_MAX_REPLY_BYTES"
SCREENSHOT_HEADROOM = 4  # a screenshot whose worst case passes 4x the bound is not taken

_PNG_FIXED = 64 * 1024  # signature, IHDR, IEND, colour chunks (sRGB, iCCP) a browser may add
_IDAT_CHUNK = 8192  # libpng's default IDAT size: 12 bytes of chunk framing each (smaller is worse)
_STORED_BLOCK = 16383  # a deflate stored block holds at most 65535 bytes; zlib may cut at 16 KiB


def utf8_size(text: str) -> int:
    """The UTF-8 bytes of ``text`` (a lone surrogate counts its 3 bytes, as the browser does)."""
    return len(text.encode("utf-8", "surrogatepass"))


def over(what: str, size: int, bound: int, at_least: bool = False) -> TooLarge:
    """The 413 (non-fatal) for ``what`` of ``size`` bytes past ``bound``."""
    amount = f"at least {size}" if at_least else str(size)
    return TooLarge(f"the {what} is {amount} bytes, over the {bound}-byte reply limit ({SETTING})")


def check(what: str, size: int, bound: int) -> None:
    if size > bound:
        raise over(what, size, bound)


def unwrap(answer: object, what: str, bound: int, kind: str) -> str:
    """The text a page script answered with marker ``kind`` (``J`` or ``T``), its size checked;
    ``TooLarge`` for ``L<n>``, ``ScriptError`` for ``N<why>``, ``ValueError`` for anything else
    (our helper's answer was not one of ours: a bug, or a page that broke our wrapper)."""
    if not isinstance(answer, str) or not answer:
        raise ValueError(f"the {what} helper answered {type(answer).__name__}, not a marked string")
    mark, text = answer[0], answer[1:]
    if mark == kind:
        check(what, utf8_size(text), bound)
        return text
    if mark == "L" and text.isdigit() and len(text) < 20:
        raise over(what, max(int(text), bound + 1), bound, at_least=True)
    if mark == "N" and kind == "J":
        raise ScriptError(f"the script's result is not JSON: {text[:2100]}")
    if mark == "E" and kind == "J":
        raise ScriptError(f"script threw: {text[:2100]}")
    raise ValueError(f"the {what} helper answered an unknown marker {mark!r}")


def png_worst_case(width: int, height: int) -> int:
    """An upper bound on the bytes of a ``width`` x ``height`` PNG as a browser encodes it:
    8-bit RGBA, a filter byte per row, pixels that do not compress (deflate's stored blocks and
    zlib's framing), libpng's IDAT chunks, and room for the colour chunks."""
    if width <= 0 or height <= 0:
        return _PNG_FIXED
    raw = height * (1 + 4 * width)
    blocks = -(-raw // _STORED_BLOCK) * 5 + 6
    chunks = -(-(raw + blocks) // _IDAT_CHUNK) * 12
    return raw + blocks + chunks + _PNG_FIXED


def screenshot_precheck(width: int, height: int, bound: int) -> None:
    """Refuse, before it is taken, a screenshot whose worst case passes the headroom."""
    worst = png_worst_case(width, height)
    if worst > SCREENSHOT_HEADROOM * bound:
        raise TooLarge(
            f"a screenshot of this {width}x{height}-pixel viewport can be up to {worst} bytes, more than "
            f"{SCREENSHOT_HEADROOM}x the {bound}-byte reply limit ({SETTING}): not taken (use a smaller viewport)"
        )
