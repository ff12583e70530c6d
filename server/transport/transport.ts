/**
 * @module The node's peer transport: one PeerLink per other member, routing of outgoing Raft
 * messages by `to`, delivery of received ones, inbound connection handling for the acceptor side,
 * and request/response over `app` frames for later layers (forwarded proposals, ReadIndex).
 *
 * Lifecycle: construct, `setPeers`, `start()`; `stop()` closes every socket and timer. Received
 * frames are checked against the authenticated peer: a Raft message claiming another sender, or
 * addressed to another node, closes the connection (a bug or an attack, never normal traffic).
 */
import type { TLSOptions } from "bun";
import { AssertionError, assert, unreachable } from "../assert.ts";
import { transportLimits } from "../constants.ts";
import type { Logger } from "../log/logger.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { randomNonce, secretBytes } from "./auth.ts";
import { defaultBackoff, type BackoffLimits } from "./backoff.ts";
import { frameSize, raftFrameOverheadBytes, raftMessageBytes, type AppItem, type Frame } from "./codec.ts";
import { Connection, type ConnectionEvents } from "./connection.ts";
import { AcceptorHandshake } from "./handshake.ts";
import { dialsTo, PeerLink, type PeerStats } from "./peer-link.ts";
import type { SendQueueLimits } from "./send-queue.ts";
import { closeCodes, type FrameSocket } from "./socket.ts";

export interface TransportOptions {
  readonly id: NodeId;
  /** Shared cluster secret (a string is taken as UTF-8), at least transportLimits.secretBytesMin bytes. */
  readonly secret: string | Uint8Array;
  readonly log: Logger;
  /**
   * Dial peers over wss:// (every acceptor's HTTP server must then serve TLS). `true` verifies
   * against the system CAs; an object passes Bun's TLS options (e.g. `ca` for a private CA).
   */
  readonly tls?: boolean | TLSOptions;
  /** Tests shrink these; production uses transportLimits. */
  readonly queue?: SendQueueLimits;
  readonly backoff?: BackoffLimits;
  readonly handshakeTimeoutMs?: number;
  readonly keepaliveIntervalMs?: number;
  readonly peerSilenceMsMax?: number;
  readonly nowMs?: () => number;
  readonly random01?: () => number;
}

export type AppReply =
  | { readonly ok: true; readonly body: Uint8Array }
  | { readonly ok: false; readonly reason: "timeout" | "unreachable" | "disconnected" | "overloaded" | "too-large" | "stopped" | "unknown-peer" };

export interface AppRequest {
  readonly from: NodeId;
  readonly body: Uint8Array;
}

/** Answers a forwarded request; the returned bytes go back as the forward-response body. */
export type AppHandler = (request: AppRequest) => Uint8Array | Promise<Uint8Array>;
export type MessagesHandler = (messages: readonly Message[]) => void;

interface PendingRequest {
  readonly peer: NodeId;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly resolve: (reply: AppReply) => void;
}

/** What the WebSocket route feeds for one inbound socket. */
export interface InboundConnection {
  receive(bytes: Uint8Array): void;
  protocolError(reason: string): void;
  socketClosed(code: number, reason: string): void;
}

export class Transport {
  readonly id: NodeId;
  private readonly secret: Uint8Array;
  private readonly log: Logger;
  private readonly links = new Map<NodeId, PeerLink>();
  /** The members as last set, and those cut off by the test-only partition switch. */
  private desiredPeers: ReadonlyMap<NodeId, string> = new Map();
  private blocked: ReadonlySet<NodeId> = new Set();
  /** Inbound connections still in their handshake (bounded by handshakesPendingMax). */
  private readonly handshaking = new Set<Connection>();
  private readonly pending = new Map<number, PendingRequest>();
  private nextRequestId = 1;
  private running = false;
  private unroutableCount = 0;
  private messagesHandler: MessagesHandler = () => {};
  private appHandler: AppHandler | null = null;

  constructor(private readonly options: TransportOptions) {
    assert(options.id.length > 0, "transport needs a node id");
    this.id = options.id;
    this.secret = secretBytes(options.secret);
    this.log = options.log.child({ component: "transport" });
  }

  start(): void {
    assert(!this.running, "transport started twice");
    this.running = true;
    for (const link of this.links.values()) link.start();
  }

  stop(): void {
    this.running = false;
    for (const requestId of [...this.pending.keys()]) this.settle(requestId, { ok: false, reason: "stopped" });
    for (const link of this.links.values()) link.stop("transport stopped");
    for (const connection of [...this.handshaking]) connection.close(closeCodes.notAccepting, "transport stopped");
    this.handshaking.clear();
  }

