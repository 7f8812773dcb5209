/** Frames from TypeScript arguments, and replies to TypeScript values: the thin mapping itself. */

import type {
  Cookie, Download, DownloadResponse, Duration, GotoRequest, OpenRequest, PdfRequest, ScreenshotRequest,
  ScrollRequest, StorageState, TakenState, UploadRequest, WaitForRequest,
} from "./generated/frames.js";
import { decodeBase64 } from "./results.js";
import type { DownloadedFile } from "./results.js";

export const WS_PATH = "/v1/sessions/ws";

/** The sessions endpoint for `url`: `http(s)` becomes `ws(s)`, a bare host or `/` gets the path. */
export function wsUrl(url: string): string {
  const parsed = new URL(url.includes("://") ? url : `ws://${url}`);
  const scheme = ({ "http:": "ws:", "https:": "wss:" } as Record<string, string | undefined>)[parsed.protocol];
  if (scheme !== undefined) parsed.protocol = scheme;
  if (parsed.pathname === "" || parsed.pathname === "/") parsed.pathname = WS_PATH;
  parsed.hash = "";
  return parsed.href;
}

/** The endpoint a resume goes to: `?session=<id>`, so that the socket takes no new session slot. */
export function resumeUrl(url: string, sessionId: string): string {
  const parsed = new URL(wsUrl(url));
  parsed.searchParams.append("session", sessionId);
  return parsed.href;
}

/** A duration for the wire: a string as given (`"20s"`), a number as milliseconds. */
export function duration(value: Duration | number): Duration {
  if (typeof value === "string") return value;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`not a duration in milliseconds: ${value}`);
  return `${value}ms`;
}

export type HeadersInit = Record<string, string> | Iterable<readonly [string, string]>;

/** Every action's own option: its `timeout` instead of the open frame's, for this action alone. */
export interface ActionOptions {
  /** `"500ms"`, `"1m30s"`, or milliseconds; at most the service's maximum. */
  timeout?: Duration | number;
}

/** Options of a goto: the goto frame's own fields (`body` as bytes or a UTF-8 string). */
export interface GotoOptions extends ActionOptions {
  method?: GotoRequest["method"];
  /** A record, or `[name, value]` pairs (repeats and order kept). */
  headers?: HeadersInit;
  body?: Uint8Array | string;
  cookies?: Cookie[];
  referrer?: string;
  /** `inndx` (default), `chrome`, `firefox`, `safari`, `random`, or the exact string to send. */
  user_agent?: string;
}

function pairs(headers: HeadersInit): [string, string][] {
  const items = Symbol.iterator in headers ? headers : Object.entries(headers);
  return Array.from(items as Iterable<readonly [string, string]>, ([name, value]) => [name, value]);
}

export function gotoFrame(url: string, options: GotoOptions = {}): GotoRequest {
  const frame: GotoRequest = { action: "goto", url };
  if (options.method !== undefined) frame.method = options.method;
  if (options.headers !== undefined) frame.headers = pairs(options.headers);
  if (options.body !== undefined) {
    const bytes = typeof options.body === "string" ? Buffer.from(options.body, "utf8") : Buffer.from(options.body);
    frame.body = bytes.toString("base64");
  }
  if (options.cookies !== undefined) frame.cookies = options.cookies;
  if (options.referrer !== undefined) frame.referrer = options.referrer;
  if (options.user_agent !== undefined) frame.user_agent = options.user_agent;
  if (options.timeout !== undefined) frame.timeout = duration(options.timeout);
  return frame;
}

/** The frame's own fields, less `action`, `id` and `timeout` (which `ActionOptions` gives). */
type Fields<F> = Omit<F, "action" | "id" | "timeout">;

/** What a wait_for waits for: exactly one of `selector` (with `state`), `text`, `url` (a glob),
 * `script` (a function body, truthy ends it) or `network_idle` (a duration, or milliseconds). */
export type WaitForOptions = Omit<Fields<WaitForRequest>, "network_idle"> & ActionOptions & {
  network_idle?: Duration | number;
};

