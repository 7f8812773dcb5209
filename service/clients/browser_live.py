"""The live view's frames: the viewport as a JPEG, asked for from the live view's thread.

``frame(launched, timeout, bound)`` is called by ``BrowserClient.live_frame``, the one client
method another thread than the session's calls (``service.live``). It uses the session's BiDi
channel alone, through ``Bidi.ask``: the command goes out beside the session's own (replies are
matched by id), and its reply is waited for at most ``timeout`` seconds on the channel's
condition, with none of the session thread's probes or liveness checks. It never touches the
driver, the navigation state or the events. A browser that answers nothing costs the viewer a
missed frame, never the session a wait.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from service import errors
from service.clients.bidi import BidiClosed, BidiError

if TYPE_CHECKING:
    from service.clients.browser_launch import Launched

FORMAT = {"type": "image/jpeg", "quality": 0.6}  # a few tens of KB a frame; both browsers take it


def frame(launched: Launched | None, timeout: float, bound: int) -> bytes:
    """One JPEG of the page's viewport; the errors say why there is none this time."""
    if launched is None:
        raise errors.Conflict("the session's browser has not started (or has ended)")
    params = {"context": launched.context, "origin": "viewport", "format": FORMAT}
    try:
        result = launched.bidi.ask("browsingContext.captureScreenshot", params, timeout)
    except TimeoutError as exc:
        raise errors.GatewayTimeout(f"the browser gave no frame within {timeout:g}s") from exc
    except BidiClosed as exc:
        raise errors.Unavailable("the session's browser is gone") from exc
    except BidiError as exc:  # no page to capture at this moment (a navigation between documents)
        raise errors.Conflict(f"the browser gave no frame: {exc.error}: {exc.message[:200]}") from exc
    data = result.get("data")
    if not isinstance(data, str) or not data:
        raise errors.InternalError("the browser's screenshot reply has no data", fatal=False)
    if len(data) // 4 * 3 > bound:  # measured before it is decoded
        raise errors.TooLarge(f"a live frame is over {bound} bytes")
    return base64.b64decode(data)
