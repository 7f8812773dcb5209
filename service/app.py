"""The Flask application: the WebSocket route, /healthz and /metrics.

``create_app(settings=None)`` builds everything from ``Settings`` (read from the environment
when not given). Connecting clients are checked before the upgrade: a refused upgrade gets an
HTTP error with a JSON body ``{"type": "fatal", "message", "code"}``.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from flask_sock import Sock

from service import __version__, endpoint, websocket
from service.config import Settings
from service.errors import BadRequest, ServiceError
from service.hub import Hub

logger = logging.getLogger(__name__)

WS_PATH = "/v1/sessions/ws"
PING_INTERVAL = 25  # seconds: finds clients that vanished without closing


def _refuse(error: ServiceError) -> Response:
    response = jsonify({"type": "fatal", "message": error.message, "code": error.code})
    response.status_code = error.code
    return response


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    hub = Hub(settings)
    app = Flask(__name__)
    app.extensions["inndx"] = hub
    # our reader thread counts each message in bytes (413 in its turn, the rest dropped unread)
    app.config["SOCK_SERVER_OPTIONS"] = websocket.server_options(settings.max_frame_bytes, PING_INTERVAL)
    sock = Sock(app)

    @app.before_request
    def admit():
        if request.path != WS_PATH:
            return None
        try:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                raise BadRequest(f"{WS_PATH} is a WebSocket endpoint: send an Upgrade: websocket request")
            g.ticket = hub.admit(request.headers.get("X-Tenant-Id"), request.headers.get("Authorization"))
            websocket.refuse_compression(request.environ)  # permessage-deflate: off
        except ServiceError as error:
            logger.info("upgrade refused: %s (%s)", error.message, error.code)
            return _refuse(error)
        return None

    @app.teardown_request
    def release(_exc):  # a ticket the WebSocket route never took over (the upgrade failed)
        ticket = g.pop("ticket", None)
        if ticket is not None:
            ticket.release()

    @sock.route(WS_PATH)
    def sessions(ws):
        endpoint.serve(ws, hub, g.pop("ticket"))  # from here on, the endpoint or its session owns it

    @app.get("/healthz")
    def healthz():
        return jsonify({"ok": True, "version": __version__, "active_sessions": hub.active_sessions()})

    @app.get("/metrics")
    def metrics():
        return Response(hub.metrics.render(), mimetype=None, content_type=hub.metrics.content_type)

    return app
