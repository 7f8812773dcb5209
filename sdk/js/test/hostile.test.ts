/**
 * The client's own error paths, against a hostile WebSocket server of the test's own on 127.0.0.1
 * (ws's server): each test scripts what the "service" does after the open frame. Every wait is
 * bounded (the test's own timeout, and the client's connectTimeout / replyTimeout).
 */

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, describe, test } from "node:test";

import { WebSocket, WebSocketServer } from "ws";

import { CapacityError, ConnectionClosed, InndxError, NotFound, PolicyError, connect, type Session } from "inndx";

import { scaled } from "./support.js";

type Frame = Record<string, unknown>;
type Script = (socket: WebSocket, frame: Frame, request: IncomingMessage) => void;

/** A WebSocket server on 127.0.0.1 that answers the open frame, then runs `script` per frame. */
class Hostile {
  readonly http: Server;
  readonly wss: WebSocketServer;
  readonly received: Frame[] = [];
  readonly sockets = new Set<WebSocket>();
  answerOpen = true;

  constructor(private readonly script: Script) {
    this.http = createServer((_request, response) => response.writeHead(404).end());
    this.wss = new WebSocketServer({ server: this.http, maxPayload: 1024 * 1024 });
    this.wss.on("connection", (socket, request) => {
      this.sockets.add(socket);
      let opened = false;
      socket.on("message", (data) => {
        const frame = JSON.parse(data.toString()) as Frame;
        this.received.push(frame);
        if (!opened) {
          opened = true;
          if (this.answerOpen) socket.send(JSON.stringify({ session_id: "00000000-0000-4000-8000-000000000000" }));
          return;
        }
        this.script(socket, frame, request);
      });
    });
  }

  async start(): Promise<string> {
    this.http.listen(0, "127.0.0.1");
    await once(this.http, "listening");
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    this.http.close();
    await once(this.http, "close");
  }
}

const servers: Hostile[] = [];
const sessions: Session[] = [];

async function serve(script: Script, answerOpen = true): Promise<[Hostile, string]> {
  const server = new Hostile(script);
  server.answerOpen = answerOpen;
  servers.push(server);
  return [server, await server.start()];
}

async function open(url: string, options: Parameters<typeof connect>[2] = {}): Promise<Session> {
  const session = await connect(url, "hostile", { connectTimeout: scaled(5_000), replyTimeout: scaled(5_000), ...options });
  sessions.push(session);
  return session;
}

after(async () => {
  for (const session of sessions) await session.close();
  for (const server of servers) await server.stop();
});

const reply = (socket: WebSocket, frame: Frame, fields: Frame) => socket.send(JSON.stringify({ ...fields, id: frame.id }));

