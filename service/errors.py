"""One exception tree for the whole service.

Every error the client can see is a ``ServiceError``; its class says the wire code
(the ``code`` of the error frame) and, for fatal errors, the WebSocket close code::

    ServiceError                      500  (base; never raised bare)
    ├── BadRequest                    400  invalid frame, JSON, argument, scheme, base64, selector
    ├── Unauthenticated               401
    ├── Forbidden                     403  tenant, proxy, network policy
    ├── NotFound                      404  no element matches the selector
    ├── OpenTimeout                   408  no open frame in time (fatal, 1008)
    ├── Conflict                      409  element not interactable, nothing loaded yet
    ├── SessionExpired                410  idle too long / past max lifetime (fatal, 1008)
    ├── TooLarge                      413  frame or body over the size limit
    ├── Misdirected                   421  a resume that reached an instance not holding it (fatal, 1008)
    ├── ScriptError                   422  the evaluated script threw
    ├── TooManyRequests               429  tenant quota, too many pending actions
    ├── InternalError                 500  our bug (fatal, 1011)
    ├── NotSupported                  501  action not supported by this client
    ├── UpstreamError                 502  DNS, refused, reset, TLS after the retries
    │   └── BadAnswer                 502  a malformed answer (bad Location): not retried
    ├── Unavailable                   503  no capacity, browser lost, shutting down (fatal, 1011)
    │   └── HandedOver                503  shutting down, the session left for another instance
    │                                      to adopt (fatal, ``resumable``, 1012)
    ├── GatewayTimeout                504  navigation, script, element wait timed out
    └── TooManyRedirects              508  more redirects than max_redirects

``fatal`` is a class default that a raise site may override (``Forbidden(..., fatal=True)``
for a proxy refused at open time). Third-party exceptions are translated into these at one
boundary per client (``raise Ours(...) from exc``).
"""

from __future__ import annotations


class ServiceError(Exception):
    code: int = 500
    fatal: bool = False
    close_code: int = 1011
    #: the session outlives this error: the client resumes it (on another instance)
    resumable: bool = False

    #: the ``id`` of the action frame this error answers, when it had a readable one
    action_id: str | int | None = None
    #: seconds a refused client should wait before trying again (an HTTP ``Retry-After``)
    retry_after: int | None = None

    def __init__(
        self,
        message: str,
        *,
        fatal: bool | None = None,
        close_code: int | None = None,
        action_id: str | int | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.action_id = action_id
        if retry_after is not None:
            self.retry_after = retry_after
        if fatal is not None:
            self.fatal = fatal
        if close_code is not None:
            self.close_code = close_code


class BadRequest(ServiceError):
    code = 400
    close_code = 1008


class Unauthenticated(ServiceError):
    code = 401
    close_code = 1008


class Forbidden(ServiceError):
    code = 403
    close_code = 1008


class NotFound(ServiceError):
    code = 404


class OpenTimeout(ServiceError):
    code = 408
    fatal = True
    close_code = 1008


class Conflict(ServiceError):
    code = 409


class SessionExpired(ServiceError):
    code = 410
    fatal = True
    close_code = 1008


class TooLarge(ServiceError):
    code = 413
    close_code = 1008


class ScriptError(ServiceError):
    code = 422


class TooManyRequests(ServiceError):
    code = 429
    close_code = 1008


class InternalError(ServiceError):
    code = 500
    fatal = True


class NotSupported(ServiceError):
    code = 501


class UpstreamError(ServiceError):
    code = 502


class BadAnswer(UpstreamError):
    """The server's answer cannot be followed (an invalid Location, say): the same answer would
    come again, so it is not retried."""


class Unavailable(ServiceError):
    code = 503
    fatal = True


class HandedOver(Unavailable):
    close_code = 1012  # service restart
    resumable = True


class Misdirected(ServiceError):
    code = 421
    fatal = True
    close_code = 1008


class GatewayTimeout(ServiceError):
    code = 504


class TooManyRedirects(ServiceError):
    code = 508


RETRYABLE = (UpstreamError, GatewayTimeout)
"""Errors of a goto attempt that ``max_retries`` retries (except those in NOT_RETRIED)."""
NOT_RETRIED = (BadAnswer,)
