/** The hostile WebSocket server of hostile.test.ts: it answers each socket's first frame (the open
 * reply, or a test's own), then runs the test's script per frame. */

import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

import { WebSocket, WebSocketServer } from "ws";

export type Frame = Record<string, unknown>;

export const SESSION_ID = "00000000-0000-4000-8000-000000000000";
export const TOKENS = ["a".repeat(43), "b".repeat(43), "c".repeat(43)];
export type Script = (socket: WebSocket, frame: Frame, request: IncomingMessage) => void;

/** A WebSocket server on 127.0.0.1 that answers the open frame, then runs `script` per frame. */
export class Hostile {
  readonly http: Server;
  readonly wss: WebSocketServer;
  readonly received: Frame[] = [];
  readonly sockets = new Set<WebSocket>();
  answerOpen = true;

  /** `first` answers each socket's first frame (default: the open reply, when `answerOpen`). */
  constructor(private readonly script: Script, private readonly first?: Script) {
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
          if (this.first) this.first(socket, frame, request);
          else if (this.answerOpen) socket.send(JSON.stringify({ session_id: SESSION_ID, resume_token: TOKENS[0] }));
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

/** Answer `frame` with `fields` and its id. */
export const reply = (socket: WebSocket, frame: Frame, fields: Frame) => socket.send(JSON.stringify({ ...fields, id: frame.id }));
