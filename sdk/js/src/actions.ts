/**
 * Every action, written once: its frame from TypeScript arguments, and how its reply becomes a
 * value. `Session` (session.ts) says what running a frame means (`run`: send it with a fresh
 * `id`, resolve to its reply frame), as the Python client's `Actions` does with `_run`.
 *
 * Every method takes an optional last `{timeout}` (a duration such as `"10s"`, or milliseconds):
 * that action's own timeout instead of the open frame's.
 */

import * as frames from "./frames.js";
import type {
  ActionOptions, GotoOptions, PdfOptions, ScreenshotOptions, ScrollOptions, UploadFile, WaitForOptions,
} from "./frames.js";
import type {
  ClearCookiesRequest, ClickRequest, ContentRequest, ContentResponse, CookiesRequest, CookiesResponse,
  DownloadRequest, DownloadResponse,
  EvaluateRequest, EvaluateResponse, FillRequest, GotoResponse, HarRequest, HarResponse, HoverRequest, PdfRequest,
  PdfResponse,
  PressRequest, ReceivedCookie, ScreenshotRequest, ScreenshotResponse, ScrollRequest, ScrollResponse,
  SelectRequest, SetCookiesRequest, StateCookie, StorageStateRequest, StorageStateResponse, TakenState,
  UploadRequest, WaitForRequest, WaitForResponse,
} from "./generated/frames.js";
import { GotoResult } from "./results.js";
import type { DownloadedFile } from "./results.js";

/** A frame the server sent, as parsed. */
export type Reply = Record<string, unknown>;

/** Where a scroll left the page: its scroll position in CSS pixels. */
export interface ScrollPosition {
  x: number;
  y: number;
}

export abstract class Actions {
  /** Send `frame` (an `id` is added) and resolve to its reply frame; an error frame rejects. */
  protected abstract run(frame: object): Promise<Reply>;

  /** Navigate to `url`; the final response, its hops and cookies. */
  async goto(url: string, options: GotoOptions = {}): Promise<GotoResult> {
    return new GotoResult((await this.run(frames.gotoFrame(url, options))) as unknown as GotoResponse);
  }

