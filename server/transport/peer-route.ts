/**
 * @module The acceptor side's entry point: `GET /raft/peer` on the node's existing Hono app,
 * upgraded to a WebSocket with hono/bun's `upgradeWebSocket`, so peer links share the node's one
 * HTTP port with the API and any other WebSocket route. The Bun server must be created with
 * `peerWebSocket` (hono/bun's handler with a payload limit large enough for our frames).
 */
import type { ServerWebSocket } from "bun";
import type { Hono } from "hono";
import { upgradeWebSocket, websocket } from "hono/bun";
import { assert } from "../assert.ts";
import { transportLimits } from "../constants.ts";
import { PEER_PATH } from "./peer-link.ts";
import { serverFrameSocket } from "./socket.ts";
import type { InboundConnection, Transport } from "./transport.ts";

/** Pass as `websocket` to Bun.serve. Bun's default payload limit (16 MiB) is below frameBytesMax. */
export const peerWebSocket = { ...websocket, maxPayloadLength: transportLimits.frameBytesMax };

export function registerPeerRoute(app: Hono, transport: Transport): void {
  app.get(
    PEER_PATH,
    upgradeWebSocket(() => {
      let connection: InboundConnection | null = null;
      return {
        onOpen(_event, ws) {
          const raw = ws.raw as ServerWebSocket<unknown> | undefined;
          assert(raw !== undefined, "hono/bun exposes the ServerWebSocket");
          connection = transport.accept(serverFrameSocket(raw));
        },
        onMessage(event) {
          if (connection === null) return;
          const data: unknown = event.data;
          if (data instanceof ArrayBuffer) connection.receive(new Uint8Array(data));
          else connection.protocolError("text message on a binary link");
        },
        onClose(event) {
          connection?.socketClosed(event.code, event.reason);
        },
      };
    }),
  );
}
