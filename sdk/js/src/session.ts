/**
 * The client: one WebSocket, one session, one method per action.
 *
 * `connect()` (connect.ts) opens the socket, sends the open frame and hands it to a `Session`.
 * Each method sends one action frame with a fresh integer `id`
 * and resolves to its reply, typed; an error frame rejects with `InndxError` (or its family).
 * Several calls may be in flight at once (pipelining): each reply is matched to its call by `id`.
 *
 * The socket is read all the time (Node's event loop), and `ws` answers the service's pings on
 * its own, so a session left idle between two actions stays open.
 *
 * Rules of the reply matching (the service answers strictly in order):
 * 1. A reply whose `id` is a call in flight settles that call.
 * 2. An error without `id` (a frame too broken to carry one, say a 413) answers the oldest frame
 *    not answered yet.
 * 3. A `fatal` frame, after settling its call, ends the session: every call in flight and every
 *    later call rejects with it.
 * 4. Anything else (not JSON, not an object, a binary frame, a reply to no frame in flight) is a
 *    broken server: the session ends with a fatal `InndxError` (code null), the socket closes 1002.
 * 5. A call whose reply did not come within `replyTimeout` rejects (code null) and the session goes
 *    on; the reply, if it ever comes, is dropped.
 * 6. The socket closing rejects every call in flight, and every later call, with `ConnectionClosed`
 *    (the close code: 1000 after `close()`, 1006 for a dropped connection, 1009 for a frame over
 *    `maxPayload`).
 */

import WebSocket from "ws";

import { ConnectionClosed, InndxError, errorFor } from "./errors.js";
import * as frames from "./frames.js";
import type { GotoOptions } from "./frames.js";
import type {
  ClickRequest, CloseRequest, ContentRequest, ContentResponse, EvaluateRequest, EvaluateResponse,
  FillRequest, GotoResponse, Id, ScreenshotRequest, ScreenshotResponse,
} from "./generated/frames.js";
import { GotoResult } from "./results.js";

export type Reply = Record<string, unknown>;

interface Call {
  resolve: (reply: Reply) => void;
  reject: (error: InndxError) => void;
  timer: NodeJS.Timeout | undefined;
}

/** How long `close()` waits for the server's close after `closed`, before dropping the socket. */
const CLOSE_GRACE_MS = 5_000;
/** How long `close()` waits for `closed` by default (the actions queued before it run first). */
const DEFAULT_CLOSE_TIMEOUT_MS = 60_000;

export class Session {
  /** The session's id, as the service answered the open frame. */
  readonly sessionId: string;
  /** Bounds the wait for each reply, in milliseconds (undefined: as long as the service takes). */
  replyTimeout: number | undefined;
  /** Why the session is over, once it is (null while it is open). */
  closed: InndxError | null = null;

  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #calls = new Map<number, Call>(); // in flight, oldest first
  readonly #unanswered: number[] = []; // every id sent and not answered, oldest first (abandoned ones too)
  #lastError: Error | undefined; // the socket's error, named when it closes
  readonly #socketClosed: Promise<void>;

