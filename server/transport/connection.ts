/**
 * @module One peer WebSocket from open to close, on either side: runs the handshake (handshake.ts)
 * under a deadline with tiny frame limits, then hands decoded frames up. Any failure — codec error,
 * failed proof, unexpected frame, timeout — closes the socket with a code and a reason that names
 * the problem, and logs it at warn with the remote address. `closed` fires exactly once.
 */
import { assert } from "../assert.ts";
import { transportLimits } from "../constants.ts";
import type { Logger } from "../log/logger.ts";
import type { NodeId } from "../raft/types.ts";
import { CodecError, decodeFrame, encodeFrame, type Frame } from "./codec.ts";
import type { Handshake, HandshakeStep } from "./handshake.ts";
import { closeCodes, type FrameSocket, type SendOutcome } from "./socket.ts";

export interface ConnectionEvents {
  authenticated(connection: Connection, peer: NodeId): void;
  /** Only after authentication. */
  frame(connection: Connection, frame: Frame): void;
  closed(connection: Connection): void;
}

export interface ConnectionOptions {
  readonly socket: FrameSocket;
  readonly handshake: Handshake;
  readonly events: ConnectionEvents;
  readonly log: Logger;
  readonly handshakeTimeoutMs?: number;
}

export class Connection {
  readonly socket: FrameSocket;
  /** Set once the handshake succeeded; frames flow only then. */
  peer: NodeId | null = null;
  private isClosed = false;
  private handshakeTimer: ReturnType<typeof setTimeout> | null;
  private events: ConnectionEvents;

  constructor(private readonly options: ConnectionOptions) {
    this.socket = options.socket;
    this.events = options.events;
    const timeoutMs = options.handshakeTimeoutMs ?? transportLimits.handshakeTimeoutMs;
    // Covers the TCP/WebSocket connect as well as the handshake itself.
    this.handshakeTimer = setTimeout(() => this.fail(closeCodes.handshakeTimeout, `not authenticated within ${timeoutMs} ms`), timeoutMs);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The socket is open: send this side's opening frame, if it has one. */
  begin(): void {
    const opening = this.options.handshake.opening;
    if (opening !== null && !this.isClosed) this.sendFrame(opening);
  }

  receive(bytes: Uint8Array): void {
    if (this.isClosed) return;
    const authenticated = this.peer !== null;
    let frame: Frame;
    try {
      frame = decodeFrame(bytes, authenticated ? {} : { bytesMax: transportLimits.handshakeFrameBytesMax });
    } catch (error) {
      if (!(error instanceof CodecError)) throw error;
      this.fail(authenticated ? closeCodes.malformedFrame : closeCodes.authFailed, `malformed frame: ${error.message}`);
      return;
    }
    if (authenticated) this.events.frame(this, frame);
    else this.handleStep(this.options.handshake.receive(frame));
  }

  /** Hands this connection's events to a new owner (an accepted connection joins its peer's link). */
  rebind(events: ConnectionEvents): void {
    assert(this.peer !== null, "only an authenticated connection changes owner");
    this.events = events;
  }

  /** A text message or another breach of the protocol by the remote side. */
  protocolError(reason: string): void {
    this.fail(closeCodes.protocolViolation, reason);
  }

  sendFrame(frame: Frame): SendOutcome {
    if (this.isClosed) return "dropped";
    return this.socket.send(encodeFrame(frame));
  }

  /** Close from this side; `closed` fires now, not when the socket's close event arrives. */
  close(code: number, reason: string): void {
    if (this.isClosed) return;
    this.socket.close(code, reason);
    this.markClosed();
  }

  /** The socket's own close event (remote close, network error, or after close()). */
  socketClosed(code: number, reason: string): void {
    if (this.isClosed) return;
    this.options.log.debug("peer socket closed", { remote: this.socket.remoteAddress, peer: this.peer, code, reason });
    this.markClosed();
  }

  private handleStep(step: HandshakeStep): void {
    if (step.send !== null) this.sendFrame(step.send);
    const result = step.result;
    if (result.kind === "failed") {
      this.fail(closeCodes.authFailed, `authentication failed: ${result.reason}`);
    } else if (result.kind === "authenticated") {
      assert(this.peer === null, "authenticated twice");
      this.clearTimer();
      this.peer = result.peer;
      this.events.authenticated(this, result.peer);
    }
  }

  private fail(code: number, reason: string): void {
    if (this.isClosed) return;
    this.options.log.warn("peer connection refused", { remote: this.socket.remoteAddress, peer: this.peer, code, reason });
    this.close(code, reason);
  }

  private markClosed(): void {
    this.isClosed = true;
    this.clearTimer();
    this.events.closed(this);
  }

  private clearTimer(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }
}
