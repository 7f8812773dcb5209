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
 *    `maxPayload`). The reply to `close` (`{"action": "closed"}`) ends the session too.
 * 7. Resuming (`connect(..., {resume: true})`): the text of every frame not answered yet is kept.
 *    A link that breaks (close 1006 or 1012, or the server's ping timeout: 1008 "Ping/Pong
 *    timeout", a client that was merely slow to answer) does not end the session: the client opens a new
 *    socket to `?session=<id>` and sends the resume frame (`last_id`: the newest reply in), with
 *    backoff, for at most `resumeTimeout`; the frames sent meanwhile wait. The resume reply's
 *    `last_received` says which frames the server read: only those after it are sent again, so
 *    nothing runs twice, and the replies the server sends again settle their calls by id (one
 *    already taken is dropped). A refusal (403: not this session's token; 410: the session is
 *    over) ends the session with that error; so does a resume that did not succeed in time.
 *    The fatal frame with `"resumable": true` (503) that a restarting server sends before its
 *    close 1012 (it hands the session over to another instance) ends nothing either.
 */

import WebSocket from "ws";

import { ConnectionClosed, InndxError, errorFor } from "./errors.js";
import { Actions, type Reply } from "./actions.js";
import * as frames from "./frames.js";
import type { CloseRequest, Download, Id, ResumeRequest } from "./generated/frames.js";

export type { Reply } from "./actions.js";

/** A new socket for a resume: the upgrade to `?session=<id>`, `frame`, and its reply handed to
 * `adopt` (which takes the socket over, or refuses); within `limit` ms. connect.ts makes it. */
export type Reconnect = (frame: ResumeRequest, adopt: (ws: WebSocket, reply: Reply) => true | InndxError,
  limit: number) => Promise<true>;

/** How a `Session` resumes (connect.ts fills it in; no `reconnect`: it never does). */
export interface ResumeOptions {
  /** The open reply's resume token. */
  token?: string | undefined;
  reconnect?: Reconnect | undefined;
  /** ms after a drop during which it keeps trying. */
  resumeTimeout?: number;
  /** Bounds each attempt, in ms. */
  connectTimeout?: number;
}

interface Call {
  resolve: (reply: Reply) => void;
  reject: (error: InndxError) => void;
  timer: NodeJS.Timeout | undefined;
}

/** A broken link, not an ending: a drop (1006), a restart (1012), or the server's ping timeout
 * (1008 with its "Ping/Pong" reason; any other 1008 is the service's refusal). As the Python client. */
function dropped(code: number, reason: string): boolean {
  return code === 1006 || code === 1012 || (code === 1008 && reason.includes("Ping/Pong"));
}

/** How long `close()` waits for the server's close after `closed`, before dropping the socket. */
const CLOSE_GRACE_MS = 5_000;
/** How long `close()` waits for `closed` by default (the actions queued before it run first). */
const DEFAULT_CLOSE_TIMEOUT_MS = 60_000;
/** The backoff between two resume attempts: from the first, doubling, to the last. */
const FIRST_BACKOFF_MS = 100;
const LAST_BACKOFF_MS = 2_000;

export class Session extends Actions {
  /** The session's id, as the service answered the open frame. */
  readonly sessionId: string;
  /** Bounds the wait for each reply, in milliseconds (undefined: as long as the service takes). */
  replyTimeout: number | undefined;
  /** Why the session is over, once it is (null while it is open). */
  closed: InndxError | null = null;
  /** How many times the session was resumed on a new socket. */
  resumes = 0;
  /** Every download the session's replies listed so far, oldest first (a goto's, a click's, any
   * action's); `download(d.id)` gives its bytes. */
  readonly downloads: Download[] = [];

  #ws!: WebSocket;
  #nextId = 1;
  readonly #calls = new Map<number, Call>(); // in flight, oldest first
  readonly #unanswered: number[] = []; // every id sent and not answered, oldest first (abandoned ones too)
  #lastError: Error | undefined; // the socket's error, named when it closes
  #socketClosed!: Promise<void>;
  // resuming (rule 7)
  #token: string | undefined;
  readonly #reconnect: Reconnect | undefined;
  readonly #resumeTimeout: number;
  readonly #connectTimeout: number;
  readonly #texts = new Map<number, string>(); // the frames sent and not answered yet, by id
  #lastReply: number | undefined; // the id of the newest reply in
  #resuming = false; // the link broke: frames wait in #texts until the session is resumed

  /** Use `connect()`: it hands over a socket whose open frame has been answered. */
  constructor(ws: WebSocket, sessionId: string, replyTimeout?: number, resume: ResumeOptions = {}) {
    super();
    this.sessionId = sessionId;
    this.replyTimeout = replyTimeout;
    this.#token = resume.token;
    this.#reconnect = resume.reconnect;
    this.#resumeTimeout = resume.resumeTimeout ?? 90_000;
    this.#connectTimeout = resume.connectTimeout ?? 30_000;
    this.#attach(ws);
  }

  /** The latest resume token the service gave (open or resume reply); undefined if none. */
  get resumeToken(): string | undefined {
    return this.#token;
  }

  /** Make `ws` the session's socket: every frame it brings is read, its close heard. */
  #attach(ws: WebSocket): void {
    this.#ws = ws;
    this.#lastError = undefined;
    this.#socketClosed = new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) resolve();
      ws.on("close", (code: number, reason: Buffer) => {
        if (ws === this.#ws) this.#onClose(code, reason.toString("utf8"));
        resolve();
      });
    });
    ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      if (ws === this.#ws) this.#onMessage(data, isBinary);
    });
    ws.on("error", (error: Error) => {
      if (ws === this.#ws) this.#lastError = error;
    });
  }

  // -- actions (actions.ts) -----------------------------------------------------------------

  protected override run(frame: object): Promise<Reply> {
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
      const text = JSON.stringify({ ...frame, id });
      if (this.#reconnect !== undefined) this.#texts.set(id, text);
      if (!this.#resuming) this.#send(text);
    });
  }

  #send(text: string): void {
    const ws = this.#ws;
    ws.send(text, (error) => {
      if (error && ws === this.#ws) this.#lastError = error; // the socket is breaking: its close says what next
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
    this.#texts.delete(id);
    this.#lastReply = id;
    if (reply.type === undefined) this.downloads.push(...frames.downloads(reply)); // abandoned calls' too
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
    if (this.#seen(frame.id)) return; // sent again after a resume, taken already (rule 7)
    // a restart hands the session over (fatal 503, resumable): its close 1012 follows, then a resume (rule 7)
    if (frame.type === "fatal" && frame.resumable === true
      && this.#reconnect !== undefined && this.#token !== undefined) return;
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
    else if (frame.action === "closed") this.#end(new ConnectionClosed("the session was closed", 1000, { fatal: true }));
  }

  /** A reply the service sent again after a resume and that was taken already: replies come in
   * the order of their ids, so one at or below the newest one in. */
  #seen(id: unknown): boolean {
    return this.#reconnect !== undefined && typeof id === "number" && this.#lastReply !== undefined && id <= this.#lastReply;
  }

  /** A broken server (rule 4): the session ends, the socket closes with 1002 (protocol error). */
  #broken(message: string): void {
    this.#end(new InndxError(message, null, { fatal: true }));
    this.#ws.close(1002, "protocol error");
  }

  #onClose(code: number, reason: string): void {
    const error = this.#lastError;
    const fault = error === undefined ? undefined : closeCodeFor(error);
    if (fault === undefined && this.#reconnect !== undefined && this.closed === null && this.#token !== undefined
      && dropped(code, reason)) {
      void this.#resume(code, error?.message ?? (reason || "no reason given")); // rule 7
      return;
    }
    if (error === undefined) {
      this.#end(new ConnectionClosed(`the server closed the session (${reason || "no reason given"})`, code, { fatal: true }));
    } else {  // a fault ws found in the server's frames: the code it closed with, not the 1006 that follows
      this.#end(new ConnectionClosed(`the connection broke (${error.message})`, fault ?? code, { fatal: true }));
    }
  }

  // -- resuming (rule 7) --------------------------------------------------------------------

  /** The link broke with `code`: new sockets, with backoff, until one resumes the session, the
   * service refuses (the session ends with its error), or `resumeTimeout` has passed. */
  async #resume(code: number, why: string): Promise<void> {
    const reconnect = this.#reconnect;
    if (reconnect === undefined || this.#resuming) return;
    this.#resuming = true;
    const deadline = Date.now() + this.#resumeTimeout;
    let delay = FIRST_BACKOFF_MS;
    while (this.closed === null && Date.now() < deadline) {
      const limit = Math.max(1, Math.min(this.#connectTimeout, deadline - Date.now()));
      try {
        await reconnect(this.#resumeFrame(), (ws, reply) => this.#resumed(ws, reply), limit);
        return;
      } catch (error) {
        if (error instanceof InndxError && refusal(error)) return this.#end(error);
        // not yet (nothing listening, a socket lost again, no reply in time): once more, later
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, LAST_BACKOFF_MS);
    }
    this.#end(new ConnectionClosed(
      `the connection broke (${why}) and the session was not resumed within ${this.#resumeTimeout} ms`, code, { fatal: true }));
  }

  #resumeFrame(): ResumeRequest {
    const frame: ResumeRequest = { resume: this.sessionId, resume_token: this.#token ?? "" };
    if (this.#lastReply !== undefined) frame.last_id = this.#lastReply;
    return frame;
  }

  /** The resume reply, read in the handler of the new socket's first frame: the socket becomes
   * the session's and the frames the server did not read go again, before any later frame. */
  #resumed(ws: WebSocket, reply: Reply): true | InndxError {
    if (reply.resumed !== true || typeof reply.resume_token !== "string") {
      const message = typeof reply.message === "string" ? reply.message : `not a resume reply: ${excerpt(JSON.stringify(reply))}`;
      return errorFor(reply.code, message, { fatal: true });
    }
    if (this.closed !== null) { // closed meanwhile: a close frame of ours ends it on the server too
      ws.close(1000);
      return true;
    }
    this.#token = reply.resume_token;
    this.#attach(ws);
    this.#resuming = false;
    this.resumes += 1;
    const floor = typeof reply.last_received === "number" ? reply.last_received : 0;
    for (const [id, text] of this.#texts) {
      if (id > floor) this.#send(text); // abandoned calls too: their place in the order (rule 5)
    }
    return true;
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
    this.#texts.clear();
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

/** A resume the service refused for good (401, 403 not this session's, 410 over, 400...), not one
 * that may succeed later (408, 429, a socket that failed: no code). */
function refusal(error: InndxError): boolean {
  return error.code !== null && error.code >= 400 && error.code < 500 && error.code !== 408 && error.code !== 429;
}

function asError(frame: Reply): InndxError {
  const message = typeof frame.message === "string" ? frame.message : JSON.stringify(frame);
  return errorFor(frame.code, message, { fatal: frame.type === "fatal", id: frame.id as Id | undefined });
}

export function excerpt(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
}
