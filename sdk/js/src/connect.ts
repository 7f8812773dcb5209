/**
 * Opening a session: the WebSocket upgrade (`X-Tenant-Id` and `Authorization: Bearer` headers),
 * the open frame and its reply, all within one bound; a refused upgrade typed from its JSON body.
 */

import WebSocket from "ws";

import { ConnectionClosed, InndxError, errorFor } from "./errors.js";
import * as frames from "./frames.js";
import type { OpenOptions } from "./frames.js";
import { Session, excerpt, type Reply } from "./session.js";

/** Options of `connect()`: the open frame's fields (as in the schema) and the client's own. */
export interface ConnectOptions extends OpenOptions {
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Bounds the upgrade and the open reply together, in ms (browsers take seconds). Default 30 s. */
  connectTimeout?: number;
  /** Bounds the wait for each later reply, in ms. Default: none (the service bounds each action). */
  replyTimeout?: number;
  /** The largest frame the client accepts, in bytes; a larger one ends the session (close 1009).
   * Default 256 MiB (a goto body of the service's default 64 MiB limit is 86 MiB as base64). */
  maxPayload?: number;
  /** Further open-frame fields, sent verbatim (fields the generated types do not know yet). */
  fields?: Record<string, unknown>;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_PAYLOAD = 256 * 1024 * 1024;
const MAX_REFUSAL_BODY = 64 * 1024;

/**
 * Open a session: the WebSocket, then the open frame; resolves to the open `Session`.
 *
 * `url`: the service (`ws://host:8022`, `http://...` or the full `.../v1/sessions/ws`); `tenant`
 * goes in `X-Tenant-Id`. A refused upgrade or open rejects with `InndxError` (or its family),
 * `fatal` set; no answer within `connectTimeout` rejects with code null.
 */
export function connect(url: string, tenant?: string, options: ConnectOptions = {}): Promise<Session> {
  const { apiKey, connectTimeout, replyTimeout, maxPayload, fields, ...open } = options;
  const frame = frames.openFrame(open, fields ?? {});
  const target = frames.wsUrl(url);
  const limit = connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const headers: Record<string, string> = {};
  if (tenant !== undefined) headers["X-Tenant-Id"] = tenant;
  if (apiKey !== undefined) headers.Authorization = `Bearer ${apiKey}`;

  return new Promise<Session>((resolve, reject) => {
    const ws = new WebSocket(target, {
      headers, handshakeTimeout: limit, maxPayload: maxPayload ?? DEFAULT_MAX_PAYLOAD,
      perMessageDeflate: false, followRedirects: false,
    });
    let done = false;
    let lastError: Error | undefined;
    const finish = (outcome: Session | InndxError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.removeListener("message", onMessage);
      ws.removeListener("close", onClose);
      if (outcome instanceof Session) return resolve(outcome);
      ws.terminate();
      reject(outcome);
    };
    const timer = setTimeout(
      () => finish(new InndxError(`no open reply from ${target} within ${limit} ms`, null, { fatal: true })), limit);

    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      const text = data.toString();
      let reply: Reply | undefined;
      try {
        const parsed: unknown = isBinary ? undefined : JSON.parse(text);
        if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) reply = parsed as Reply;
      } catch {
        reply = undefined;
      }
      if (reply === undefined) {
        return finish(new InndxError(`the server answered the open frame with ${excerpt(text)}`, null, { fatal: true }));
      }
      if (typeof reply.session_id !== "string") return finish(errorFor(reply.code, String(reply.message ?? text), { fatal: true }));
      // synchronously, so that no frame after the open reply can go unheard
      finish(new Session(ws, reply.session_id, replyTimeout));
    };
    const onClose = (code: number, reason: Buffer): void => {
      const why = lastError?.message ?? (reason.toString("utf8") || "no reason given");
      finish(new ConnectionClosed(`the server closed the socket before the open reply (${why})`, code, { fatal: true }));
    };
    ws.on("message", onMessage);
    ws.on("close", onClose);
    ws.on("error", (error: Error) => {
      lastError = error;
      if (ws.readyState !== WebSocket.OPEN) {
        finish(new InndxError(`cannot connect to ${target}: ${error.message}`, null, { fatal: true }));
      }
    });
    ws.on("unexpected-response", (_request, response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        if (size < MAX_REFUSAL_BODY) chunks.push(chunk);
        size += chunk.length;
      });
      response.on("error", () => undefined);
      response.on("end", () => finish(refused(response.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"))));
    });
    ws.on("open", () => {
      ws.send(JSON.stringify(frame), (error) => {
        if (error) finish(new InndxError(`cannot send the open frame: ${error.message}`, null, { fatal: true }));
      });
    });
  });
}

/** The error for a refused upgrade: the service's JSON body names it (`{type, message, code}`). */
function refused(status: number, body: string): InndxError {
  let message: string | undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === "object" && typeof (parsed as Reply).message === "string") {
      message = (parsed as Reply).message as string;
    }
  } catch {
    message = undefined;
  }
  return errorFor(status, message ?? (body.trim().slice(0, 200) || `upgrade refused with HTTP ${status}`), { fatal: true });
}
