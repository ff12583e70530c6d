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
    const { packageName, state, target } = this.options;
    let failures = 0;
    // Bounded by `running`: stop() ends it at the next turn.
    while (this.running) {
      const cursor = state.outbox.status().find((s) => s.package === packageName)?.cursor ?? 0;
      const batch = target === null || !this.options.mayAct() ? [] : state.outbox.pending(packageName, cursor, forwardingLimits.batchEventsMax);
      if (batch.length === 0) {
        await Bun.sleep(forwardingLimits.idlePollMs);
        continue;
      }
      this.attempts++;
      const outcome = await sendToOmi(target!, batch.map((e) => e.event));
      if (outcome.kind === "delivered") {
        failures = 0;
        this.alarm = null;
        await this.advance(batch.at(-1)!.seq, batch.length);
        continue;
      }
      failures++;
      this.lastError = outcome.reason;
      if (outcome.kind === "refused") this.alarm = `OMi refused a batch of ${batch.length} (first ${batch[0]!.id}): ${outcome.reason}`;
      this.options.log.warn("forwarding failed; will retry", { package: packageName, outcome });
      await Bun.sleep(retryDelayMs(failures, forwardingLimits.backoff, Math.random));
    }
  }

  private async advance(through: number, count: number): Promise<void> {
    const { packageName, epoch, group } = this.options;
    try {
      const { index, result } = await group.propose(encodeCommand({ kind: "outbox", op: { op: "forwarded", package: packageName, epoch, through } }));
      if (!result.ok) {
        this.lastError = result.error;
        return;
      }
      // Read the next batch only from a state that has the cursor moved.
      await group.waitApplied(index);
      this.delivered += count;
    } catch (error) {
      // Not recorded: the batch goes again (at most one batch re-sent per failure).
      this.lastError = (error as Error).message;
    }
  }
}
