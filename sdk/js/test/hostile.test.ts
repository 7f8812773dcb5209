/**
 * The client's own error paths, against a hostile WebSocket server of the test's own on 127.0.0.1
 * (ws's server, hostile-server.ts): each test scripts what the "service" does after the open frame
 * (and, for resuming, what it answers a resume frame). Every wait is bounded (the test's own
 * timeout, and the client's connectTimeout / replyTimeout / resumeTimeout).
 */

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, describe, test } from "node:test";

import type { WebSocket } from "ws";

import { CapacityError, ConnectionClosed, InndxError, NotFound, PolicyError, connect, type Session } from "inndx";

import { Hostile, SESSION_ID, TOKENS, reply, type Frame, type Script } from "./hostile-server.js";
import { scaled } from "./support.js";

const servers: Hostile[] = [];
const sessions: Session[] = [];

async function serve(script: Script, answerOpen = true, first?: Script): Promise<[Hostile, string]> {
  const server = new Hostile(script, first);
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

  test("the new actions' frames are as the schemas say; their replies typed", async () => {
    const replies: Record<string, Frame> = {
      wait_for: { action: "waited", elapsed_ms: 12 }, scroll: { action: "scrolled", x: 0, y: 40 },
      pdf: { action: "pdf", pdf: Buffer.from("%PDF-1.7").toString("base64") },
      screenshot: { action: "screenshot", screenshot: Buffer.from("jpeg").toString("base64") },
      cookies: { action: "cookies", cookies: [{ name: "a", value: "1" }] },
      storage_state: { action: "storage_state", state: { cookies: [], origins: [{ origin: "http://a.invalid", local_storage: [["k", "v"]] }] } },
    };
    const [server, url] = await serve((socket, frame) => reply(socket, frame, replies[String(frame.action)] ?? { action: "done" }));
    const session = await open(url, { storageState: { cookies: [{ name: "s", value: "1", domain: "a.invalid" }], origins: [] } });
    assert.equal(await session.waitFor("#a", { state: "hidden", timeout: 1500 }), 12);
    await session.waitFor({ network_idle: 500 });
    await session.press("Control+A", { selector: "#k" });
    await session.hover("#m");
    await session.select("#s", ["a", "b"], { timeout: "2s" });
    assert.deepEqual(await session.scroll("#item"), { x: 0, y: 40 });
    await session.scroll({ to: "bottom" });
    assert.deepEqual(await session.pdf({ landscape: true, page_ranges: [1, "3-5"] }), Buffer.from("%PDF-1.7"));
    assert.deepEqual(await session.screenshot({ format: "jpeg", quality: 50, full_page: true }), Buffer.from("jpeg"));
    assert.deepEqual(await session.cookies(), [{ name: "a", value: "1" }]);
    await session.setCookies([{ name: "b", value: "2", domain: ".a.invalid" }]);
    await session.clearCookies();
    assert.deepEqual((await session.storageState()).origins, [{ origin: "http://a.invalid", local_storage: [["k", "v"]] }]);
    await session.upload("#f", [{ name: "a.txt", content: "é", mime_type: "text/plain" }, { name: "b", content: new Uint8Array([0, 255]) }]);
    assert.deepEqual(server.received, [
      { storage_state: { cookies: [{ name: "s", value: "1", domain: "a.invalid" }], origins: [] } },
      { action: "wait_for", selector: "#a", state: "hidden", timeout: "1500ms", id: 1 },
      { action: "wait_for", network_idle: "500ms", id: 2 },
      { action: "press", keys: "Control+A", selector: "#k", id: 3 },
      { action: "hover", selector: "#m", id: 4 },
      { action: "select", selector: "#s", values: ["a", "b"], timeout: "2s", id: 5 },
      { action: "scroll", selector: "#item", id: 6 },
      { action: "scroll", to: "bottom", id: 7 },
      { action: "pdf", landscape: true, page_ranges: [1, "3-5"], id: 8 },
      { action: "screenshot", format: "jpeg", quality: 50, full_page: true, id: 9 },
      { action: "cookies", id: 10 },
      { action: "set_cookies", cookies: [{ name: "b", value: "2", domain: ".a.invalid" }], id: 11 },
      { action: "clear_cookies", id: 12 },
      { action: "storage_state", id: 13 },
      { action: "upload", selector: "#f", files: [{ name: "a.txt", mime_type: "text/plain", content: "w6k=" }, { name: "b", content: "AP8=" }], id: 14 },
    ]);
  });

  test("downloads: listed by any reply, kept on the session, their bytes by download", async () => {
    const item = { id: "d1", url: "http://a.invalid/f.zip", suggested_filename: "f.zip", mime_type: "application/zip",
      size: 3, sha256: "a".repeat(64) };
    const replies: Record<string, Frame> = {
      click: { action: "clicked", downloads: [item] },
      goto: { action: "goto", url: "http://a.invalid/", status_code: 200, headers: [], cookies: [], body: null,
        redirects: [], content_type: null, downloads: [{ ...item, id: "d2" }] },
      download: { action: "download", download_id: "d1", url: item.url, suggested_filename: "f.zip",
        mime_type: "application/zip", size: 3, sha256: item.sha256, content: Buffer.from("abc").toString("base64") },
    };
    const [server, url] = await serve((socket, frame) => reply(socket, frame, replies[String(frame.action)] ?? { action: "done" }));
    const session = await open(url);
    await session.click("#dl");
    assert.deepEqual((await session.goto("http://a.invalid/")).downloads.map((d) => d.id), ["d2"]);
    assert.deepEqual(session.downloads.map((d) => d.id), ["d1", "d2"]);
    assert.deepEqual(await session.download("d1", { timeout: "5s" }), { ...item, content: Buffer.from("abc") });
    assert.deepEqual(server.received.slice(1), [
      { action: "click", selector: "#dl", id: 1 },
      { action: "goto", url: "http://a.invalid/", id: 2 },
      { action: "download", download_id: "d1", timeout: "5s", id: 3 },
    ]);
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

describe("a hostile server and a resumable session", { timeout: scaled(30_000) }, () => {
  const opened = (socket: WebSocket) => socket.send(JSON.stringify({ session_id: SESSION_ID, resume_token: TOKENS[0] }));
  const resumed = (socket: WebSocket, lastReceived: number | null) => socket.send(JSON.stringify({
    session_id: SESSION_ID, resumed: true, resume_token: TOKENS[1], last_received: lastReceived,
  }));
  const answer = (socket: WebSocket, frame: Frame) => {
    if (frame.action === "close") {
      reply(socket, frame, { action: "closed" });
      socket.close(1000);
    } else {
      reply(socket, frame, { action: "evaluated", result: frame.script });
    }
  };
  const following = (server: Hostile, frame: Frame) => server.received.slice(server.received.indexOf(frame) + 1);

  test("a drop mid-pipeline: last_id sent, only the frames after last_received sent again, replays matched by id", async () => {
    let second: WebSocket | undefined;
    const firsts: [Frame, IncomingMessage][] = [];
    const [server, url] = await serve((socket, frame) => {
      if (socket === second || frame.id === 1) answer(socket, frame);
      else if (frame.id === 3) socket.terminate(); // read 2 and 3, ran 2: its reply is lost with the link
    }, true, (socket, frame, request) => {
      firsts.push([frame, request]);
      if (frame.resume === undefined) return opened(socket);
      second = socket;
      resumed(socket, 2);
      reply(socket, { id: 1 }, { action: "evaluated", result: "a again" }); // taken already: dropped
      reply(socket, { id: 2 }, { action: "evaluated", result: "b" });
    });
    const session = await open(url, { resume: true });
    assert.equal(session.resumeToken, TOKENS[0]);
    assert.equal(await session.evaluate("a"), "a");
    assert.deepEqual(await Promise.all([session.evaluate("b"), session.evaluate("c")]), ["b", "c"]);
    assert.deepEqual([session.resumes, session.closed, session.resumeToken], [1, null, TOKENS[1]]);
    const [resumeFrame, request] = firsts[1] ?? assert.fail("no resume");
    assert.deepEqual(resumeFrame, { resume: SESSION_ID, resume_token: TOKENS[0], last_id: 1 });
    assert.equal(new URL(request.url ?? "", "ws://x").searchParams.get("session"), SESSION_ID);
    assert.equal(request.headers["x-tenant-id"], "hostile");
    assert.deepEqual(following(server, resumeFrame), [{ action: "evaluate", script: "c", id: 3 }]);
    assert.equal(await session.evaluate("d"), "d"); // the session goes on, on the new socket
  });

  /** A server that closes the first socket with `code` after reading the first action; the
   * resuming socket gets the resume reply (`last_received` 1), the kept reply to id 1, then answers. */
  const cutOnce = async (code: number, reason: string) => {
    let second: WebSocket | undefined;
    return serve((socket, frame) => {
      if (socket === second) answer(socket, frame);
      else socket.close(code, reason);
    }, true, (socket, frame) => {
      if (frame.resume === undefined) return opened(socket);
      second = socket;
      resumed(socket, 1);
      reply(socket, { id: 1 }, { action: "evaluated", result: "ran once" });
    });
  };

  test("close 1008 Ping/Pong timeout (the server's ping timeout): resumed, the call answered once", async () => {
    const [server, url] = await cutOnce(1008, "Ping/Pong timeout");
    const session = await open(url, { resume: true });
    assert.equal(await session.evaluate("x"), "ran once");
    assert.equal(session.resumes, 1);
    assert.equal(server.received.filter((frame) => frame.resume !== undefined).length, 1);
  });

  test("any other 1008 (a refusal) ends the session, no resume", async () => {
    const [server, url] = await serve((socket) => socket.close(1008, "policy violation"), true, (socket, frame) => {
      if (frame.resume === undefined) return opened(socket);
      resumed(socket, 1);
    });
    const session = await open(url, { resume: true });
    await assert.rejects(session.evaluate("x"), (error: unknown) => error instanceof ConnectionClosed && error.code === 1008);
    assert.equal(session.resumes, 0);
    assert.equal(server.received.filter((frame) => frame.resume !== undefined).length, 0);
  });

  test("close 1012: resumed; the reply the server kept settles its call, nothing runs twice", async () => {
    const [server, url] = await cutOnce(1012, "service restart");
    const session = await open(url, { resume: true });
    assert.equal(await session.evaluate("x"), "ran once");
    const resumeFrame = server.received.find((frame) => frame.resume !== undefined) ?? assert.fail("no resume");
    assert.deepEqual(resumeFrame, { resume: SESSION_ID, resume_token: TOKENS[0] }); // no reply in yet: no last_id
    assert.equal(await session.evaluate("y"), "y");
    assert.deepEqual(following(server, resumeFrame), [{ action: "evaluate", script: "y", id: 2 }]);
  });

  test("fatal 503 resumable then close 1012 (a restart hands the session over): resumed, the call answered once", async () => {
    let second: WebSocket | undefined;
    const [server, url] = await serve((socket, frame) => {
      if (socket === second) return answer(socket, frame);
      socket.send(JSON.stringify({ type: "fatal", message: "the server is restarting", code: 503, resumable: true }));
      socket.close(1012, "service restart");
    }, true, (socket, frame) => {
      if (frame.resume === undefined) return opened(socket);
      second = socket;
      resumed(socket, 1);
      reply(socket, { id: 1 }, { action: "evaluated", result: "ran once, elsewhere" });
    });
    const session = await open(url, { resume: true });
    assert.equal(await session.evaluate("x"), "ran once, elsewhere");
    assert.deepEqual([session.resumes, session.closed], [1, null]);
    assert.equal(server.received.filter((frame) => frame.resume !== undefined).length, 1);
    assert.equal(await session.evaluate("y"), "y");
  });

  test("fatal 503 resumable without resuming: it ends the session as any fatal frame", async () => {
    const [, url] = await serve((socket) => {
      socket.send(JSON.stringify({ type: "fatal", message: "the server is restarting", code: 503, resumable: true }));
      socket.close(1012, "service restart");
    });
    const session = await open(url);
    await assert.rejects(session.evaluate("x"), (error: InndxError) => error.code === 503 && error.fatal);
  });

  for (const [code, family] of [[410, InndxError], [403, PolicyError]] as const) {
    test(`a resume refused with ${code}: the calls in flight and every later call reject with it, no retry`, async () => {
      const message = code === 410 ? "the session has ended" : "no such session";
      const [server, url] = await serve((socket) => socket.terminate(), true, (socket, frame) => {
        if (frame.resume === undefined) return opened(socket);
        socket.send(JSON.stringify({ type: "fatal", message, code }));
        socket.close(1008);
      });
      const session = await open(url, { resume: true });
      const refused = (error: InndxError) =>
        Object.getPrototypeOf(error) === family.prototype && error.code === code && error.fatal && error.message === message;
      await assert.rejects(session.goto("http://a.invalid/"), refused);
      await assert.rejects(session.content(), refused);
      assert.equal(session.resumes, 0);
      assert.equal(server.received.filter((frame) => frame.resume !== undefined).length, 1);
    });
  }

  test("a resume never answered: the session ends within resumeTimeout with the drop's ConnectionClosed", async () => {
    const [, url] = await serve((socket) => socket.terminate(), true, (socket, frame) => {
      if (frame.resume === undefined) opened(socket);
    });
    const session = await open(url, { resume: true, resumeTimeout: 300 });
    const started = Date.now();
    await assert.rejects(session.content(), (error: InndxError) =>
      error instanceof ConnectionClosed && error.code === 1006 && error.fatal && /not resumed within 300 ms/.test(error.message));
    assert.ok(Date.now() - started < scaled(3_000));
  });
});