describe("a hostile server", { timeout: scaled(30_000) }, () => {
  test("sends the open frame and action frames as the schemas say, ids fresh integers", async () => {
    const [server, url] = await serve((socket, frame, request) => {
      assert.equal(request.headers["x-tenant-id"], "hostile");
      assert.equal(request.headers.authorization, "Bearer key-1");
      reply(socket, frame, { action: frame.action === "goto" ? "goto" : "clicked", url: "http://a.invalid/",
        status_code: 200, headers: [], cookies: [], body: null, redirects: [], content_type: null });
    });
    const session = await open(url, { apiKey: "key-1", client: "chrome", viewport: { width: 800, height: 600 },
      timeout: 1500, max_retries: 0, fields: { future_field: true } });
    const result = await session.goto("http://a.invalid/", { headers: { "X-A": "1" }, body: "é", method: "POST" });
    assert.deepEqual(result.body, Buffer.alloc(0));
    await session.click("#b");
    assert.deepEqual(server.received[0], {
      client: { kind: "chrome", viewport: { width: 800, height: 600 } }, timeout: "1500ms", max_retries: 0, future_field: true,
    });
    assert.deepEqual(server.received[1], {
      action: "goto", url: "http://a.invalid/", method: "POST", headers: [["X-A", "1"]], body: "w6k=", id: 1,
    });
    assert.deepEqual(server.received[2], { action: "click", selector: "#b", id: 2 });
  });

  test("a reply that is not JSON ends the session with a fatal error, every later call too", async () => {
    const [, url] = await serve((socket) => socket.send("<html>oops</html>"));
    const session = await open(url);
    await assert.rejects(session.content(), (error: InndxError) =>
      error.constructor === InndxError && error.code === null && error.fatal && /not JSON/.test(error.message));
    await assert.rejects(session.content(), /not JSON/);
  });

  test("a reply for an id no call is waiting for ends the session", async () => {
    const [, url] = await serve((socket, frame) => reply(socket, { id: Number(frame.id) + 100 }, { action: "content", content: "" }));
    const session = await open(url);
    await assert.rejects(session.content(), (error: InndxError) =>
      error.fatal && error.code === null && /no action in flight/.test(error.message));
    assert.ok(session.closed);
  });

  test("a binary frame ends the session", async () => {
    const [, url] = await serve((socket) => socket.send(Buffer.from([1, 2, 3])));
    const session = await open(url);
    await assert.rejects(session.content(), /binary frame/);
  });

  test("replies out of order are matched to their calls by id (pipelining)", async () => {
    const held: [WebSocket, Frame][] = [];
    const [, url] = await serve((socket, frame) => {
      held.push([socket, frame]);
      if (held.length < 3) return;
      for (const [s, f] of held.reverse()) reply(s, f, { action: "evaluated", result: f.script });
    });
    const session = await open(url);
    const results = await Promise.all(["a", "b", "c"].map((script) => session.evaluate(script)));
    assert.deepEqual(results, ["a", "b", "c"]);
  });

  test("an error without id answers the oldest call in flight; the session goes on", async () => {
    let n = 0;
    const [, url] = await serve((socket, frame) => {
      n += 1;
      if (n === 1) socket.send(JSON.stringify({ type: "error", message: "frame too big", code: 413 }));
      else reply(socket, frame, { action: "content", content: Buffer.from(`n${n}`).toString("base64") });
    });
    const session = await open(url);
    const [first, second] = await Promise.allSettled([session.content(), session.content()]);
    assert.equal(first.status, "rejected");
    assert.equal((first.reason as InndxError).code, 413);
    assert.equal((first.reason as InndxError).fatal, false);
    assert.deepEqual(second, { status: "fulfilled", value: Buffer.from("n2") });
  });

  test("error frames are typed by family, with their id", async () => {
    const codes = [404, 403, 429, 503, 422];
    const [, url] = await serve((socket, frame) => reply(socket, frame, { type: "error", message: "no", code: codes.shift() }));
    const session = await open(url);
    const errors = await Promise.allSettled(["#a", "#b", "#c", "#d", "#e"].map((selector) => session.click(selector)));
    const reasons = errors.map((outcome) => (outcome as PromiseRejectedResult).reason as InndxError);
    assert.deepEqual(reasons.map((e) => e.constructor), [NotFound, PolicyError, CapacityError, CapacityError, InndxError]);
    assert.deepEqual(reasons.map((e) => [e.code, e.id, e.fatal, e.message]),
      [[404, 1, false, "no"], [403, 2, false, "no"], [429, 3, false, "no"], [503, 4, false, "no"], [422, 5, false, "no"]]);
  });

  test("a fatal frame rejects every call in flight and every later call", async () => {
    const [, url] = await serve((socket, frame) => {
      if (frame.id === 2) socket.send(JSON.stringify({ type: "fatal", message: "browser lost", code: 503 }));
    });
    const session = await open(url);
    const calls = [session.content(), session.content(), session.content()];
    const outcomes = await Promise.allSettled(calls);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected");
      const error = (outcome as PromiseRejectedResult).reason as InndxError;
      assert.ok(error instanceof CapacityError && error.fatal && error.code === 503, String(error));
    }
    await assert.rejects(session.content(), CapacityError);
  });

  test("a connection dropped mid-action rejects the call with ConnectionClosed 1006", async () => {
    const [, url] = await serve((socket) => socket.terminate());
    const session = await open(url);
    const started = Date.now();
    await assert.rejects(session.goto("http://a.invalid/"), (error: InndxError) =>
      error instanceof ConnectionClosed && error.code === 1006 && error.fatal);
    assert.ok(Date.now() - started < scaled(5_000));
    await assert.rejects(session.content(), ConnectionClosed);
  });

  test("a server closing with 1011 mid-action gives that close code", async () => {
    const [, url] = await serve((socket) => socket.close(1011, "internal error"));
    const session = await open(url);
    await assert.rejects(session.content(), (error: InndxError) =>
      error instanceof ConnectionClosed && error.code === 1011 && /internal error/.test(error.message));
  });

  test("an open that is never answered fails within connectTimeout", async () => {
    const [, url] = await serve(() => undefined, false);
    const started = Date.now();
    await assert.rejects(connect(url, "hostile", { connectTimeout: 300 }), (error: InndxError) =>
      error.code === null && error.fatal && /no open reply .* within 300 ms/.test(error.message));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < scaled(3_000), `gave up after ${elapsed} ms`);
  });

  test("an upgrade that never completes fails within connectTimeout", async () => {
    const silent = createServer();
    const held: Socket[] = [];
    silent.on("upgrade", (_request, socket: Socket) => held.push(socket)); // never answers
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    try {
      const port = (silent.address() as AddressInfo).port;
      const started = Date.now();
      await assert.rejects(connect(`ws://127.0.0.1:${port}`, "hostile", { connectTimeout: 300 }), InndxError);
      assert.ok(Date.now() - started < scaled(3_000));
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  test("a refused upgrade is typed from its JSON body", async () => {
    const refusing = createServer();
    refusing.on("upgrade", (_request, socket: Socket) => {
      const body = JSON.stringify({ type: "fatal", message: "unknown tenant 'hostile'", code: 403 });
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n`
        + `Connection: close\r\n\r\n${body}`);
    });
    refusing.listen(0, "127.0.0.1");
    await once(refusing, "listening");
    try {
      const port = (refusing.address() as AddressInfo).port;
      await assert.rejects(connect(`http://127.0.0.1:${port}/`, "hostile", { connectTimeout: scaled(5_000) }),
        (error: InndxError) => error instanceof PolicyError && error.code === 403 && error.fatal
          && error.message === "unknown tenant 'hostile'");
    } finally {
      refusing.close();
    }
  });

  test("nothing listening: a fatal error, at once", async () => {
    const [server, url] = await serve(() => undefined);
    await server.stop();
    servers.splice(servers.indexOf(server), 1);
    await assert.rejects(connect(url, "hostile", { connectTimeout: scaled(5_000) }), (error: InndxError) =>
      error.fatal && /cannot connect/.test(error.message));
  });

  test("a frame over maxPayload ends the session with close code 1009", async () => {
    const [, url] = await serve((socket, frame) => reply(socket, frame, { action: "content", content: "A".repeat(4096) }));
    const session = await open(url, { maxPayload: 1024 });
    await assert.rejects(session.content(), (error: InndxError) =>
      error instanceof ConnectionClosed && error.code === 1009 && /[Mm]ax payload/.test(error.message));
  });

  test("a reply later than replyTimeout rejects that call only; the late reply is dropped", async () => {
    const [, url] = await serve((socket, frame) => {
      const delay = frame.script === "slow" ? 400 : 0;
      setTimeout(() => reply(socket, frame, { action: "evaluated", result: frame.script }), delay);
    });
    const session = await open(url, { replyTimeout: 100 });
    await assert.rejects(session.evaluate("slow"), (error: InndxError) =>
      error.code === null && !error.fatal && error.id === 1 && /no reply within 100 ms/.test(error.message));
    session.replyTimeout = scaled(5_000);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the late reply arrives meanwhile
    assert.equal(await session.evaluate("fast"), "fast");
    assert.equal(session.closed, null);
  });

  test("an idle session answers the server's pings (ws does it on its own)", async () => {
    let pongs = 0;
    const [server, url] = await serve((socket, frame) => reply(socket, frame, { action: "evaluated", result: pongs }));
    const session = await open(url);
    const [socket] = server.sockets;
    assert.ok(socket);
    socket.on("pong", () => { pongs += 1; });
    for (let i = 0; i < 5; i += 1) {
      socket.ping();
      await new Promise((resolve) => setTimeout(resolve, 50)); // the program is idle: no call in flight
    }
    const deadline = Date.now() + scaled(2_000);
    while (pongs < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(pongs, 5);
    assert.equal(await session.evaluate("x"), 5);
  });

  test("close() is idempotent and later calls reject with ConnectionClosed 1000", async () => {
    const [, url] = await serve((socket, frame) => {
      if (frame.action === "close") {
        reply(socket, frame, { action: "closed" });
        socket.close(1000);
      }
    });
    const session = await open(url);
    await session.close();
    await session.close();
    await assert.rejects(session.content(), (error: InndxError) => error instanceof ConnectionClosed && error.code === 1000);
  });

  test("close() against a server that never answers it ends within its grace period", async () => {
    const [, url] = await serve(() => undefined);
    const session = await open(url, { replyTimeout: 200 });
    const started = Date.now();
    await session.close();
    assert.ok(Date.now() - started < scaled(7_000));
    assert.ok(session.closed instanceof ConnectionClosed);
  });
});
