/**
 * @module The link to one peer: its bounded send queue, its one authenticated connection, and — on
 * the dialing side — the reconnect loop.
 *
 * One WebSocket per pair: the node whose id sorts lower dials, the higher one accepts (on
 * `/raft/peer` of its HTTP server). Both directions of Raft traffic share that socket. A fixed
 * direction means two nodes never race to open two sockets to each other, and a restarted dialer
 * simply replaces its old, half-dead connection on the acceptor.
 *
 * Sends are queued and flushed on a microtask, so every message produced in one turn of the event
 * loop (one Raft Ready) leaves in one frame. A flush stops while the socket's unsent buffer is over
 * socketBufferedBytesMax and retries shortly; meanwhile the queue absorbs messages up to its bounds
 * and then drops them (counted). Queued messages survive a reconnect and go out once the link is up.
 *
 * App items (forwarded requests and their answers) are batched the same way, in their own frames
 * sent first in each flush because a client waits on each; unlike Raft messages they are dropped
 * when the link goes down, since the transport then fails every request waiting on that peer.
 */
import type { TLSOptions } from "bun";
import { assert } from "../assert.ts";
import { transportLimits } from "../constants.ts";
import type { Logger } from "../log/logger.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { randomNonce } from "./auth.ts";
import { reconnectDelayMs, type BackoffLimits } from "./backoff.ts";
import { appItemBytes, type AppItem, type Frame } from "./codec.ts";
import { Connection, type ConnectionEvents } from "./connection.ts";
import { DialerHandshake } from "./handshake.ts";
import { SendQueue, type SendQueueLimits } from "./send-queue.ts";
import { clientFrameSocket, closeCodes, type SendOutcome } from "./socket.ts";

export const PEER_PATH = "/raft/peer";

export interface PeerStats {
  readonly connected: boolean;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Raft messages dropped for this peer: queue full, socket refused, or too large to send. */
  readonly dropped: number;
  /** Wall-clock ms (nowMs) of the last frame received from the peer; null if never. */
  readonly lastContactMs: number | null;
  /** Times the link came up again after its first connection. */
  readonly reconnects: number;
  /** Frames (one WebSocket send each) this side sent on the link: batching shows as few per item. */
  readonly framesSent: number;
}

export interface PeerLinkOptions {
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  readonly address: string;
  readonly secret: Uint8Array;
  /** Null: plain ws://. Otherwise wss:// with these TLS options ({} for the defaults). */
  readonly tls: TLSOptions | null;
  readonly log: Logger;
  readonly queue: SendQueueLimits;
  readonly backoff: BackoffLimits;
  readonly handshakeTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly peerSilenceMsMax: number;
  readonly nowMs: () => number;
  readonly random01: () => number;
  /** An authenticated frame arrived from this peer. */
  readonly onFrame: (link: PeerLink, connection: Connection, frame: Frame) => void;
  /** The authenticated connection went away. */
  readonly onDown: (link: PeerLink) => void;
}

/** The lower id dials; ids are compared as strings, the same way on every node. */
export function dialsTo(selfId: NodeId, peerId: NodeId): boolean {
  assert(selfId !== peerId, "no link to self");
  return selfId < peerId;
}

export class PeerLink {
  readonly peerId: NodeId;
  readonly dials: boolean;
  private address: string;
  private readonly queue: SendQueue;
  private appQueue: AppItem[] = [];
  private appQueueBytes = 0;
  /** The authenticated connection, if any. Invariant: at most one per link. */
  private connection: Connection | null = null;
  /** Dialer only: the connection being opened or authenticated. */
  private dialing: Connection | null = null;
  private running = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private keepaliveTimer: ReturnType<typeof setInterval> | null = null;
  private lastSentMs = 0;
  private flushScheduled = false;
  private everConnected = false;
  private reconnectsCount = 0;
  private framesSentCount = 0;
  private lastContactMs: number | null = null;

