/**
 * @module Forwards one package's outbox to OMi while this node holds the package: a batch of the
 * undelivered events, then (on success) the cursor moved through Raft under the package's epoch.
 * A crash or failover between the two re-sends at most that one batch (OMi's keys and the
 * receiver's duplicate count absorb it); nothing is dropped: a refused batch raises an alarm in
 * status and is retried with backoff, like an unreachable OMi.
 */
import type { Logger } from "../../log/logger.ts";
import type { Group } from "../../node/group.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import { encodeCommand } from "../../state/command-codec.ts";
import { forwardingLimits } from "../../constants.ts";
import { retryDelayMs, sendToOmi, type OmiTarget } from "./omi-sender.ts";

export interface ForwarderOptions {
  readonly packageName: string;
  readonly epoch: number;
  readonly mayAct: () => boolean;
  readonly group: Group;
  readonly state: ReplicatedState;
  readonly target: OmiTarget | null;
  readonly log: Logger;
}

export interface ForwarderStatus {
  readonly delivered: number;
  readonly attempts: number;
  readonly lastError: string | null;
  /** A batch OMi refused (4xx): it stays first in line, retried, and shows here until it goes. */
  readonly alarm: string | null;
}

export class EventForwarder {
  private running = false;
  private delivered = 0;
  private attempts = 0;
  private lastError: string | null = null;
  private alarm: string | null = null;
  /** Sent to OMi through this sequence number, under this epoch; the cursor may still lag it. */
  private sentThrough = 0;
  private sentCount = 0;

  constructor(private readonly options: ForwarderOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
  }

  status(): ForwarderStatus {
    return { delivered: this.delivered, attempts: this.attempts, lastError: this.lastError, alarm: this.options.target === null ? "no omiTarget configured on this node" : this.alarm };
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
        this.lastError = (error as Error).message;
        pause = retryDelayMs(++failures, forwardingLimits.backoff, Math.random);
      }
      await Bun.sleep(pause);
    }
  }

  /**
   * One batch: send it unless it was sent already and only the cursor move failed, then move the
   * cursor. `sentThrough` is this epoch's own memory, so a failed proposal retries the proposal
   * (with backoff), not the delivery.
   */
  private async step(): Promise<"idle" | "progress" | "failed" | "stale"> {
    const { packageName, state, target } = this.options;
    if (!this.running || target === null || !this.options.mayAct()) return "idle";
    const cursor = state.outbox.status().find((s) => s.package === packageName)?.cursor ?? 0;
    if (this.sentThrough <= cursor) {
      const batch = state.outbox.pending(packageName, cursor, forwardingLimits.batchEventsMax);
      if (batch.length === 0) return "idle";
      this.attempts++;
      const outcome = await sendToOmi(target, batch.map((e) => e.event));
      if (outcome.kind !== "delivered") {
        this.lastError = outcome.reason;
        if (outcome.kind === "refused") this.alarm = `OMi refused a batch of ${batch.length} (first ${batch[0]!.id}): ${outcome.reason}`;
        this.options.log.warn("forwarding failed; will retry", { package: packageName, outcome });
        return "failed";
      }
      this.alarm = null;
      this.sentThrough = batch.at(-1)!.seq;
      this.sentCount = batch.length;
    }
    if (!this.running) return "idle";
    return this.advance();
  }

  private async advance(): Promise<"progress" | "failed" | "stale"> {
    const { packageName, epoch, group } = this.options;
    try {
      const { index, result } = await group.propose(encodeCommand({ kind: "outbox", op: { op: "forwarded", package: packageName, epoch, through: this.sentThrough } }));
      if (!result.ok) {
        this.lastError = result.error;
        return result.error.startsWith("stale epoch") ? "stale" : "failed";
      }
      // Read the next batch only from a state that has the cursor moved.
      await group.waitApplied(index);
      this.delivered += this.sentCount;
      return "progress";
    } catch (error) {
      this.lastError = (error as Error).message;
      return "failed";
    }
  }
}
