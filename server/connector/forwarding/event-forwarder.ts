/**
 * @module Forwards one package's outbox to its target while this node holds the package: batches
 * of undelivered events through the ForwardTarget interface (OMi, webhook or WebSocket consumer:
 * forward-target.ts), then, for each delivered batch, the cursor moved through Raft under the
 * package's epoch. A crash or failover between the two re-sends at most the batches in flight
 * (receivers see the same ids again); nothing is dropped: a refused batch raises an alarm in status
 * and is retried with backoff, like an unreachable target.
 *
 * Up to `target.batchesInFlightMax` batches are out at once (1 for HTTP targets, a few for a
 * WebSocket consumer, whose acks arrive while the previous cursor move commits), each starting
 * right after the one before it. Outcomes are taken oldest first, so the cursor only ever moves
 * over a gap-free prefix; when one fails, the rest in flight are dropped and go again from the
 * cursor, and the target is told (`abandon`), so a consumer's ack window drops them too. Nothing
 * is sent after a batch that has failed: the receiver would get events beyond a gap.
 *
 * A batch holds at most forwardingLimits.batchEventsMax events and about batchBytesMax bytes.
 */
import type { Logger } from "../../log/logger.ts";
import type { Group } from "../../node/group.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import { encodeCommand } from "../../state/command-codec.ts";
import { forwardingLimits } from "../../constants.ts";
import { AssertionError, assert } from "../../assert.ts";
import { retryDelayMs } from "./omi-sender.ts";
import type { ForwardTarget, SendOutcome, TargetStatus } from "./forward-target.ts";

export interface ForwarderOptions {
  readonly packageName: string;
  readonly epoch: number;
  readonly mayAct: () => boolean;
  readonly group: Group;
  readonly state: ReplicatedState;
  readonly target: ForwardTarget;
  readonly log: Logger;
  /** Tests use smaller batches; production uses forwardingLimits.batchEventsMax. */
  readonly batchEventsMax?: number;
}

export interface ForwarderStatus {
  readonly target: TargetStatus;
  readonly delivered: number;
  readonly attempts: number;
  readonly batchesInFlight: number;
  readonly lastError: string | null;
  /** A batch the target refused (4xx), or a target this node cannot use: shows here until it goes. */
  readonly alarm: string | null;
}

interface InFlight {
  readonly first: number;
  readonly last: number;
  readonly count: number;
  readonly outcome: Promise<SendOutcome>;
  settled: SendOutcome | null;
}

type Step = "idle" | "progress" | "failed" | "stale";

export class EventForwarder {
  private running = false;
  private started = false;
  private delivered = 0;
  private attempts = 0;
  private lastError: string | null = null;
  private alarm: string | null = null;
  /** Delivered through this sequence number, under this epoch; the cursor may still lag it. */
  private deliveredThrough = 0;
  private deliveredCount = 0;
  /** Oldest first, contiguous: each batch starts after the previous one's last event. */
  private inFlight: InFlight[] = [];
  private wakeSleep: (() => void) | null = null;

