/**
 * The exceptions: one class per family of the service's error codes, as in the Python client.
 *
 * Every error frame (`{"type": "error" | "fatal", "message", "code"}`) and every refused WebSocket
 * upgrade (an HTTP error with the same JSON body) becomes an `InndxError` carrying the service's
 * `code`; the family subclasses let callers catch what they can act on:
 *
 *     InndxError            any error the service reported, or a session that broke
 *       NotFound            404: no element matches the selector
 *       Timeout             504 (navigation, script, element wait) or 408 (no open frame in time)
 *       PolicyError         401 / 403: not authenticated, not allowed (tenant, proxy, network policy)
 *       CapacityError       429 (quota, too many pending actions) or 503 (no browser, shutting down)
 *       ConnectionClosed    the socket closed while a reply was awaited; `code` is the close code
 */

import type { Id } from "./generated/frames.js";

export interface ErrorOptions {
  /** True when the session is over (a fatal frame, a refused upgrade, a closed or broken socket). */
  fatal?: boolean;
  /** The correlation id of the action this error answers, if any. */
  id?: Id;
}

export class InndxError extends Error {
  /** The service's code (400, 404, 504...), the WebSocket close code for `ConnectionClosed`, or
   * null for a failure of the client's own (a reply that is not JSON, no reply in time). */
  readonly code: number | null;
  readonly fatal: boolean;
  readonly id: Id | undefined;

  constructor(message: string, code: number | null = null, options: ErrorOptions = {}) {
    super(message);  // as the service sent it: the code is `code`
    this.name = new.target.name;
    this.code = code;
    this.fatal = options.fatal ?? false;
    this.id = options.id;
  }
}

export class NotFound extends InndxError {}
export class Timeout extends InndxError {}
export class PolicyError extends InndxError {}
export class CapacityError extends InndxError {}
export class ConnectionClosed extends InndxError {}

const FAMILIES: ReadonlyMap<number, typeof InndxError> = new Map([
  [404, NotFound],
  [408, Timeout],
  [504, Timeout],
  [401, PolicyError],
  [403, PolicyError],
  [429, CapacityError],
  [503, CapacityError],
]);

/** The error for a service error code: its family's class, else `InndxError`. */
export function errorFor(code: unknown, message: string, options: ErrorOptions = {}): InndxError {
  const known = typeof code === "number" && Number.isInteger(code) ? code : null;
  const family = (known !== null && FAMILIES.get(known)) || InndxError;
  return new family(message, known, options);
}
