/**
 * @module The package target `{ type: websocket }`: batches go to the one consumer subscribed to
 * the package on this node (the holder), and an ack counts like a push success: the forwarder
 * moves the cursor through Raft under its epoch and the consumer hears `acked` once that is
 * committed. While it runs, the target is registered with the node's ConsumerRegistry, which is
 * how the route finds it.
 *
 * One consumer per package per node: a second subscribe replaces the first (closed with 4409),
 * because a client that reconnects after a half-open TCP connection must not be locked out until
 * the dead one times out. Outcomes: no consumer → retry ("no consumer subscribed"); a batch not
 * acked within the ack timeout → retry (the batch goes again later, on the same socket if it is
 * still open); the consumer gone → retry; a batch that does not continue what the consumer was
 * sent (ack-window.ts: a cumulative ack of it would skip the gap) → retry, from the cursor. Each
 * waits for an ack or a timer, so nothing is pending forever. A consumer that breaks the protocol
 * (an ack beyond what was sent, an `after` beyond the last accepted event) is told and closed.
 *
 * The consumer's AckWindow follows the forwarder's window: when the forwarder drops its batches in
 * flight, `abandon` drops them here too.
 */
import { assert } from "../../assert.ts";
import { forwardTargetLimits } from "../../constants.ts";
import type { Logger } from "../../log/logger.ts";
import type { OutboxEntry } from "../../state/outbox-types.ts";
import { AckWindow } from "./ack-window.ts";
import { batchMessage, consumerCloseCodes, encodeServerMessage, type ServerMessage } from "./consumer-protocol.ts";
import type { ConsumerEndpoint, ConsumerRegistry, ConsumerSession, ConsumerSocket } from "./consumer-registry.ts";
import type { ForwardTarget, SendOutcome, TargetHooks, TargetStatus } from "./forward-target.ts";

export interface WebSocketTargetOptions {
  readonly packageName: string;
  readonly epoch: number;
  /** The package's committed cursor, for `subscribed`. */
  readonly cursor: () => number;
  /** Null: no route on this node (tests); no consumer can subscribe. */
  readonly registry: ConsumerRegistry | null;
  readonly log: Logger;
  readonly ackTimeoutMs?: number;
}

interface Consumer {
  readonly socket: ConsumerSocket;
  readonly window: AckWindow;
  readonly connectedAtMs: number;
  /** Batch number → the forwarder's pending send. */
  readonly waiting: Map<number, { readonly resolve: (outcome: SendOutcome) => void; readonly timer: ReturnType<typeof setTimeout> }>;
  /** Highest `acked` told to this consumer. */
  ackedNotice: number;
}

export class WebSocketTarget implements ForwardTarget, ConsumerEndpoint {
  readonly type = "websocket";
  readonly batchesInFlightMax = forwardTargetLimits.consumerBatchesInFlightMax;
  private consumer: Consumer | null = null;
  private hooks: TargetHooks | null = null;
  private stopped = false;

  constructor(private readonly options: WebSocketTargetOptions) {}

  start(hooks: TargetHooks): void {
    assert(this.hooks === null && !this.stopped, "a target starts once");
    this.hooks = hooks;
    this.options.registry?.register(this.options.packageName, this);
  }

