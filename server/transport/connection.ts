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
import { OutgoingFragments, Reassembly } from "./fragments.ts";
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
  private readonly outgoing = new OutgoingFragments();
  private readonly reassembly = new Reassembly();

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
    let frame: Frame | null;
    try {
      frame = authenticated ? this.decodeMessage(bytes) : decodeFrame(bytes, { bytesMax: transportLimits.handshakeFrameBytesMax });
    } catch (error) {
      if (!(error instanceof CodecError)) throw error;
      this.fail(authenticated ? closeCodes.malformedFrame : closeCodes.authFailed, `malformed frame: ${error.message}`);
      return;
    }
    if (frame === null) return;
    if (authenticated) this.events.frame(this, frame);
    else this.handleStep(this.options.handshake.receive(frame));
  }

  /** One WebSocket message: a frame, or a fragment that may complete one (null until it does). */
  private decodeMessage(bytes: Uint8Array): Frame | null {
    const frame = decodeFrame(bytes, { bytesMax: transportLimits.messageBytesMax + transportLimits.fragmentHeaderBytesMax });
    if (frame.type !== "fragment") return frame;
    const whole = this.reassembly.accept(frame);
    if (whole === null) return null;
    const assembled = decodeFrame(whole);
    if (assembled.type === "fragment") throw new CodecError("a fragmented frame holds another fragment");
    return assembled;
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

  /**
   * A frame over messageBytesMax is queued as fragments and goes out as pumpFragments() is called:
   * "backpressure" then means "accepted, still going", "dropped" that too many large frames wait.
   */
  sendFrame(frame: Frame): SendOutcome {
    if (this.isClosed) return "dropped";
    const encoded = encodeFrame(frame);
    if (encoded.length <= transportLimits.messageBytesMax) return this.socket.send(encoded);
    if (!this.outgoing.add(encoded)) return "dropped";
    return this.pumpFragments() ? "sent" : "backpressure";
  }

  /** Large frames still going out as fragments. */
  get fragmentedPending(): number {
    return this.outgoing.pending;
  }

  /** Sends waiting fragments while the socket takes them; true once none wait. */
  pumpFragments(): boolean {
    // Bounded: each pass sends one fragment of a bounded number of bounded frames.
    while (this.outgoing.pending > 0 && !this.isClosed) {
      if (this.socket.bufferedBytes() > transportLimits.socketBufferedBytesMax) return false;
      const fragment = this.outgoing.next();
      assert(fragment !== null, "pending fragments yield one");
      if (this.socket.send(fragment) === "dropped") {
        // The socket is going away; the rest of these frames cannot be delivered either.
        this.outgoing.clear();
        return true;
      }
    }
    return true;
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