  /** Membership: links for new peers, address updates, and removed peers closed. Self is skipped. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.desiredPeers = new Map(peers);
    this.applyPeers(new Map([...peers].filter(([id]) => !this.blocked.has(id))));
  }

  /**
   * Test-only (node flag --test-faults): cut this node off from `peers` as a network partition
   * would. No frames either way: links to them close, and their dials are refused while blocked.
   */
  setBlocked(peers: Iterable<NodeId>): void {
    this.blocked = new Set(peers);
    this.log.warn("test partition switch", { blocked: [...this.blocked] });
    this.setPeers(this.desiredPeers);
  }

  private applyPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [peerId, link] of this.links) {
      if (peers.has(peerId)) continue;
      link.stop("removed from the group");
      this.links.delete(peerId);
      // Already sent: the peer may have acted on them, so this is "disconnected", not "unknown-peer".
      this.failPending(peerId, "disconnected");
    }
    for (const [peerId, address] of peers) {
      if (peerId === this.id) continue;
      const existing = this.links.get(peerId);
      if (existing !== undefined) {
        existing.setAddress(address);
        continue;
      }
      const link = this.createLink(peerId, address);
      this.links.set(peerId, link);
      if (this.running) link.start();
    }
  }

  onMessages(handler: MessagesHandler): void {
    this.messagesHandler = handler;
  }

  onApp(handler: AppHandler): void {
    this.appHandler = handler;
  }

  /**
   * Queues each message for its `to` peer and flushes those links now, one frame per link for the
   * whole call (see RaftTransport.send for why not on a microtask); never blocks, drops (counted)
   * when a queue is full or a socket pushes back.
   */
  send(messages: readonly Message[]): void {
    const touched = new Set<PeerLink>();
    for (const message of messages) {
      assert(message.from === this.id, () => `message from ${message.from} sent by ${this.id}`);
      const link = this.links.get(message.to);
      if (link === undefined) {
        this.unroutableCount++;
        continue;
      }
      const bytes = raftMessageBytes(message);
      if (bytes + raftFrameOverheadBytes(1) > transportLimits.frameBytesMax) {
        this.log.error("raft message too large for one frame; dropped", { peer: message.to, type: message.type, bytes });
        link.countDropped(1);
        continue;
      }
      link.enqueue(message, bytes);
      touched.add(link);
    }
    for (const link of touched) link.flushNow();
  }

  stats(): Map<NodeId, PeerStats> {
    const out = new Map<NodeId, PeerStats>();
    for (const [peerId, link] of this.links) out.set(peerId, link.stats());
    return out;
  }

  /** Messages sent to ids with no link (not a member, or self). */
  get unroutable(): number {
    return this.unroutableCount;
  }

  /** Sends `body` to `peer` as a forward-request and resolves with its forward-response. */
  request(peer: NodeId, body: Uint8Array, timeoutMs: number): Promise<AppReply> {
    assert(timeoutMs > 0 && timeoutMs <= transportLimits.appRequestTimeoutMsMax, () => `request timeout out of range: ${timeoutMs}`);
    if (!this.running) return Promise.resolve({ ok: false, reason: "stopped" });
    const link = this.links.get(peer);
    if (link === undefined) return Promise.resolve({ ok: false, reason: "unknown-peer" });
    if (this.pending.size >= transportLimits.appRequestsPendingMax) return Promise.resolve({ ok: false, reason: "overloaded" });
    const requestId = this.nextRequestId;
    this.nextRequestId = requestId >= Number.MAX_SAFE_INTEGER ? 1 : requestId + 1;
    const item: AppItem = { kind: "forward-request", requestId, body };
    if (frameSize({ type: "app", items: [item] }) > transportLimits.frameBytesMax) return Promise.resolve({ ok: false, reason: "too-large" });
    const outcome = link.sendApp(item);
    if (outcome !== "sent") return Promise.resolve({ ok: false, reason: outcome === "dropped" ? "unreachable" : "overloaded" });
    return new Promise<AppReply>((resolve) => {
      const timer = setTimeout(() => this.settle(requestId, { ok: false, reason: "timeout" }), timeoutMs);
      this.pending.set(requestId, { peer, timer, resolve });
    });
  }

  /** For the WebSocket route: a new inbound socket. Returns the handle its events are fed to. */
  accept(socket: FrameSocket): InboundConnection {
    const handshake = new AcceptorHandshake({
      selfId: this.id,
      secret: this.secret,
      nonce: randomNonce(),
      refuseDialer: (dialerId) => this.refuseDialer(dialerId),
    });
    const connection = new Connection({
      socket,
      handshake,
      events: this.inboundEvents,
      log: this.log,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs ?? transportLimits.handshakeTimeoutMs,
    });
    if (!this.running || this.handshaking.size >= transportLimits.handshakesPendingMax) {
      const reason = this.running ? "too many connections in handshake" : "transport not running";
      this.log.warn("peer connection refused", { remote: socket.remoteAddress, reason });
      connection.close(closeCodes.notAccepting, reason);
      return connection;
    }
    this.handshaking.add(connection);
    return connection;
  }

  private refuseDialer(dialerId: NodeId): string | null {
    if (dialerId === this.id) return `${dialerId} is this node's own id`;
    if (!this.links.has(dialerId)) return `${dialerId} is not a member known to ${this.id}`;
    if (!dialsTo(dialerId, this.id)) return `${this.id} dials ${dialerId}, not the other way round`;
    return null;
  }

  /** Until authenticated an inbound connection belongs to no link; then it is handed to one. */
  private readonly inboundEvents: ConnectionEvents = {
    authenticated: (connection, peer) => {
      this.handshaking.delete(connection);
      const link = this.links.get(peer);
      if (link === undefined) {
        connection.close(closeCodes.notAccepting, `${peer} was removed during the handshake`);
        return;
      }
      // From now on the link receives this connection's events.
      connection.rebind(link.events);
      link.attach(connection);
    },
    frame: () => assert(false, "frames before authentication go to the handshake"),
    closed: (connection) => {
      this.handshaking.delete(connection);
    },
  };

  private createLink(peerId: NodeId, address: string): PeerLink {
    return new PeerLink({
      selfId: this.id,
      peerId,
      address,
      secret: this.secret,
      tls: this.options.tls === undefined || this.options.tls === false ? null : this.options.tls === true ? {} : this.options.tls,
      log: this.log,
      queue: this.options.queue ?? { messagesMax: transportLimits.queueMessagesMax, bytesMax: transportLimits.queueBytesMax },
      backoff: this.options.backoff ?? defaultBackoff,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs ?? transportLimits.handshakeTimeoutMs,
      keepaliveIntervalMs: this.options.keepaliveIntervalMs ?? transportLimits.keepaliveIntervalMs,
      peerSilenceMsMax: this.options.peerSilenceMsMax ?? transportLimits.peerSilenceMsMax,
      nowMs: this.options.nowMs ?? Date.now,
      random01: this.options.random01 ?? Math.random,
      onFrame: (link, connection, frame) => this.handleFrame(link, connection, frame),
      onDown: (link) => this.failPending(link.peerId, "disconnected"),
    });
  }

  private handleFrame(link: PeerLink, connection: Connection, frame: Frame): void {
    switch (frame.type) {
      case "raft":
        return this.handleRaft(link, connection, frame.messages);
      case "app":
        for (const item of frame.items) {
          if (item.kind === "forward-request") void this.answer(link, item.requestId, item.body);
          else this.handleResponse(link, item.requestId, item.body);
        }
        return;
      case "hello":
      case "challenge":
      case "auth":
      case "auth-ok":
      case "auth-fail":
      case "fragment": // Reassembled by the connection; never reaches a link.
        return connection.protocolError(`unexpected ${frame.type} frame after authentication`);
      default:
        return unreachable(frame);
    }
  }

  private handleRaft(link: PeerLink, connection: Connection, messages: readonly Message[]): void {
    for (const message of messages) {
      if (message.from !== link.peerId || message.to !== this.id) {
        return connection.protocolError(`raft message ${message.from}→${message.to} on the ${link.peerId}→${this.id} link`);
      }
    }
    if (messages.length > 0) this.messagesHandler(messages);
  }

  private async answer(link: PeerLink, requestId: number, body: Uint8Array): Promise<void> {
    const handler = this.appHandler;
    if (handler === null) return; // No one serves requests yet: the requester times out.
    let reply: Uint8Array;
    try {
      reply = await handler({ from: link.peerId, body });
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      this.log.error("app request handler failed", { peer: link.peerId, requestId, error });
      return;
    }
    const item: AppItem = { kind: "forward-response", requestId, body: reply };
    if (frameSize({ type: "app", items: [item] }) > transportLimits.frameBytesMax) {
      this.log.error("app response too large; not sent", { peer: link.peerId, requestId, bytes: reply.length });
      return;
    }
    link.sendApp(item);
  }

  private handleResponse(link: PeerLink, requestId: number, body: Uint8Array): void {
    const pending = this.pending.get(requestId);
    // A late response (after timeout) or one from the wrong peer is ignored.
    if (pending === undefined || pending.peer !== link.peerId) return;
    this.settle(requestId, { ok: true, body });
  }

  private settle(requestId: number, reply: AppReply): void {
    const pending = this.pending.get(requestId);
    if (pending === undefined) return;
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    pending.resolve(reply);
  }

  private failPending(peer: NodeId, reason: "disconnected"): void {
    for (const [requestId, pending] of [...this.pending]) {
      if (pending.peer === peer) this.settle(requestId, { ok: false, reason });
    }
  }
}
