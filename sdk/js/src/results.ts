/** Typed replies: what a goto answered, with headers as an ordered multi-map. */

import { InndxError } from "./errors.js";
import type { Download, GotoResponse, Id, ReceivedCookie, Redirect } from "./generated/frames.js";

/**
 * Response headers in received order, repeats kept apart; names compare case-insensitively.
 * `get(name)` is the first value (or null), `getAll(name)` every value in order, `items()` the
 * `[name, value]` pairs exactly as received.
 */
export class Headers implements Iterable<[string, string]> {
  readonly #pairs: ReadonlyArray<readonly [string, string]>;

  constructor(pairs: Iterable<readonly [string, string]> = []) {
    this.#pairs = Array.from(pairs, ([name, value]) => [String(name), String(value)] as const);
  }

  /** The first value of `name`, or null. */
  get(name: string): string | null {
    const wanted = name.toLowerCase();
    return this.#pairs.find(([n]) => n.toLowerCase() === wanted)?.[1] ?? null;
  }

  /** Every value of `name`, in received order. */
  getAll(name: string): string[] {
    const wanted = name.toLowerCase();
    return this.#pairs.filter(([n]) => n.toLowerCase() === wanted).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  /** The `[name, value]` pairs in received order. */
  items(): [string, string][] {
    return this.#pairs.map(([n, v]) => [n, v]);
  }

  /** The names in received order (repeats included). */
  keys(): string[] {
    return this.#pairs.map(([n]) => n);
  }

  get size(): number {
    return this.#pairs.length;
  }

  [Symbol.iterator](): Iterator<[string, string]> {
    return this.items()[Symbol.iterator]();
  }

  toJSON(): [string, string][] {
    return this.items();
  }
}

/** A download's bytes with what its listing said (the reply to `download`). */
export interface DownloadedFile extends Download {
  content: Buffer;
}

/** The reply to a goto: the final response of the navigation and every hop before it. */
export class GotoResult {
  /** The final URL after all redirects. */
  readonly url: string;
  readonly status_code: number;
  readonly headers: Headers;
  /** Every cookie a response of this navigation set, redirect hops included. */
  readonly cookies: ReceivedCookie[];
  readonly redirects: Redirect[];
  /** The raw bytes of the final response (empty when the server sent none). */
  readonly body: Buffer;
  /** The final response's media type without parameters, lower-case, or null. */
  readonly content_type: string | null;
  readonly id: Id | undefined;
  /** The reply frame exactly as received (body still base64). */
  readonly raw: GotoResponse;
  /** The files this goto downloaded (browsers; `download(id)` gives their bytes). */
  readonly downloads: Download[];

  constructor(frame: GotoResponse) {
    this.url = frame.url;
    this.status_code = frame.status_code;
    this.headers = new Headers(frame.headers ?? []);
    this.cookies = frame.cookies ?? [];
    this.redirects = frame.redirects ?? [];
    this.body = decodeBase64(frame.body);
    this.content_type = frame.content_type ?? null;
    this.id = frame.id;
    this.raw = frame;
    this.downloads = frame.downloads ?? [];
  }

  /** The body decoded as UTF-8 (undecodable bytes replaced). */
  get text(): string {
    return this.body.toString("utf8");
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Bytes of a base64 field; empty for null. Not base64 at all: `InndxError` (the server's fault). */
export function decodeBase64(value: string | null | undefined): Buffer {
  if (!value) return Buffer.alloc(0);
  if (typeof value !== "string" || value.length % 4 !== 0 || !BASE64.test(value)) {
    throw new InndxError(`the server sent a field that is not base64: ${JSON.stringify(String(value).slice(0, 40))}`);
  }
  return Buffer.from(value, "base64");
}