  /** Click the first element matching the CSS `selector` (waits for it; 404 if none). */
  async click(selector: string, options: ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<ClickRequest>({ action: "click", selector }, options));
  }

  /** Clear the field matching `selector` and type `value` (a select: pick that option). */
  async fill(selector: string, value: string, options: ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<FillRequest>({ action: "fill", selector, value }, options));
  }

  /** The page as the session sees it now (the live DOM for browsers), as bytes. */
  async content(options: ActionOptions = {}): Promise<Buffer> {
    const reply = await this.run(frames.actionFrame<ContentRequest>({ action: "content" }, options));
    return frames.content(reply as unknown as ContentResponse);
  }

  /** Run `script` as a function body in the page; its JSON result (promises awaited). */
  async evaluate<T = unknown>(script: string, options: ActionOptions = {}): Promise<T> {
    const reply = await this.run(frames.actionFrame<EvaluateRequest>({ action: "evaluate", script }, options));
    return (reply as unknown as EvaluateResponse).result as T;
  }

  /**
   * An image of the viewport, of the whole page (`full_page`) or of one element (`selector`), as
   * bytes: PNG, or `format` `"jpeg"` / `"webp"` at `quality` 0-100. Null when the service sent
   * none (the standard client).
   */
  async screenshot(options: ScreenshotOptions = {}): Promise<Buffer | null> {
    const reply = await this.run(frames.actionFrame<ScreenshotRequest>({ action: "screenshot" }, options));
    return frames.screenshot(reply as unknown as ScreenshotResponse);
  }

  /** The page printed to PDF by the browser, as bytes; `page_ranges` such as `[1, "3-5"]`. */
  async pdf(options: PdfOptions = {}): Promise<Buffer> {
    const reply = await this.run(frames.actionFrame<PdfRequest>({ action: "pdf" }, options));
    return frames.pdf(reply as unknown as PdfResponse);
  }

  /**
   * Wait until one thing holds: a `selector` (a string, or `{selector}`) reaches `state`
   * (`attached`, `visible` (default) or `hidden`), `text` shows, the URL matches the glob `url`,
   * `script` (a function body) returns something truthy, or no request is in flight for
   * `network_idle`; resolves to the milliseconds it took. Past the timeout: `Timeout` (504).
   */
  async waitFor(target: string | WaitForOptions, options: Pick<WaitForOptions, "state" | "timeout"> = {}): Promise<number> {
    const what = typeof target === "string" ? { selector: target, ...options } : { ...target, ...options };
    const reply = await this.run(frames.actionFrame<WaitForRequest>({ action: "wait_for" }, what));
    return (reply as unknown as WaitForResponse).elapsed_ms;
  }

  /** Press a key or a chord (`"Enter"`, `"Control+A"`), into `selector` (focused first) or
   * whatever has focus. */
  async press(keys: string, options: Pick<PressRequest, "selector"> & ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<PressRequest>({ action: "press", keys }, options));
  }

  /** Move the mouse over the element matching `selector`. */
  async hover(selector: string, options: ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<HoverRequest>({ action: "hover", selector }, options));
  }

  /** Pick the options of these `values` (only these; `[]` unselects all) in the select matching
   * `selector`. */
  async select(selector: string, values: readonly string[], options: ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<SelectRequest>({ action: "select", selector, values: [...values] }, options));
  }

  /** Scroll `selector` (a string, or `{selector}`) into view, or the page to `x` / `y`, or `to`
   * `"top"` or `"bottom"`; the page's scroll position after. */
  async scroll(target: string | ScrollOptions, options: ActionOptions = {}): Promise<ScrollPosition> {
    const where = typeof target === "string" ? { selector: target, ...options } : { ...target, ...options };
    const reply = (await this.run(frames.actionFrame<ScrollRequest>({ action: "scroll" }, where))) as unknown as ScrollResponse;
    return { x: reply.x, y: reply.y };
  }

  /** Give the file input matching `selector` these `files` (the bytes travel in the frame; more
   * than one needs `<input multiple>`; the service bounds their total, 413 past it). */
  async upload(selector: string, files: readonly UploadFile[], options: ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<UploadRequest>({ action: "upload", selector, files: frames.uploadFiles(files) }, options));
  }

  /** The bytes of a download a reply listed (`GotoResult.downloads`, `Session.downloads`), with its
   * listing's fields; an id no reply listed: `NotFound` (404). */
  async download(downloadId: string, options: ActionOptions = {}): Promise<DownloadedFile> {
    const reply = await this.run(frames.actionFrame<DownloadRequest>({ action: "download", download_id: downloadId }, options));
    return frames.download(reply as unknown as DownloadResponse);
  }

  /** Every cookie of the session. */
  async cookies(options: ActionOptions = {}): Promise<ReceivedCookie[]> {
    const reply = await this.run(frames.actionFrame<CookiesRequest>({ action: "cookies" }, options));
    return (reply as unknown as CookiesResponse).cookies ?? [];
  }

  /** Put these cookies (each naming its `domain`) in the session's jar. */
  async setCookies(cookies: readonly StateCookie[], options: ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<SetCookiesRequest>({ action: "set_cookies", cookies: [...cookies] }, options));
  }

  /** Empty the session's jar. */
  async clearCookies(options: ActionOptions = {}): Promise<void> {
    await this.run(frames.actionFrame<ClearCookiesRequest>({ action: "clear_cookies" }, options));
  }

  /** The session's portable state (`cookies`, and per origin its `local_storage`), to open
   * another session from: `connect(url, tenant, {storageState: state})`. */
  async storageState(options: ActionOptions = {}): Promise<TakenState> {
    const reply = await this.run(frames.actionFrame<StorageStateRequest>({ action: "storage_state" }, options));
    const state = (reply as unknown as StorageStateResponse).state;
    return { cookies: state?.cookies ?? [], origins: state?.origins ?? [] };
  }

  /** Every request the session's pages made since its open or the last `har` (a standard
   * session: its gotos' requests), as HAR 1.2 (`{log: {...}}`), ready to save as a `.har` file. */
  async har(options: ActionOptions = {}): Promise<HarResponse["har"]> {
    const reply = await this.run(frames.actionFrame<HarRequest>({ action: "har" }, options));
    return (reply as unknown as HarResponse).har;
  }

  /** Send any action frame (an `id` is added) and resolve to its raw reply frame. */
  async request(frame: { action: string; [field: string]: unknown }): Promise<Reply> {
    return this.run(frame);
  }
}