  /** Use `connect()`: it hands over a socket whose open frame has been answered. */
  constructor(ws: WebSocket, sessionId: string, replyTimeout?: number) {
    this.#ws = ws;
    this.sessionId = sessionId;
    this.replyTimeout = replyTimeout;
    this.#socketClosed = new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) resolve();
      ws.on("close", (code: number, reason: Buffer) => {
        this.#onClose(code, reason.toString("utf8"));
        resolve();
      });
    });
    ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on("error", (error: Error) => {
      this.#lastError = error;
    });
  }

  // -- actions ------------------------------------------------------------------------------

  /** Navigate to `url`; the final response, its hops and cookies. */
  async goto(url: string, options: GotoOptions = {}): Promise<GotoResult> {
    return new GotoResult((await this.#call(frames.gotoFrame(url, options))) as unknown as GotoResponse);
  }

  /** Click the first element matching the CSS `selector` (waits for it; 404 if none). */
  async click(selector: string): Promise<void> {
    const frame: ClickRequest = { action: "click", selector };
    await this.#call(frame);
  }

  /** Clear the field matching `selector` and type `value` (a select: pick that option). */
  async fill(selector: string, value: string): Promise<void> {
    const frame: FillRequest = { action: "fill", selector, value };
    await this.#call(frame);
  }

  /** The page as the session sees it now (the live DOM for browsers), as bytes. */
  async content(): Promise<Buffer> {
    const frame: ContentRequest = { action: "content" };
    return frames.content((await this.#call(frame)) as unknown as ContentResponse);
  }

  /** Run `script` as a function body in the page; its JSON result (promises awaited). */
  async evaluate<T = unknown>(script: string): Promise<T> {
    const frame: EvaluateRequest = { action: "evaluate", script };
    return ((await this.#call(frame)) as unknown as EvaluateResponse).result as T;
  }

  /** A PNG of the viewport, as bytes (null when the service sent none: the standard client). */
  async screenshot(): Promise<Buffer | null> {
    const frame: ScreenshotRequest = { action: "screenshot" };
    return frames.screenshot((await this.#call(frame)) as unknown as ScreenshotResponse);
  }

  /** Send any action frame (an `id` is added) and resolve to its raw reply frame. */
  async request(frame: { action: string; [field: string]: unknown }): Promise<Reply> {
    return this.#call(frame);
  }

  /**
   * Send `close`, wait for `closed` (at most `timeout` ms: the actions queued before it run
   * first) and for the server's close (bounded); idempotent. Past the bound the client closes
   * the socket itself, which ends the session on the server too.
   */
  async close(timeout = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    if (this.closed === null) {
      const frame: CloseRequest = { action: "close" };
      try {
        await this.#call(frame, Math.min(timeout, this.replyTimeout ?? timeout));
      } catch (error) {
        if (!(error instanceof InndxError)) throw error;
      }
      this.#end(new ConnectionClosed("the session was closed", 1000, { fatal: true }));
    }
    await this.#settled();
  }

  // -- plumbing -----------------------------------------------------------------------------

  #call(frame: object, wait = this.replyTimeout): Promise<Reply> {
    if (this.closed !== null) return Promise.reject(this.closed);
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const call: Call = { resolve, reject, timer: undefined };
      if (wait !== undefined) {
        call.timer = setTimeout(() => this.#abandon(id, wait), wait);
      }
      this.#calls.set(id, call);
      this.#unanswered.push(id);
      this.#ws.send(JSON.stringify({ ...frame, id }), (error) => {
        if (error) this.#lastError = error; // the socket is breaking: its close rejects the call
      });
    });
  }

  #abandon(id: number, wait: number): void {
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id); // stays in #unanswered: its late reply is dropped in its turn
    call.reject(new InndxError(`no reply within ${wait} ms`, null, { id }));
  }

  #settle(id: number, reply: Reply): void {
    const index = this.#unanswered.indexOf(id);
    if (index >= 0) this.#unanswered.splice(index, 1);
    const call = this.#calls.get(id);
    if (call === undefined) return; // abandoned: nobody waits for it any more
    this.#calls.delete(id);
    clearTimeout(call.timer);
    if (reply.type === "error" || reply.type === "fatal") {
      call.reject(asError(reply));
    } else {
      call.resolve(reply);
    }
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.closed !== null) return;
    if (isBinary) return this.#broken("the server sent a binary frame");
    const text = data.toString();
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      return this.#broken(`the server sent a frame that is not JSON: ${excerpt(text)}`);
    }
    if (reply === null || typeof reply !== "object" || Array.isArray(reply)) {
      return this.#broken(`the server sent a frame that is not a JSON object: ${excerpt(text)}`);
    }
    const frame = reply as Reply;
    const isError = frame.type === "error" || frame.type === "fatal";
    let target: number | undefined;
    if (typeof frame.id === "number" && this.#unanswered.includes(frame.id)) {
      target = frame.id;
    } else if (isError && frame.id === undefined) {
      target = this.#unanswered[0]; // rule 2: the oldest frame not answered
    } else {
      return this.#broken(`the server sent a reply to no action in flight: ${excerpt(text)}`);
    }
    if (target !== undefined) this.#settle(target, frame);
    if (frame.type === "fatal") this.#end(asError(frame)); // rule 3
  }

  /** A broken server (rule 4): the session ends, the socket closes with 1002 (protocol error). */
  #broken(message: string): void {
    this.#end(new InndxError(message, null, { fatal: true }));
    this.#ws.close(1002, "protocol error");
  }

  #onClose(code: number, reason: string): void {
    const error = this.#lastError;
    if (error === undefined) {
      this.#end(new ConnectionClosed(`the server closed the session (${reason || "no reason given"})`, code, { fatal: true }));
    } else {  // a fault ws found in the server's frames: the code it closed with, not the 1006 that follows
      const sent = closeCodeFor(error);
      this.#end(new ConnectionClosed(`the connection broke (${error.message})`, sent ?? code, { fatal: true }));
    }
  }

  /** The session is over: remember why (the first reason wins), reject every call in flight. */
  #end(reason: InndxError): void {
    if (this.closed === null) this.closed = reason;
    for (const [id, call] of this.#calls) {
      clearTimeout(call.timer);
      this.#calls.delete(id);
      call.reject(this.closed);
    }
    this.#unanswered.length = 0;
  }

  /** The socket closed: at once when it has, else after the server's close or the grace period. */
  async #settled(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#ws.terminate();
        resolve();
      }, CLOSE_GRACE_MS);
    });
    await Promise.race([this.#socketClosed, grace]);
    clearTimeout(timer);
  }
}

/** The close code ws sends for a fault of the peer's frames (its error codes, WS_ERR_*). */
function closeCodeFor(error: Error): number | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("WS_ERR_")) return undefined;
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" || code === "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH") return 1009;
  if (code === "WS_ERR_INVALID_UTF8") return 1007;
  return 1002;
}

function asError(frame: Reply): InndxError {
  const message = typeof frame.message === "string" ? frame.message : JSON.stringify(frame);
  return errorFor(frame.code, message, { fatal: frame.type === "fatal", id: frame.id as Id | undefined });
}

export function excerpt(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
}