  constructor(private readonly options: PeerLinkOptions) {
    this.peerId = options.peerId;
    this.address = options.address;
    this.dials = dialsTo(options.selfId, options.peerId);
    this.queue = new SendQueue(options.queue);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.dials) this.dial();
  }

  /** Closes everything and forgets queued messages; the link may be started again. */
  stop(reason: string): void {
    this.running = false;
    this.clearTimers();
    this.dialing?.close(closeCodes.normal, reason);
    this.connection?.close(closeCodes.normal, reason);
    this.dialing = null;
    this.connection = null;
    this.queue.clear();
    this.clearAppQueue();
  }

  setAddress(address: string): void {
    if (address === this.address) return;
    this.address = address;
    // The dialer must reach the new address; the acceptor just waits for the peer to call.
    if (this.dials && this.running) {
      this.options.log.info("peer address changed; redialing", { peer: this.peerId, address });
      this.dialing?.close(closeCodes.normal, "peer address changed");
      this.connection?.close(closeCodes.normal, "peer address changed");
      this.clearTimers();
      this.dial();
    }
  }

  get connected(): boolean {
    return this.connection !== null;
  }

  stats(): PeerStats {
    return {
      connected: this.connection !== null,
      queuedMessages: this.queue.count,
      queuedBytes: this.queue.bytes,
      dropped: this.queue.dropped,
      lastContactMs: this.lastContactMs,
      reconnects: this.reconnectsCount,
      framesSent: this.framesSentCount,
    };
  }

  enqueue(message: Message, bytes: number): void {
    if (!this.queue.offer(message, bytes)) return;
    this.scheduleFlush();
  }

  countDropped(messagesCount: number): void {
    this.queue.countDropped(messagesCount);
  }

  /** Queues an app item for this turn's flush; "sent" means queued on a live link. */
  sendApp(item: AppItem): SendOutcome {
    const connection = this.connection;
    if (connection === null) return "dropped";
    const bytes = appItemBytes(item);
    // Not refused for a full socket buffer: flush waits for it, and a snapshot in flight keeps the
    // buffer full for a while; the queue's own bounds are the backpressure.
    if (this.appQueue.length >= transportLimits.appQueueItemsMax || this.appQueueBytes + bytes > transportLimits.appQueueBytesMax) return "backpressure";
    this.appQueue.push(item);
    this.appQueueBytes += bytes;
    this.scheduleFlush();
    return "sent";
  }

  /** An authenticated connection for this peer (dialed by us, or accepted by the transport). */
  attach(connection: Connection): void {
    assert(connection.peer === this.peerId, "connection authenticated as another peer");
    if (!this.running) {
      connection.close(closeCodes.notAccepting, "transport not running");
      return;
    }
    const previous = this.connection;
    this.connection = connection;
    if (previous !== null && previous !== connection) previous.close(closeCodes.replaced, "replaced by a newer connection");
    if (this.dialing === connection) this.dialing = null;
    this.attempt = 0;
    if (this.everConnected) this.reconnectsCount++;
    this.everConnected = true;
    this.lastContactMs = this.options.nowMs();
    this.lastSentMs = this.lastContactMs;
    this.options.log.info("peer link up", { peer: this.peerId, remote: connection.socket.remoteAddress });
    this.startKeepalive();
    this.scheduleFlush();
  }

  /**
   * Both sides send an empty raft frame when they have sent nothing for a keepalive interval, and
   * close a link that has received nothing for peerSilenceMsMax. Without this a vanished peer
   * (power loss, half-open TCP) would keep the dialer from ever redialing a restarted acceptor.
   */
  private startKeepalive(): void {
    if (this.keepaliveTimer !== null) return;
    this.keepaliveTimer = setInterval(() => this.keepalive(), this.options.keepaliveIntervalMs);
  }

  private keepalive(): void {
    const connection = this.connection;
    if (connection === null) return this.stopKeepalive();
    const nowMs = this.options.nowMs();
    const silentMs = nowMs - (this.lastContactMs ?? nowMs);
    if (silentMs > this.options.peerSilenceMsMax) {
      this.options.log.warn("peer silent; closing link", { peer: this.peerId, remote: connection.socket.remoteAddress, silentMs });
      connection.close(closeCodes.peerSilent, `nothing received for ${silentMs} ms`);
    } else if (nowMs - this.lastSentMs >= this.options.keepaliveIntervalMs) {
      this.lastSentMs = nowMs;
      connection.sendFrame({ type: "raft", messages: [] });
    }
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer !== null) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
  }

  /** Events for a connection once it belongs to this link. */
  readonly events: ConnectionEvents = {
    authenticated: (connection) => this.attach(connection),
    frame: (connection, frame) => {
      if (connection !== this.connection) return;
      this.lastContactMs = this.options.nowMs();
      this.options.onFrame(this, connection, frame);
    },
    closed: (connection) => this.handleClosed(connection),
  };

  private handleClosed(connection: Connection): void {
    if (connection === this.connection) {
      this.connection = null;
      this.stopKeepalive();
      this.clearAppQueue();
      this.options.log.info("peer link down", { peer: this.peerId, remote: connection.socket.remoteAddress });
      this.options.onDown(this);
    } else if (connection === this.dialing) {
      this.dialing = null;
    } else {
      return;
    }
    if (this.dials && this.running && this.connection === null && this.dialing === null) this.scheduleReconnect();
  }

  private dial(): void {
    assert(this.dials && this.running && this.dialing === null, "dial only from an idle running dialer");
    const tls = this.options.tls;
    const url = `${tls === null ? "ws" : "wss"}://${this.address}${PEER_PATH}`;
    let ws: WebSocket;
    try {
      // Bun's constructor takes TLS options; the DOM typings only know the protocols overload.
      const BunWebSocket = WebSocket as unknown as new (url: string, options?: Bun.WebSocketOptions) => WebSocket;
      ws = tls === null ? new BunWebSocket(url) : new BunWebSocket(url, { tls });
    } catch (error) {
      this.options.log.warn("cannot dial peer", { peer: this.peerId, url, error });
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    const handshake = new DialerHandshake({ selfId: this.options.selfId, peerId: this.peerId, secret: this.options.secret, nonce: randomNonce() });
    const socket = clientFrameSocket(ws, this.address, transportLimits.socketBufferedBytesMax);
    const connection = new Connection({ socket, handshake, events: this.events, log: this.options.log, handshakeTimeoutMs: this.options.handshakeTimeoutMs });
    this.dialing = connection;
    ws.onopen = () => connection.begin();
    ws.onmessage = (event: MessageEvent) => {
      if (event.data instanceof ArrayBuffer) connection.receive(new Uint8Array(event.data));
      else connection.protocolError("text message on a binary link");
    };
    ws.onclose = (event: CloseEvent) => connection.socketClosed(event.code, event.reason);
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== null || !this.running) return;
    const delayMs = reconnectDelayMs(this.attempt, this.options.random01(), this.options.backoff);
    this.attempt++;
    this.options.log.debug("peer reconnect scheduled", { peer: this.peerId, delayMs, attempt: this.attempt });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.running && this.connection === null && this.dialing === null) this.dial();
    }, delayMs);
  }

  /** Runs a scheduled flush now instead of on its microtask (the microtask then finds nothing). */
  flushNow(): void {
    if (this.flushScheduled) this.flush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.connection === null || this.retryTimer !== null) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  /** Sends queued app items, then Raft messages, until both are empty or the socket pushes back. */
  private flush(): void {
    this.flushScheduled = false;
    // Fragments of a large frame (a snapshot) go a few at a time, after this turn's app frames, so
    // forwarded requests never wait behind a whole snapshot. Raft frames do wait: Raft relies on
    // the link's order (a probe sent after a snapshot must not reach the follower before it).
    if (this.connection !== null && this.appQueue.length > 0 && !this.flushApp(this.connection)) return this.retryLater();
    if (this.connection !== null && this.connection.fragmentedPending === 0) this.flushRaft();
    if (this.connection !== null && !this.connection.pumpFragments()) return this.retryLater();
    // The last fragment just left: Raft frames that waited behind it go now.
    if (this.connection !== null && this.queue.count > 0 && this.retryTimer === null) this.flushRaft();
  }

  private flushRaft(): void {
    const connection = this.connection;
    // Bounded: each frame removes at least one message.
    const framesMax = this.queue.count;
    for (let i = 0; i < framesMax && connection !== null && this.queue.count > 0; i++) {
      if (connection.socket.bufferedBytes() > transportLimits.socketBufferedBytesMax) return this.retryLater();
      const batch = this.queue.take(transportLimits.frameBatchBytesTarget, transportLimits.frameMessagesMax);
      // Under the frame limit: the batch target is far below it, and a single message was checked on send().
      this.lastSentMs = this.options.nowMs();
      this.framesSentCount++;
      const outcome = connection.sendFrame({ type: "raft", messages: batch.messages });
      if (outcome === "dropped") this.queue.countDropped(batch.messages.length);
      if (outcome === "backpressure") return this.retryLater();
    }
  }

  /** False when the socket pushed back before the app queue emptied. */
  private flushApp(connection: Connection): boolean {
    const items = this.appQueue;
    let start = 0;
    while (start < items.length) {
      if (connection.socket.bufferedBytes() > transportLimits.socketBufferedBytesMax) break;
      let end = start;
      let bytes = 0;
      // At least one item per frame; then up to the batch target (each item was under the frame limit).
      do bytes += appItemBytes(items[end++]!);
      while (end < items.length && bytes + appItemBytes(items[end]!) <= transportLimits.frameBatchBytesTarget);
      this.lastSentMs = this.options.nowMs();
      this.framesSentCount++;
      if (connection.sendFrame({ type: "app", items: items.slice(start, end) }) === "backpressure") {
        start = end;
        break;
      }
      start = end;
    }
    this.appQueue = items.slice(start);
    this.appQueueBytes = 0;
    for (const item of this.appQueue) this.appQueueBytes += appItemBytes(item);
    return this.appQueue.length === 0;
  }

  private clearAppQueue(): void {
    this.appQueue = [];
    this.appQueueBytes = 0;
  }

  private retryLater(): void {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.scheduleFlush();
    }, transportLimits.backpressureRetryMs);
  }

  private clearTimers(): void {
    this.stopKeepalive();
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.reconnectTimer = null;
    this.retryTimer = null;
    this.flushScheduled = false;
  }
}
