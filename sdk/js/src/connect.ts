/**
 * Opening a session: the WebSocket upgrade (`X-Tenant-Id` and `Authorization: Bearer` headers),
 * the open frame and its reply, all within one bound; a refused upgrade typed from its JSON body.
 * A resume (session.ts) opens its sockets the same way, with the resume frame instead.
 */

import { randomUUID } from "node:crypto";

import WebSocket from "ws";

import { ConnectionClosed, InndxError, errorFor } from "./errors.js";
import * as frames from "./frames.js";
import type { OpenOptions } from "./frames.js";
import { Session, excerpt, type Reconnect, type Reply } from "./session.js";

/** Options of `connect()`: the open frame's fields (as in the schema) and the client's own. */
export interface ConnectOptions extends OpenOptions {
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Bounds the upgrade and the open reply together, in ms (browsers take seconds). Default 30 s.
   * Bounds each attempt of a resume too. */
  connectTimeout?: number;
  /** Bounds the wait for each later reply, in ms. Default: none (the service bounds each action). */
  replyTimeout?: number;
  /** The largest frame the client accepts, in bytes; a larger one ends the session (close 1009).
   * Default 256 MiB (a goto body of the service's default 64 MiB limit is 86 MiB as base64). */
  maxPayload?: number;
  /** Resume the session on a new socket when the link breaks (close 1006 or 1012): the calls in
   * flight get their replies as if nothing happened. Default false: a drop ends the session. */
  resume?: boolean;
  /** How long, in ms after a drop, the client keeps trying to resume (backoff 0.1 s doubling to
   * 2 s between attempts). Default 90 s; the service keeps a dropped session for its
   * INNDX_RESUME_WINDOW (60 s by default). */
  resumeTimeout?: number;
  /** Further open-frame fields, sent verbatim (fields the generated types do not know yet). */
  fields?: Record<string, unknown>;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_RESUME_TIMEOUT_MS = 90_000;
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
  const { apiKey, connectTimeout, replyTimeout, maxPayload, resume, resumeTimeout, fields, ...open } = options;
  const frame = frames.openFrame(open, fields ?? {});
  const headers: Record<string, string> = {};
  if (tenant !== undefined) headers["X-Tenant-Id"] = tenant;
  if (apiKey !== undefined) headers.Authorization = `Bearer ${apiKey}`;
  const socket = { headers, limit: connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS, maxPayload: maxPayload ?? DEFAULT_MAX_PAYLOAD, what: "open" as const };

  // resuming: the open proposes the session's id (a fresh UUID), so that a balancer hashing
  // `?session=` sends the open and every resume of the session to the same instance
  const openUrl = resume ? frames.resumeUrl(url, randomUUID()) : frames.wsUrl(url);
  return handshake(openUrl, socket, frame, (ws, reply) => {
    if (typeof reply.session_id !== "string") return errorFor(reply.code, String(reply.message ?? JSON.stringify(reply)), { fatal: true });
    const sessionId = reply.session_id;
    const token = typeof reply.resume_token === "string" ? reply.resume_token : undefined;
    const reconnect: Reconnect | undefined = resume
      ? (resumeFrame, adopt, limit) =>
        handshake(frames.resumeUrl(url, sessionId), { ...socket, limit, what: "resume" }, resumeFrame, adopt)
      : undefined;
    return new Session(ws, sessionId, replyTimeout, {
      token, reconnect, resumeTimeout: resumeTimeout ?? DEFAULT_RESUME_TIMEOUT_MS, connectTimeout: socket.limit,
    });
  });
}

interface SocketOptions {
  headers: Record<string, string>;
  /** Bounds the upgrade and the first reply together, in ms. */
  limit: number;
  maxPayload: number;
  /** Which first frame, for the messages: "open" or "resume". */
  what: "open" | "resume";
}

/**
 * A new socket to `target`: the upgrade, `frame` (the open or the resume frame), its reply. The
 * reply goes to `adopt` in the very handler that read it, so that no frame after it can go
 * unheard: `adopt` takes the socket over (its own listeners) and returns the outcome, or an
 * `InndxError` that rejects (the socket then dropped). Every failure rejects, `fatal` set.
 */
export function handshake<T>(target: string, options: SocketOptions, frame: object,
  adopt: (ws: WebSocket, reply: Reply) => T | InndxError): Promise<T> {
  const { headers, limit, maxPayload, what } = options;
  return new Promise<T>((resolve, reject) => {
    const ws = new WebSocket(target, {
      headers, handshakeTimeout: limit, maxPayload, perMessageDeflate: false, followRedirects: false,
    });
    let done = false;
    let lastError: Error | undefined;
    const finish = (outcome: T | InndxError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.removeListener("message", onMessage);
      ws.removeListener("close", onClose);
      if (!(outcome instanceof InndxError)) return resolve(outcome);
      ws.terminate();
      reject(outcome);
    };
    const timer = setTimeout(
      () => finish(new InndxError(`no ${what} reply from ${target} within ${limit} ms`, null, { fatal: true })), limit);

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
        return finish(new InndxError(`the server answered the ${what} frame with ${excerpt(text)}`, null, { fatal: true }));
      }
      let outcome: T | InndxError;
      try {
        outcome = adopt(ws, reply);
      } catch (error) {
        outcome = error instanceof InndxError ? error : new InndxError(String(error), null, { fatal: true });
      }
      finish(outcome);
    };
    const onClose = (code: number, reason: Buffer): void => {
      const why = lastError?.message ?? (reason.toString("utf8") || "no reason given");
      finish(new ConnectionClosed(`the server closed the socket before the ${what} reply (${why})`, code, { fatal: true }));
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
        if (error) finish(new InndxError(`cannot send the ${what} frame: ${error.message}`, null, { fatal: true }));
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