  constructor(private readonly options: ForwarderOptions) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.running = true;
    const { packageName, state } = this.options;
    this.options.target.start({ wake: () => this.wakeSleep?.(), lastSeq: () => state.outbox.lastSeq(packageName) });
    void this.loop();
  }

  stop(): void {
    this.running = false;
    // Settles whatever the loop awaits from the target, so the loop ends now.
    this.options.target.stop();
    this.wakeSleep?.();
  }

  status(): ForwarderStatus {
    const { target } = this.options;
    return { target: target.status(), delivered: this.delivered, attempts: this.attempts, batchesInFlight: this.inFlight.length, lastError: this.lastError, alarm: this.alarm ?? target.alarm() };
  }

  private async loop(): Promise<void> {
    let failures = 0;
    // Bounded by `running`: stop() ends it at the next turn.
    while (this.running) {
      let pause: number = forwardingLimits.idlePollMs;
      try {
        const step = await this.step();
        if (step === "progress") {
          failures = 0;
          continue;
        }
        if (step === "stale") {
          this.running = false; // a newer holder owns the package now
          break;
        }
        if (step === "failed") pause = retryDelayMs(++failures, forwardingLimits.backoff, Math.random);
      } catch (error) {
        if (error instanceof AssertionError) throw error;
        this.dropInFlight();
        this.lastError = (error as Error).message;
        pause = retryDelayMs(++failures, forwardingLimits.backoff, Math.random);
      }
      await this.sleep(pause);
    }
    this.options.target.stop();
  }

  /**
   * One turn: move the cursor if a delivery is not yet committed (a failed proposal retries the
   * proposal, with backoff, not the delivery); else fill the window and take the oldest outcome.
   */
  private async step(): Promise<Step> {
    const { packageName, state, target } = this.options;
    if (!this.running || !this.options.mayAct()) return "idle";
    const standing = target.alarm();
    if (standing !== null) {
      this.lastError = standing; // nothing can be sent until the node is fixed; events wait
      return "idle";
    }
    const cursor = state.outbox.status().find((s) => s.package === packageName)?.cursor ?? 0;
    if (this.deliveredThrough > cursor) return this.advance();
    this.fill(cursor);
    const head = this.inFlight[0];
    if (head === undefined) return "idle";
    const outcome = await head.outcome;
    if (!this.running) return "idle";
    if (outcome.kind !== "delivered") {
      this.dropInFlight();
      this.lastError = outcome.reason;
      if (outcome.kind === "refused") this.alarm = `the ${target.type} target refused a batch of ${head.count} (seq ${head.first}..${head.last}): ${outcome.reason}`;
      this.options.log.warn("forwarding failed; will retry", { package: packageName, target: target.type, outcome });
      return "failed";
    }
    this.alarm = null;
    this.takeDelivered();
    // A later batch already failed (its consumer was replaced, say): the rest go again from the
    // cursor once this delivery is committed; kept, they would only fill the window behind a gap.
    const failure = this.failureInFlight();
    if (failure !== null) {
      this.lastError = failure;
      this.dropInFlight();
    }
    return this.advance();
  }

  /** Sends batches after the last one in flight (or the cursor) until the window is full. */
  private fill(cursor: number): void {
    const { packageName, state, target } = this.options;
    // A batch in flight failed: the window goes again from the cursor once the failure reaches the head.
    if (this.failureInFlight() !== null) return;
    let after = this.inFlight.at(-1)?.last ?? cursor;
    while (this.inFlight.length < target.batchesInFlightMax) {
      const batch = state.outbox.pending(packageName, after, this.options.batchEventsMax ?? forwardingLimits.batchEventsMax, forwardingLimits.batchBytesMax);
      if (batch.length === 0) return;
      assert(batch[0]!.seq > after, "pending returns entries after the given sequence number");
      this.attempts++;
      const entry: InFlight = { first: batch[0]!.seq, last: batch.at(-1)!.seq, count: batch.length, outcome: this.sendSafely(batch), settled: null };
      void entry.outcome.then((o) => (entry.settled = o));
      this.inFlight.push(entry);
      after = entry.last;
    }
  }

  private sendSafely(batch: Parameters<ForwardTarget["send"]>[0]): Promise<SendOutcome> {
    return this.options.target.send(batch).catch((error: unknown) => {
      if (error instanceof AssertionError) throw error;
      return { kind: "retry", reason: (error as Error).message };
    });
  }

  /** Why a batch in flight has already failed, or null. */
  private failureInFlight(): string | null {
    for (const entry of this.inFlight) if (entry.settled !== null && entry.settled.kind !== "delivered") return entry.settled.reason;
    return null;
  }

  /** Forgets every batch in flight, here and in the target: they go again from the cursor. */
  private dropInFlight(): void {
    this.inFlight = [];
    this.options.target.abandon();
  }

  /** The delivered head, and every batch after it that is already delivered too: one cursor move covers them. */
  private takeDelivered(): void {
    for (let first = true; this.inFlight.length > 0; first = false) {
      const head = this.inFlight[0]!;
      if (!first && head.settled?.kind !== "delivered") return;
      this.inFlight.shift();
      this.deliveredThrough = head.last;
      this.deliveredCount += head.count;
    }
  }

  private async advance(): Promise<"progress" | "failed" | "stale"> {
    const { packageName, epoch, group, target } = this.options;
    const through = this.deliveredThrough;
    try {
      const { index, result } = await group.propose(encodeCommand({ kind: "outbox", op: { op: "forwarded", package: packageName, epoch, through } }));
      if (!result.ok) {
        this.lastError = result.error;
        return result.error.startsWith("stale epoch") ? "stale" : "failed";
      }
      // Read the next batch only from a state that has the cursor moved.
      await group.waitApplied(index);
      this.delivered += this.deliveredCount;
      this.deliveredCount = 0;
      target.committed(through);
      return "progress";
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      this.lastError = (error as Error).message;
      return "failed";
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeSleep = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeSleep = done;
    });
  }
}
