/**
 * @module One interface over both ends of a peer WebSocket — the dialer's client `WebSocket` and
 * the acceptor's Bun `ServerWebSocket` — so connection and link logic is written once. Each
 * adapter maps its side's backpressure signal onto the same three outcomes.
 */
import type { ServerWebSocket } from "bun";

export type SendOutcome = "sent" | "backpressure" | "dropped";

export interface FrameSocket {
  /** Where the other end is, for logs ("127.0.0.1:51234" or the dialed "host:port"). */
  readonly remoteAddress: string;
  send(frame: Uint8Array): SendOutcome;
  /** Bytes accepted by send() but not yet written to the network. */
  bufferedBytes(): number;
  close(code: number, reason: string): void;
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
export function closeReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 123) return reason;
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, "") + "...";
}

export function clientFrameSocket(ws: WebSocket, address: string, bufferedBytesMax: number): FrameSocket {
  return {
    remoteAddress: address,
    send(frame) {
      if (ws.readyState !== WebSocket.OPEN) return "dropped";
      ws.send(frame);
      // The browser API has no send result; bufferedAmount is the backpressure signal.
      return ws.bufferedAmount > bufferedBytesMax ? "backpressure" : "sent";
    },
    bufferedBytes: () => ws.bufferedAmount,
    close(code, reason) {
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(code, closeReason(reason));
    },
  };
}

export function serverFrameSocket(ws: ServerWebSocket<unknown>): FrameSocket {
  return {
    remoteAddress: ws.remoteAddress,
    send(frame) {
      // Bun: -1 = queued but backpressured, 0 = dropped (closed or over the limit), >0 = bytes sent.
      const result = ws.send(frame);
      return result > 0 ? "sent" : result === -1 ? "backpressure" : "dropped";
    },
    bufferedBytes: () => ws.getBufferedAmount(),
    close(code, reason) {
      if (ws.readyState === 1 || ws.readyState === 0) ws.close(code, closeReason(reason));
    },
  };
}

/** Close codes (4000–4999 are application-defined). */
export const closeCodes = {
  normal: 1000,
  authFailed: 4001,
  malformedFrame: 4002,
  protocolViolation: 4003,
  replaced: 4004,
  handshakeTimeout: 4005,
  notAccepting: 4006,
  peerSilent: 4007,
} as const;
