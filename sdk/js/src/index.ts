/**
 * inndx: the TypeScript client for inndx sessions.
 *
 *     import { connect } from "inndx";
 *     const s = await connect("ws://127.0.0.1:8022", "acme", { client: "chrome", timeout: "20s" });
 *     const page = await s.goto("https://example.com/");
 *     const png = await s.screenshot({ full_page: true });
 *     await s.close();
 */

export { CapacityError, ConnectionClosed, InndxError, NotFound, PolicyError, Timeout, errorFor } from "./errors.js";
export type { ErrorOptions } from "./errors.js";
export { WS_PATH, wsUrl } from "./frames.js";
export type {
  ActionOptions, GotoOptions, HeadersInit, OpenOptions, PdfOptions, ScreenshotOptions, ScrollOptions, WaitForOptions,
} from "./frames.js";
export { Actions } from "./actions.js";
export type { Reply, ScrollPosition } from "./actions.js";
export { GotoResult, Headers } from "./results.js";
export type { DownloadedFile } from "./results.js";
export { connect } from "./connect.js";
export type { ConnectOptions } from "./connect.js";
export { Session } from "./session.js";
export type * from "./generated/frames.js";

export const VERSION = "0.1.0";
