/**
 * @module Forwards one package's outbox to its target while this node holds the package: batches
 * of undelivered events through the ForwardTarget interface (OMi, webhook or WebSocket consumer:
 * forward-target.ts), then, for each delivered batch, the cursor moved through Raft under the
 * package's epoch. A crash or failover between the two re-sends at most the batches in flight
 * (receivers see the same ids again); nothing is dropped silently. What a refusal calls for is
 * decided in refusal.ts: a refusal of the batch's content (400, 413, 415, 422) halves the batch
 * until the refused event stands alone, and that one moves to the package's dead letters through
 * Raft (under the epoch, like a cursor move), so one poison event does not block the rest; any
 * other refusal (credentials, URL, a redirect) raises an alarm in status and is retried with
 * backoff, like an unreachable target.
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
import { deadLetterLimits, forwardingLimits } from "../../constants.ts";
import { AssertionError, assert, unreachable } from "../../assert.ts";
import { retryDelayMs } from "./omi-sender.ts";
import type { ForwardTarget, SendOutcome, TargetStatus } from "./forward-target.ts";
import { batchEventsAfter, decideBatch, poisonRunMax, refusalBlame } from "./refusal.ts";

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
  /** Events per batch now: below the normal size while a refused batch is being bisected. */
  readonly batchEventsMax: number;
  /** Events this forwarder moved to the dead letters (the package's total is in the outbox status). */
  readonly deadLettered: number;
}

interface InFlight {
  readonly first: number;
  readonly last: number;
  readonly count: number;
  readonly outcome: Promise<SendOutcome>;
  settled: SendOutcome | null;
}

/** "bisect": a smaller batch goes next, at once (no backoff: the refusal was about the content). */
type Step = "idle" | "progress" | "failed" | "stale" | "bisect";

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
  private readonly normalBatchEvents: number;
  /** Events per batch now (refusal.ts); 1 <= batchEvents <= normalBatchEvents. */
  private batchEvents: number;
  private deadLettered = 0;
  /** Events dead-lettered since the last delivery (refusal.ts: a long run blames the target). */
  private poisonRun = 0;

  constructor(private readonly options: ForwarderOptions) {
    this.normalBatchEvents = options.batchEventsMax ?? forwardingLimits.batchEventsMax;
    assert(this.normalBatchEvents >= 1, "a batch holds at least one event");
    this.batchEvents = this.normalBatchEvents;
  }

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
    return {
      target: target.status(),
      delivered: this.delivered,
      attempts: this.attempts,
      batchesInFlight: this.inFlight.length,
      lastError: this.lastError,
      alarm: this.alarm ?? target.alarm(),
      batchEventsMax: this.batchEvents,
      deadLettered: this.deadLettered,
    };
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
        if (step === "bisect") continue; // bounded: each halves the batch, down to one event
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
    if (outcome.kind !== "delivered") return this.handleFailure(head, outcome);
    this.alarm = null;
    this.poisonRun = 0;
    this.batchEvents = batchEventsAfter({ kind: "advance" }, { current: this.batchEvents, normal: this.normalBatchEvents });
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

  /** The oldest batch was not delivered: retry, alarm, bisect or dead-letter, as its outcome calls for (refusal.ts). */
  private async handleFailure(head: InFlight, outcome: Exclude<SendOutcome, { kind: "delivered" }>): Promise<Step> {
    const { packageName, target, log } = this.options;
    this.dropInFlight();
    this.lastError = outcome.reason;
    const decision = decideBatch(outcome, head, this.poisonRun);
    this.batchEvents = batchEventsAfter(decision, { current: this.batchEvents, normal: this.normalBatchEvents });
    const refused = `the ${target.type} target refused a batch of ${head.count} (seq ${head.first}..${head.last}): ${outcome.reason}`;
    assert(decision.kind !== "advance", "an outcome other than delivered never advances the cursor");
    switch (decision.kind) {
      case "retry":
        log.warn("forwarding failed; will retry", { package: packageName, target: target.type, outcome });
        return "failed";
      case "alarm":
        this.alarm = this.poisonRun >= poisonRunMax && outcome.kind === "refused" && refusalBlame(outcome.status) === "content" ? `${refused}; ${this.poisonRun} events in a row were refused on their own: the target seems to refuse everything, so nothing more is dead-lettered until an event goes through` : refused;
        log.warn("forwarding refused; will retry", { package: packageName, target: target.type, outcome });
        return "failed";
      case "bisect":
        this.alarm = `${refused}; sending at most ${this.batchEvents} events at a time to isolate the refused event(s)`;
        log.warn("batch refused for its content; bisecting", { package: packageName, target: target.type, first: head.first, count: head.count, outcome });
        return "bisect";
      case "dead-letter":
        assert(outcome.kind === "refused", "only a refusal makes a dead letter");
        this.alarm = `${refused}; moving it to the dead letters`; // stays up if the move does not commit
        return this.moveToDeadLetters(decision.seq, { status: outcome.status, message: outcome.reason.slice(0, deadLetterLimits.reasonCharsMax) });
      default:
        return unreachable(decision);
    }
  }

  /**
   * The event the target refused on its own leaves the outbox for the dead letters (Raft op under
   * this epoch; the state machine takes it only as the first undelivered event), and the cursor
   * steps over it: the events behind it go on.
   */
  private async moveToDeadLetters(seq: number, reason: { status: number; message: string }): Promise<Step> {
    const { packageName, epoch, group, target, log } = this.options;
    try {
      const { index, result } = await group.propose(encodeCommand({ kind: "outbox", op: { op: "dead-letter", package: packageName, epoch, seq, atMs: Date.now(), reason } }));
      if (!result.ok) {
        this.lastError = result.error;
        return result.error.startsWith("stale epoch") ? "stale" : "failed";
      }
      await group.waitApplied(index);
      this.deadLettered++;
      this.poisonRun++;
      // The refused event is dealt with (status counts the package's dead letters); nothing is blocked.
      this.alarm = null;
      target.committed(seq);
      log.warn("event moved to the dead letters: the target refused it on its own", { package: packageName, target: target.type, seq, reason });
      return "progress";
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      this.lastError = (error as Error).message;
      return "failed";
    }
  }

  /** Sends batches after the last one in flight (or the cursor) until the window is full. */
  private fill(cursor: number): void {
    const { packageName, state, target } = this.options;
    // A batch in flight failed: the window goes again from the cursor once the failure reaches the head.
    if (this.failureInFlight() !== null) return;
    let after = this.inFlight.at(-1)?.last ?? cursor;
    while (this.inFlight.length < target.batchesInFlightMax) {
      const batch = state.outbox.pending(packageName, after, this.batchEvents, forwardingLimits.batchBytesMax);
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