  /** Idempotent. The consumer is told to reconnect: the package's next holder serves it. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.registry?.unregister(this.options.packageName, this);
    const consumer = this.consumer;
    if (consumer !== null) this.end(consumer, consumerCloseCodes.holderGone, `this node stopped forwarding package ${this.options.packageName}; reconnect`);
  }

  attach(socket: ConsumerSocket, after: number): ConsumerSession {
    const hooks = this.hooks;
    assert(hooks !== null, "a consumer attaches to a started target (the registry knows it from start)");
    // Raced with stop(): the registry handed out a target that just stopped.
    if (this.stopped) return this.refuse(socket, consumerCloseCodes.holderGone, "this node stopped forwarding the package; reconnect");
    // Events up to `after` count as delivered without being sent: only those that exist may. Every
    // event a holder ever sent precedes this holder's assignment in the log (a forwarder checks
    // mayAct against its applied state right before it sends), so this state has it.
    const lastSeq = hooks.lastSeq();
    if (after > lastSeq) return this.refuse(socket, consumerCloseCodes.protocolError, `after ${after} is beyond the last event accepted for package ${this.options.packageName} (${lastSeq})`);
    const previous = this.consumer;
    if (previous !== null) this.end(previous, consumerCloseCodes.replaced, "replaced by a newer consumer of this package");
    const consumer: Consumer = { socket, window: new AckWindow(after, this.batchesInFlightMax), connectedAtMs: Date.now(), waiting: new Map(), ackedNotice: 0 };
    this.consumer = consumer;
    this.tell(consumer, { type: "subscribed", v: 1, package: this.options.packageName, epoch: this.options.epoch, cursor: this.options.cursor() });
    this.options.log.info("consumer subscribed", { package: this.options.packageName, remote: socket.remote, after });
    hooks.wake();
    return { ack: (through) => this.ack(consumer, through), detach: () => this.detach(consumer) };
  }

  send(batch: readonly OutboxEntry[]): Promise<SendOutcome> {
    assert(batch.length > 0, "a batch holds at least one event");
    const consumer = this.consumer;
    if (consumer === null) return Promise.resolve({ kind: "retry", reason: "no consumer subscribed" });
    const lacking = consumer.window.lacking(batch);
    // The consumer said (at subscribe, or by acks) that it has all of these: nothing to send.
    if (lacking.length === 0) return Promise.resolve({ kind: "delivered" });
    const first = lacking[0]!.seq;
    const last = lacking.at(-1)!.seq;
    const cursor = this.options.cursor();
    if (!consumer.window.continues(first, cursor)) {
      // Only a forwarder out of step with this consumer sends such a batch; an ack of it would skip the gap.
      const from = Math.max(consumer.window.sentThrough, cursor);
      return Promise.resolve({ kind: "retry", reason: `batch ${first}..${last} does not follow seq ${from} (the last sent to this consumer, or the cursor); sending again from the cursor` });
    }
    // Encoded before the window records it: a batch that cannot be encoded takes no slot.
    const number = consumer.window.nextBatchNumber;
    const text = encodeServerMessage(batchMessage(number, lacking));
    const opened = consumer.window.open(first, last);
    assert(opened === number, "the batch goes with the number it was encoded with");
    if (!consumer.socket.send(text)) {
      this.end(consumer, consumerCloseCodes.holderGone, "the socket dropped a batch; reconnect");
      return Promise.resolve({ kind: "retry", reason: "the consumer's socket dropped a batch" });
    }
    const timeoutMs = this.options.ackTimeoutMs ?? forwardTargetLimits.consumerAckTimeoutMs;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.fail(consumer, `consumer did not acknowledge batch ${number} within ${timeoutMs} ms`), timeoutMs);
      consumer.waiting.set(number, { resolve, timer });
    });
  }

  /** The forwarder dropped its batches in flight: so does the consumer's window (they go again). */
  abandon(): void {
    const consumer = this.consumer;
    if (consumer !== null) this.fail(consumer, "the forwarder dropped the batches in flight");
  }

  committed(through: number): void {
    const consumer = this.consumer;
    if (consumer === null || through <= consumer.ackedNotice) return;
    consumer.ackedNotice = through;
    this.tell(consumer, { type: "acked", v: 1, through });
  }

  status(): TargetStatus {
    const c = this.consumer;
    const consumer = c === null ? null : { remote: c.socket.remote, connectedAtMs: c.connectedAtMs, sentThrough: c.window.sentThrough, ackedThrough: c.window.ackedThrough, batchesInFlight: c.window.batchesInFlight };
    return { type: "websocket", consumerConnected: c !== null, consumer };
  }

  alarm(): string | null {
    return null;
  }

  private ack(consumer: Consumer, through: number): void {
    if (consumer !== this.consumer) return; // replaced or gone: its acks no longer count here
    const result = consumer.window.ack(through);
    if (!result.ok) {
      this.tell(consumer, { type: "error", v: 1, message: result.error });
      this.end(consumer, consumerCloseCodes.protocolError, result.error);
      return;
    }
    for (const number of result.settled) {
      const waiter = consumer.waiting.get(number);
      consumer.waiting.delete(number);
      if (waiter === undefined) continue;
      clearTimeout(waiter.timer);
      waiter.resolve({ kind: "delivered" });
    }
  }

  private detach(consumer: Consumer): void {
    if (consumer !== this.consumer) return;
    this.consumer = null;
    this.fail(consumer, "consumer disconnected");
    this.options.log.info("consumer gone", { package: this.options.packageName, remote: consumer.socket.remote });
  }

  /** Fails every batch in flight (the forwarder sends them again later); the consumer stays. */
  private fail(consumer: Consumer, reason: string): void {
    consumer.window.abandon();
    for (const { resolve, timer } of consumer.waiting.values()) {
      clearTimeout(timer);
      resolve({ kind: "retry", reason });
    }
    consumer.waiting.clear();
  }

  private end(consumer: Consumer, code: number, reason: string): void {
    if (this.consumer === consumer) this.consumer = null;
    this.fail(consumer, reason);
    consumer.socket.close(code, reason);
  }

  /** A subscribe this target does not take: the consumer is told why, and closed. */
  private refuse(socket: ConsumerSocket, code: number, message: string): ConsumerSession {
    socket.send(encodeServerMessage({ type: "error", v: 1, message }));
    socket.close(code, message);
    return { ack: () => {}, detach: () => {} };
  }

  private tell(consumer: Consumer, message: ServerMessage): boolean {
    return consumer.socket.send(encodeServerMessage(message));
  }
}
