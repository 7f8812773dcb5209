"""The Flask application: the WebSocket route, /healthz, /metrics, the playground and the contract.

``create_app(settings=None)`` builds everything from ``Settings`` (read from the environment
when not given). Connecting clients are checked before the upgrade: a refused upgrade gets an
HTTP error with a JSON body ``{"type": "fatal", "message", "code"}``.

``/`` is the playground (``service/static/``, plain files), ``/asyncapi.yaml`` the AsyncAPI
document, ``/schemas/<file>`` the frame schemas it refers to. A browser cannot set headers on a
WebSocket, so with ``INNDX_TENANT_QUERY=1`` the tenant may come as ``?tenant=ID&api_key=KEY``
instead (the same tenants file rules apply); without it such a query is refused with 400.
``/v1/sessions/<id>/live`` is a session's live view, for its tenant (``service.live``).
Nothing else is served: a name under ``/static/`` or ``/schemas/`` that leads out of its folder
(``..``, an absolute path, a symlink pointing elsewhere) is a 404.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, Response, abort, g, jsonify, request, send_from_directory
from flask_sock import Sock
from werkzeug.security import safe_join

from service import __version__, endpoint, live, websocket
from service.clients import browser_reaper
from service.config import Settings
from service.errors import BadRequest, ServiceError
from service.hub import Hub

logger = logging.getLogger(__name__)

WS_PATH = "/v1/sessions/ws"
LIVE_PAGE = "/v1/sessions/<session_id>/live"  # the live view (service.live): its page
LIVE_WS = LIVE_PAGE + "/ws"  # and its frames
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
STATIC_DIR = Path(__file__).resolve().parent / "static"
# the playground loads nothing from elsewhere, and nothing may frame it
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# the live view's page shows its frames from blob: URLs
LIVE_PAGE_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"].replace("img-src 'self' data:", "img-src blob:"),
}


def _refuse(error: ServiceError) -> Response:
    response = jsonify({"type": "fatal", "message": error.message, "code": error.code})
    response.status_code = error.code
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _credentials(settings: Settings) -> tuple[str | None, str | None]:
    """(tenant id, Authorization) from the headers, or from the query when the operator allows it."""
    tenant, authorization = request.headers.get("X-Tenant-Id"), request.headers.get("Authorization")
    if "tenant" not in request.args and "api_key" not in request.args:
        return tenant, authorization
    if not settings.tenant_query:
        raise BadRequest(
            "the tenant and api_key query parameters are off on this server (INNDX_TENANT_QUERY); "
            "send the X-Tenant-Id header"
        )
    if tenant is not None or authorization is not None:
        raise BadRequest("send the tenant and API key either as headers or in the query, not both")
    if len(request.args.getlist("tenant")) != 1 or len(request.args.getlist("api_key")) > 1:
        raise BadRequest("the query needs exactly one tenant parameter and at most one api_key")
    key = request.args.get("api_key")
    return request.args["tenant"], (f"Bearer {key}" if key is not None else None)


def send_inside(directory: Path, name: str, **options) -> Response:
    """``send_from_directory``, for a regular file that is really inside ``directory``. Werkzeug's
    ``safe_join`` refuses ``..`` and absolute names but follows a symlink wherever it points; the
    file is served by its resolved path, so one that leads out of ``directory`` is a 404 (a
    symlink that stays inside is served)."""
    folder = directory.resolve()
    joined = safe_join(str(folder), name)
    if joined is None:
        abort(404)
    real = Path(joined).resolve()
    if not real.is_relative_to(folder) or not real.is_file():
        abort(404)
    return send_from_directory(folder, real.relative_to(folder).as_posix(), **options)


class _App(Flask):
    def send_static_file(self, filename: str) -> Response:
        return send_inside(STATIC_DIR, filename, max_age=self.get_send_file_max_age(filename))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    # Browsers and temp dirs of a worker that died (SIGKILL, out of memory) go first.
    browser_reaper.reap_orphans()
    hub = Hub(settings)
    hub.pool.start()  # the warm pool fills in the background
    app = _App(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.extensions["inndx"] = hub
    # our reader thread counts each message in bytes (413 in its turn, the rest dropped unread)
    app.config["SOCK_SERVER_OPTIONS"] = websocket.server_options(settings.max_frame_bytes, settings.ping_interval)
    sock = Sock(app)

    viewers = live.Viewers(settings.live_fps, settings.live_viewers, settings.live_max_viewers, settings.retry_after)

    def live_session(session_id: str):
        return live.owned(hub, hub.tenants.authenticate(*_credentials(settings)), session_id)

    @app.before_request
    def admit():
        if request.endpoint == "live_frames":  # checked before the upgrade, as sessions are
            try:
                if request.headers.get("Upgrade", "").lower() != "websocket":
                    raise BadRequest("the live view's frames come over a WebSocket: send an Upgrade: websocket request")
                g.viewer = viewers.join(live_session(request.view_args["session_id"]))
                websocket.refuse_compression(request.environ)
            except ServiceError as error:
                logger.info("live view refused: %s (%s)", error.message, error.code)
                return _refuse(error)
            return None
        if request.path != WS_PATH:
            return None
        try:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                raise BadRequest(f"{WS_PATH} is a WebSocket endpoint: send an Upgrade: websocket request")
            g.ticket = hub.admit(*_credentials(settings), request.args.get("session"))
            websocket.refuse_compression(request.environ)  # permessage-deflate: off
        except ServiceError as error:
            logger.info("upgrade refused: %s (%s)", error.message, error.code)
            return _refuse(error)
        return None

    @app.teardown_request
    def release(_exc):  # a ticket (or a viewer) the WebSocket route never took over (the upgrade failed)
        ticket = g.pop("ticket", None)
        if ticket is not None:
            ticket.release()
        viewer = g.pop("viewer", None)
        if viewer is not None:
            viewer.leave()

    @sock.route(WS_PATH)
    def sessions(ws):
        endpoint.serve(ws, hub, g.pop("ticket"))  # from here on, the endpoint or its session owns it

    @app.get(LIVE_PAGE)
    def live_page(session_id: str):
        try:
            live_session(session_id)
        except ServiceError as error:
            return _refuse(error)
        return send_inside(STATIC_DIR, "live.html", max_age=0)

    @sock.route(LIVE_WS)
    def live_frames(ws, session_id: str):
        try:
            live.serve(ws, g.pop("viewer"), settings.write_timeout)
        finally:
            endpoint.let_reader_finish(ws)  # as a session's socket does

    @app.get("/healthz")
    def healthz():
        return jsonify({"ok": True, "version": __version__, "active_sessions": hub.active_sessions()})

    @app.get("/metrics")
    def metrics():
        return Response(hub.metrics.render(), mimetype=None, content_type=hub.metrics.content_type)

    @app.get("/")
    def playground():
        return send_inside(STATIC_DIR, "index.html", max_age=0)

    @app.get("/asyncapi.yaml")
    def asyncapi():
        return send_inside(SCHEMA_DIR, "asyncapi.yaml", mimetype="application/yaml", max_age=0)

    @app.get("/schemas/<path:name>")
    def schema(name: str):
        if not (name.endswith(".json") or name == "asyncapi.yaml"):
            abort(404)
        mimetype = "application/schema+json" if name.endswith(".json") else "application/yaml"
        return send_inside(SCHEMA_DIR, name, mimetype=mimetype, max_age=0)

    @app.after_request
    def page_headers(response: Response) -> Response:
        if request.path == "/" or request.path.startswith("/static/"):
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
        elif request.endpoint == "live_page":
            for name, value in LIVE_PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    return app
