/**
 * The client against the real service, for one client kind (INNDX_SDK_CLIENT): the same cases as
 * the Python client's tests/e2e/test_sdk.py. tests/e2e/test_sdk_js.py starts the service (under
 * gunicorn) and the test site on 127.0.0.1 and runs `npm test` once per client kind, with:
 *
 *   INNDX_SDK_SERVICE_URL  the service's ws:// URL
 *   INNDX_SDK_SITE_URL     the test site (tests/support/site.py), http://127.0.0.1:PORT
 *   INNDX_SDK_CLIENT       standard, chrome or firefox
 *   INNDX_SDK_PINGING_URL  (standard run only) a service that pings every second
 *
 * One session of that kind serves the whole file; the cases that need a session of their own
 * (a short timeout, a closed session, a refusal) open it on the standard client, in the standard
 * run only, as the Python suite's clientless cases do.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { WebSocket } from "ws";

import {
  ConnectionClosed, GotoResult, Headers, InndxError, NotFound, Timeout, connect, type ClientKind, type Session,
} from "inndx";

import { CuttableProxy, required, scaled, until } from "./support.js";

const SERVICE = required("INNDX_SDK_SERVICE_URL");
const SITE = required("INNDX_SDK_SITE_URL");
const CLIENT = required("INNDX_SDK_CLIENT") as ClientKind;
const BROWSER = CLIENT !== "standard";
const TENANT = "sdk-js";

const site = (path: string): string => new URL(path, SITE).href;

// tests/support/site.py COOKIES_SET: the Set-Cookie lines of /cookies/set, in order
const COOKIES_SET = [
  "a=1; Path=/; HttpOnly",
  "b=2; Path=/; Secure; SameSite=Strict",
  "c=3; Path=/cookies; Domain=127.0.0.1; Max-Age=3600",
  "d=4; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax",
  "e=5",
  "f=6; SameSite=None; Secure",
];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const open = (options: Parameters<typeof connect>[2] = {}, url = SERVICE): Promise<Session> =>
  connect(url, TENANT, { connectTimeout: scaled(40_000), replyTimeout: scaled(60_000), ...options });

describe(`the client against the service (${CLIENT})`, { timeout: scaled(150_000) }, () => {
  let s: Session;

  before(async () => {
    s = await open({ client: CLIENT, timeout: "20s", max_retries: 0 });
  });

  after(async () => {
    await s?.close();
  });

  test("a goto reply is typed", async () => {
    const target = site("/redirect/302?to=/cookies/set");
    const result = await s.goto(target);
    assert.ok(result instanceof GotoResult);
    assert.deepEqual([result.status_code, result.url, result.content_type], [200, site("/cookies/set"), "text/html"]);
    assert.deepEqual(result.redirects, [{ url: target, location: site("/cookies/set"), side: "server", type: "temporary" }]);
    const cookies = new Map(result.cookies.map((cookie) => [cookie.name, cookie]));
    for (const name of ["a", "b", "c", "d", "e", "f", "hop302"]) assert.ok(cookies.has(name), `cookie ${name}`);
    assert.equal(cookies.get("a")?.http_only, true);
    assert.equal(cookies.get("b")?.same_site, "Strict");
    assert.ok(cookies.get("d")?.expires?.startsWith("2037-10-21"));
    assert.ok(result.headers instanceof Headers);
    assert.deepEqual(result.headers.getAll("set-cookie"), COOKIES_SET);
    assert.equal(result.headers.get("Content-Type"), result.headers.get("content-type"));
    assert.deepEqual(result.headers.items(), result.raw.headers);
    assert.deepEqual(result.body, Buffer.from(result.raw.body ?? "", "base64"));
    assert.ok(result.text.includes("<title>"));
    assert.equal(typeof result.id, "number");
    assert.equal(result.id, result.raw.id);
  });

  test("goto options, and bodies as bytes", async () => {
    const image = await s.goto(site("/image.png"));
    assert.equal(image.content_type, "image/png");
    assert.deepEqual(image.body.subarray(0, 8), PNG_SIGNATURE);
    const binary = await s.goto(site("/binary"));
    assert.deepEqual(binary.body, Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    const repeated = await s.goto(site("/headers/repeated"));
    assert.deepEqual(repeated.headers.getAll("X-Multi"), CLIENT === "firefox" ? ["one, two"] : ["one", "two"]);
    const posted = await s.goto(site("/echo"), {
      method: "POST", headers: { "X-Sdk": "yes" }, body: Buffer.concat([Buffer.from([0x00, 0xff]), Buffer.from("payload")]),
      cookies: [{ name: "jar", value: "1", domain: "127.0.0.1", path: "/" }], user_agent: "sdk-test/1",
    });
    const echo = JSON.parse(posted.text) as { method: string; headers: [string, string][]; body_base64: string };
    const sent = new Map(echo.headers.map(([name, value]) => [name.toLowerCase(), value]));
    assert.equal(echo.method, "POST");
    assert.deepEqual(Buffer.from(echo.body_base64, "base64"), Buffer.from("\u0000\u00ffpayload", "latin1"));
    assert.equal(sent.get("x-sdk"), "yes");
    assert.equal(sent.get("user-agent"), "sdk-test/1");
    assert.match(sent.get("cookie") ?? "", /jar=1/);
  });

  if (BROWSER) {
    test("browser actions: fill, click, evaluate, content, screenshot", async () => {
      await s.goto(site("/form"));
      assert.equal(await s.fill("#name", "inndx"), undefined);
      assert.equal(await s.click("#counter"), undefined);
      const texts = await s.evaluate<string[]>("return ['result', 'counter'].map((id) => document.getElementById(id).textContent)");
      assert.deepEqual(texts, ["inndx", "1"]);
      assert.equal(await s.evaluate("return new Promise((resolve) => setTimeout(() => resolve({n: 1}), 10))").then(JSON.stringify), '{"n":1}');
      assert.ok((await s.content()).toString("utf8").startsWith("<!DOCTYPE html>"));
      const png = await s.screenshot();
      assert.ok(png !== null);
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
    });
  }

  if (BROWSER) {
    test("the new actions: waits, keys, hover, select, scroll, pdf, screenshot options", async () => {
      await s.goto(site("/actions/delayed?ms=300"));
      const elapsed = await s.waitFor("#late", { state: "attached" });
      assert.ok(Number.isInteger(elapsed) && elapsed >= 0 && elapsed < 10_000, String(elapsed));
      assert.equal(typeof await s.waitFor({ url: "*step=2" }), "number");
      assert.equal(typeof await s.waitFor({ script: "return document.getElementById('going').style.display === 'none'" }), "number");
      await assert.rejects(s.waitFor({ text: "never written" }, { timeout: 500 }), (error: InndxError) =>
        error instanceof Timeout && error.code === 504 && !error.fatal);
      await s.goto(site("/actions/input"));
      await s.fill("#k", "ab");
      assert.equal(await s.press("Backspace", { selector: "#k" }), undefined);
      assert.equal(await s.hover("#menu"), undefined);
      assert.equal(await s.select("#many", ["c"]), undefined);
      const seen = await s.evaluate("return [document.querySelector('#k').value, document.querySelector('#many').value, hovers]");
      assert.deepEqual(seen, ["a", "c", 1]);
      await assert.rejects(s.select("#one", ["z"]), NotFound);
      await s.goto(site("/actions/lazy"));
      const bottom = await s.scroll({ to: "bottom" });
      assert.ok(bottom.x === 0 && bottom.y > 1000, JSON.stringify(bottom));
      assert.deepEqual(await s.scroll({ y: 150 }), { x: 0, y: 150 });
      assert.equal((await s.scroll("#item-1")).y, 0);
      await s.goto(site("/actions/print"));
      const pdf = await s.pdf({ landscape: true, print_background: true, page_ranges: [1, "2-3"], scale: 1, timeout: "20s" });
      assert.equal(pdf.subarray(0, 5).toString("latin1"), "%PDF-");
      const jpeg = await s.screenshot({ full_page: true, format: "jpeg", quality: 50 });
      assert.deepEqual(jpeg?.subarray(0, 2), Buffer.from([0xff, 0xd8]));
      const box = await s.screenshot({ selector: "#box", timeout: 10_000 });
      assert.deepEqual(box?.subarray(0, 8), PNG_SIGNATURE);
    });
  } else {
    test("the page actions answer 501 on the standard client", async () => {
      await s.goto(site("/actions/input"));
      const calls = [() => s.waitFor("#k"), () => s.press("Enter"), () => s.hover("#menu"), () => s.select("#one", ["a"]),
        () => s.scroll({ to: "top" }), () => s.pdf()];
      for (const call of calls) await assert.rejects(call(), (error: InndxError) => error.code === 501 && !error.fatal);
    });
  }

  test("har: the archive of what came since the last har", async () => {
    await s.har();
    const target = site(`/redirect/302?to=/html&js-har=${CLIENT}`);
    await s.goto(target);
    const archive = await s.har();
    assert.equal(archive.log.version, "1.2");
    const entries = archive.log.entries.filter((entry) => entry.request.url === target);
    assert.deepEqual(entries.map((entry) => entry.response.status), [302]);
    assert.deepEqual((await s.har({ timeout: "5s" })).log.entries.filter((entry) => entry.request.url === target), []);
  });

  test("cookies, setCookies, clearCookies, storageState", async () => {
    await s.clearCookies();
    await s.goto(site("/actions/login"));
    const cookies = await s.cookies();
    assert.deepEqual(cookies.map((cookie) => cookie.name).sort(), ["pref", "session"]);
    assert.equal(cookies.find((cookie) => cookie.name === "session")?.value, "ok");
    const state = await s.storageState();
    assert.deepEqual(state.origins, BROWSER ? [{ origin: new URL(SITE).origin, local_storage: [["theme", "dark"]] }] : []);
    assert.deepEqual(state.cookies.map((cookie) => cookie.name).sort(), ["pref", "session"]);
    assert.equal(await s.clearCookies(), undefined);
    assert.deepEqual(await s.cookies(), []);
    assert.equal(await s.setCookies(state.cookies.filter((cookie) => cookie.name === "session")), undefined);
    assert.deepEqual((await s.cookies()).map((cookie) => cookie.name), ["session"]);
    await s.clearCookies({ timeout: "5s" });
  });

  test("errors are typed and the session goes on", async () => {
    await s.goto(site("/form"));
    if (BROWSER) {
      await assert.rejects(s.click("#missing"), (error: InndxError) =>
        error instanceof NotFound && error.code === 404 && !error.fatal && error.message.includes("#missing"));
      await assert.rejects(s.evaluate("throw new Error('boom')"), (error: InndxError) =>
        error.constructor === InndxError && error.code === 422 && error.message.includes("boom"));
    } else {
      await assert.rejects(s.click("#name"), (error: InndxError) => error.constructor === InndxError && error.code === 501);
      assert.equal(await s.screenshot(), null);
      assert.ok((await s.content()).toString("utf8").includes('id="name"'));
    }
    await assert.rejects(s.goto("ftp://example.invalid/"), (error: InndxError) =>
      error.code === 400 && typeof error.id === "number" && !error.fatal);
    assert.equal((await s.goto(site("/html"))).status_code, 200);
  });

  test("pipelining: calls in flight together, each reply matched to its call", async () => {
    const calls = [
      s.goto(site("/html?title=one")), s.goto("javascript:alert(1)"), s.goto(site("/status/404")), s.content(),
    ] as const;
    const [first, broken, last, content] = await Promise.allSettled(calls);
    assert.ok(first.status === "fulfilled" && broken.status === "rejected" && last.status === "fulfilled"
      && content.status === "fulfilled");
    assert.equal(first.value.url, site("/html?title=one"));
    const error = broken.reason as InndxError;
    assert.ok(error instanceof InndxError && error.code === 400 && error.id === Number(first.value.id) + 1);
    assert.equal(last.value.status_code, 404);
    assert.equal(last.value.id, Number(first.value.id) + 2);
    if (!BROWSER) assert.equal(content.value.toString("utf8"), "status 404\n");
  });

  if (CLIENT === "standard") {
    test("a goto past the session's timeout is a Timeout; close; later calls are ConnectionClosed", async () => {
      const short = await open({ timeout: 1000, max_retries: 0 });
      await assert.rejects(short.goto(site("/slow?seconds=5")), (error: InndxError) => error instanceof Timeout && error.code === 504);
      assert.equal((await short.goto(site("/html"))).status_code, 200);
      await short.close();
      await assert.rejects(short.goto(site("/html")), (error: InndxError) =>
        error instanceof ConnectionClosed && error.code === 1000 && error.fatal);
      await short.close(); // idempotent
    });

    test("a session opened with storageState starts with its cookies", async () => {
      const state = { cookies: [{ name: "session", value: "ok", domain: new URL(SITE).hostname, path: "/" }], origins: [] };
      const logged = await open({ storageState: state, max_retries: 0 });
      try {
        assert.match((await logged.goto(site("/actions/account"))).text, /Welcome back/);
        assert.deepEqual((await logged.cookies()).map((cookie) => cookie.name), ["session"]);
      } finally {
        await logged.close();
      }
    });

    test("refusals are typed and fatal: a malformed tenant, an invalid open frame", async () => {
      await assert.rejects(connect(SERVICE, "not a tenant!", { connectTimeout: scaled(10_000) }), (error: InndxError) =>
        error.constructor === InndxError && error.code === 400 && error.fatal && /tenant/i.test(error.message));
      await assert.rejects(open({ max_redirects: 99 }), (error: InndxError) =>
        error.code === 400 && error.fatal && error.message.includes("max_redirects"));
      await assert.rejects(open({ fields: { no_such_field: 1 } }), (error: InndxError) =>
        error.code === 400 && error.fatal && error.message.includes("no_such_field"));
    });

    test("an idle session answers the service's pings and stays open", async () => {
      const pinging = required("INNDX_SDK_PINGING_URL"); // pings every second, cuts a client after one unanswered
      const idle = await open({ timeout: "20s" }, pinging);
      // control: a socket that does not answer pings (ws's autoPong off) is cut meanwhile
      const mute = new WebSocket(pinging, { headers: { "X-Tenant-Id": TENANT }, autoPong: false });
      mute.on("error", () => undefined);
      mute.on("open", () => mute.send("{}"));
      try {
        assert.equal((await idle.goto(site("/html"))).status_code, 200);
        await new Promise((resolve) => setTimeout(resolve, 5_000)); // five pings while no call is in flight
        assert.equal((await idle.goto(site("/html"))).status_code, 200);
        assert.equal(idle.closed, null);
        assert.equal(mute.readyState, WebSocket.CLOSED, "the service has cut the socket that answered no ping");
      } finally {
        mute.terminate();
        await idle.close();
      }
    });

    test("a client too busy to answer pings is cut by the service's ping timeout and resumes", async () => {
      const pinging = required("INNDX_SDK_PINGING_URL"); // pings every second, cuts a client after one unanswered
      const busy = await open({ timeout: "20s", resume: true }, pinging);
      try {
        assert.equal((await busy.goto(site("/html?title=before"))).status_code, 200);
        // the program blocks its own thread (a long synchronous computation): no ping is answered
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3_500);
        // the service's close (1008 "Ping/Pong timeout") is read now: the session resumes
        assert.equal((await busy.goto(site("/html?title=after"))).status_code, 200);
        assert.equal(busy.resumes, 1);
        assert.equal(busy.closed, null);
      } finally {
        await busy.close();
      }
    });
  }
});

describe(`resuming a session under a running script (${CLIENT})`, { timeout: scaled(150_000) }, () => {
  const proxy = new CuttableProxy(SERVICE);

  after(async () => {
    await proxy.stop();
  });

  test("the TCP connection is cut mid-goto; the script finishes without noticing, each goto ran once", async () => {
    const url = await proxy.start();
    const mark = `js-${process.pid}-${Date.now()}`;
    const slow = (n: number) => site(`/slow?seconds=0.5&key=${mark}-${n}`);
    const count = async (n: number): Promise<number> =>
      ((await (await fetch(site(`/counter?key=${mark}-${n}`))).json()) as { count: number }).count;
    const session = await open({ client: CLIENT, timeout: "20s", max_retries: 0, resume: true }, url);
    try {
      assert.equal(typeof session.resumeToken, "string");
      const script = (async () => {
        const results: GotoResult[] = [];
        for (let n = 0; n < 6; n += 1) results.push(await session.goto(slow(n)));
        return { results, content: await session.content() };
      })();
      await until(async () => (await count(2)) > 0, scaled(30_000), "the third goto to start");
      proxy.cut(); // the third goto is running: its reply comes on the new socket
      const { results, content } = await script;
      assert.equal(session.resumes, 1);
      assert.equal(session.closed, null);
      assert.deepEqual(results.map((result) => result.url), [0, 1, 2, 3, 4, 5].map(slow));
      assert.deepEqual(results.map((result) => result.status_code), [200, 200, 200, 200, 200, 200]);
      for (let n = 0; n < 6; n += 1) assert.equal(await count(n), 1, `goto ${n} ran once`);
      assert.match(content.toString("utf8"), /Slow page/);
    } finally {
      await session.close();
    }
  });
});
