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

/** What the route keeps on the socket so binary messages skip hono's per-message event objects. */
type PeerSocketData = Parameters<typeof websocket.message>[0]["data"] & {
  peerReceive?: (bytes: Uint8Array) => void;
};

/**
 * Pass as `websocket` to Bun.serve. A message is at most one fragment (fragments.ts), so the payload
 * limit is messageBytesMax plus a fragment header; anything bigger is refused by Bun unread.
 * Peer frames go straight to their connection: hono's handler builds a context and an event object
 * per message, which showed in profiles at thousands of frames per second. Every other WebSocket
 * route still goes through hono.
 */
export const peerWebSocket = {
  ...websocket,
  maxPayloadLength: transportLimits.messageBytesMax + transportLimits.fragmentHeaderBytesMax,
  message(ws: ServerWebSocket<PeerSocketData>, message: string | Buffer) {
    const receive = ws.data.peerReceive;
    if (receive !== undefined && typeof message !== "string") receive(new Uint8Array(message.buffer, message.byteOffset, message.byteLength));
    else websocket.message(ws, message);
  },
};

export function registerPeerRoute(app: Hono, transport: Transport): void {
  app.get(
    PEER_PATH,
    upgradeWebSocket(() => {
      let connection: InboundConnection | null = null;
      return {
        onOpen(_event, ws) {
          const raw = ws.raw as ServerWebSocket<PeerSocketData> | undefined;
          assert(raw !== undefined, "hono/bun exposes the ServerWebSocket");
          const accepted = transport.accept(serverFrameSocket(raw));
          connection = accepted;
          raw.data.peerReceive = (bytes) => accepted.receive(bytes);
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