/** Where to scroll: exactly one of `selector` (into view), `x` and/or `y` (CSS pixels), `to`. */
export type ScrollOptions = Fields<ScrollRequest> & ActionOptions;

/** A screenshot of the viewport (default), the whole page (`full_page`) or one element
 * (`selector`); `format` `png` (default), `jpeg` or `webp`, `quality` 0-100 for the latter two. */
export type ScreenshotOptions = Fields<ScreenshotRequest> & ActionOptions;

/** The print: `landscape`, `print_background`, `page_ranges` (`[1, "3-5"]`), `scale` 0.1-2. */
export type PdfOptions = Fields<PdfRequest> & ActionOptions;

/** One file of an upload: its `name` as the page will see it, its bytes (`content`: bytes, or a
 * string sent as UTF-8) and optionally its `mime_type`. */
export interface UploadFile {
  name: string;
  content: Uint8Array | string;
  mime_type?: string;
}

/** An upload frame's `files`: each file's bytes as base64 (none at all is the service's 400). */
export function uploadFiles(files: readonly UploadFile[]): UploadRequest["files"] {
  const entries = files.map(({ name, content, mime_type }) => {
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : Buffer.from(content);
    return mime_type === undefined
      ? { name, content: bytes.toString("base64") }
      : { name, mime_type, content: bytes.toString("base64") };
  });
  return entries as UploadRequest["files"];
}

/** `frame` with `options`' fields that are defined, `timeout` as a duration. */
export function actionFrame<F extends { action: string }>(frame: F, options: object = {}): F {
  const built: Record<string, unknown> = { ...frame };
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    built[key] = key === "timeout" || key === "network_idle" ? duration(value as Duration | number) : value;
  }
  return built as F;
}

/** The open frame's fields as `connect()` takes them: the schema's, `timeout` also in milliseconds. */
export type OpenOptions = Omit<OpenRequest, "timeout"> & {
  /** Bounds every navigation attempt and every action: `"20s"`, `"1m30s"`, or milliseconds. */
  timeout?: Duration | number;
  /** The browser's viewport: sends `client` in its object form. */
  viewport?: { width: number; height: number };
  /** The state to start from (what `storageState()` gave): sent as `storage_state`. */
  storageState?: StorageState | TakenState;
};

/** The open frame: exactly the fields given (undefined ones left to the server's defaults). */
export function openFrame(options: OpenOptions, extra: Record<string, unknown>): Record<string, unknown> {
  const { viewport, timeout, client, storageState, ...rest } = options;
  const frame: Record<string, unknown> = {};
  if (viewport !== undefined) {
    const kind = typeof client === "object" ? client.kind : (client ?? "standard");
    frame.client = { kind, viewport };
  } else if (client !== undefined) {
    frame.client = client;
  }
  if (timeout !== undefined) frame.timeout = duration(timeout);
  if (storageState !== undefined) frame.storage_state = storageState;
  for (const [key, value] of Object.entries({ ...rest, ...extra })) {
    if (value !== undefined) frame[key] = value;
  }
  return frame;
}

export function content(reply: { content?: string }): Buffer {
  return decodeBase64(reply.content);
}

export function screenshot(reply: { screenshot?: string | null }): Buffer | null {
  return reply.screenshot ? decodeBase64(reply.screenshot) : null;
}

export function pdf(reply: { pdf?: string }): Buffer {
  return decodeBase64(reply.pdf);
}

/** The `download` reply as a file: its listing's fields (`id` from `download_id`) and its bytes. */
export function download(reply: DownloadResponse): DownloadedFile {
  const { download_id, url, suggested_filename, mime_type, size, sha256 } = reply;
  return { id: download_id, url, suggested_filename, mime_type, size, sha256, content: decodeBase64(reply.content) };
}

/** The downloads any reply lists (browsers), oldest first; none: `[]`. */
export function downloads(reply: { downloads?: unknown }): Download[] {
  return Array.isArray(reply.downloads) ? (reply.downloads as Download[]) : [];
}
