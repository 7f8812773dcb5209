/** What the tests share: the one timeout factor, the live service the e2e wrapper started, a
 * bounded poll, and a proxy whose connections a test can cut. */

import { once } from "node:events";
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from "node:net";

/** Milliseconds times INNDX_TEST_TIMEOUT_FACTOR (default 1), as every timeout of the Python suite. */
export function scaled(ms: number): number {
  return ms * Number(process.env.INNDX_TEST_TIMEOUT_FACTOR ?? "1");
}

/** A variable the e2e wrapper (tests/e2e/test_sdk_js.py) sets; its absence is a failure, never a skip. */
export function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: the live tests run from tests/e2e/test_sdk_js.py, which starts the service `
      + "and the test site and sets INNDX_SDK_* (or set them yourself)");
  }
  return value;
}

/** Poll `check` every 25 ms until it holds; past `limit` ms, fail naming `what`. */
export async function until(check: () => boolean | Promise<boolean>, limit: number, what: string): Promise<void> {
  const deadline = Date.now() + limit;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limit} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of the service, whose connections the test can cut: `cut()`
 * resets every connection through it at once (no close frame either way), as a mobile network
 * or a load balancer ends one. New connections go through as before. `url` is the service's URL
 * with the proxy's port.
 */
export class CuttableProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #target: URL;

  constructor(serviceUrl: string) {
    this.#target = new URL(serviceUrl);
    this.#server = createServer((client) => {
      const upstream = netConnect(Number(this.#target.port), this.#target.hostname);
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
        this.#sockets.add(from);
        from.on("error", () => to.destroy());
        from.on("close", () => {
          this.#sockets.delete(from);
          to.destroy();
        });
        from.pipe(to);
      }
    });
  }

  async start(): Promise<string> {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    const url = new URL(this.#target.href);
    url.hostname = "127.0.0.1";
    url.port = String((this.#server.address() as AddressInfo).port);
    return url.href;
  }

  /** Reset every connection through the proxy now. */
  cut(): void {
    for (const socket of this.#sockets) socket.resetAndDestroy();
  }

  async stop(): Promise<void> {
    this.cut();
    this.#server.close();
    await once(this.#server, "close");
  }
}
