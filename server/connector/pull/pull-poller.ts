/**
 * @module A pull policy at work: polls its HTTP source every `intervalSec` while its package is
 * active here. Before each poll it asks `mayAct()` (lease valid, epoch current), so a node whose
 * lease lapsed stops at the next poll, not at the next reconcile. Each request names the node,
 * package and epoch in headers, so a source (or a test) can tell who acted and under which token.
 *
 * What a poll returns goes to `onData` (the event, metric and topology pipelines plug in there).
 */
import type { PullPolicy } from "../../config/model/types.ts";
import type { Logger } from "../../log/logger.ts";

export interface PollerContext {
  readonly nodeId: string;
  readonly packageName: string;
  readonly epoch: number;
  readonly mayAct: () => boolean;
  readonly log: Logger;
  readonly onData?: (body: string, policy: PullPolicy) => void;
}

export interface PollerStatus {
  readonly policy: string;
  readonly polls: number;
  readonly failures: number;
  readonly lastPollAtMs: number | null;
  readonly lastError: string | null;
}

export class PullPoller {
  private timer: ReturnType<typeof setInterval> | null = null;
  private inFlight: AbortController | null = null;
  private polls = 0;
  private failures = 0;
  private lastPollAtMs: number | null = null;
  private lastError: string | null = null;

  constructor(
    private readonly policy: PullPolicy,
    private readonly context: PollerContext,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.poll(), this.policy.intervalSec * 1000);
    void this.poll();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.inFlight?.abort();
    this.inFlight = null;
  }

  status(): PollerStatus {
    return { policy: this.policy.name, polls: this.polls, failures: this.failures, lastPollAtMs: this.lastPollAtMs, lastError: this.lastError };
  }

  private async poll(): Promise<void> {
    // One poll at a time, and only under a valid lease.
    if (this.timer === null || this.inFlight !== null || !this.context.mayAct()) return;
    const controller = new AbortController();
    this.inFlight = controller;
    const timeout = setTimeout(() => controller.abort(), this.policy.timeoutSec * 1000);
    this.lastPollAtMs = Date.now();
    this.polls++;
    try {
      const response = await fetch(this.policy.url, {
        signal: controller.signal,
        headers: { "x-opsconn-node": this.context.nodeId, "x-opsconn-package": this.context.packageName, "x-opsconn-epoch": String(this.context.epoch) },
      });
      const body = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.lastError = null;
      // The fetch may have outlived the lease: hand nothing on unless it is still valid.
      if (this.context.mayAct()) this.context.onData?.(body, this.policy);
    } catch (error) {
      this.failures++;
      this.lastError = (error as Error).message;
      this.context.log.debug("poll failed", { policy: this.policy.name, error: this.lastError });
    } finally {
      clearTimeout(timeout);
      this.inFlight = null;
    }
  }
}
