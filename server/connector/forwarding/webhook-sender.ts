/**
 * @module The generic JSON webhook target (`forward: { type: webhook, url, headers?,
 * authorizationEnv? }`): one POST per batch, `{"package": ..., "events": [{"id", "seq", "event"}]}`
 * as application/json, with the configured headers and, when authorizationEnv names a variable set
 * on this node, its value as the Authorization header. Outcomes as for OMi (http-batch.ts): 2xx
 * delivered; network error, timeout, 408, 429, 5xx retried; any other 4xx or a redirect refused.
 *
 * Receivers get at-least-once delivery: a failover or a lost answer re-sends a batch, with the same
 * ids and sequence numbers, so a receiver that remembers the ids (or the highest seq) it has seen
 * drops the duplicates.
 */
import type { OutboxEntry } from "../../state/outbox-types.ts";
import { assert } from "../../assert.ts";
import { postBatch } from "./http-batch.ts";
import type { ForwardTarget, SendOutcome, TargetStatus } from "./forward-target.ts";

export interface WebhookTarget {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The Authorization header's value, read from the environment on this node. */
  readonly authorization?: string;
  readonly timeoutMs: number;
}

/** The request body for one batch; ids and seqs are stable across re-sends. */
export function webhookBody(packageName: string, batch: readonly OutboxEntry[]): string {
  return JSON.stringify({ package: packageName, events: batch.map((e) => ({ id: e.id, seq: e.seq, event: e.event })) });
}

export function sendToWebhook(target: WebhookTarget, packageName: string, batch: readonly OutboxEntry[]): Promise<SendOutcome> {
  assert(batch.length > 0, "a batch holds at least one event");
  // The model refuses the names set here, so configured headers cannot override them.
  const headers: Record<string, string> = { ...target.headers, "content-type": "application/json" };
  if (target.authorization !== undefined) headers["authorization"] = target.authorization;
  return postBatch({ url: target.url, headers, body: webhookBody(packageName, batch), timeoutMs: target.timeoutMs, redirectHint: `fix package ${packageName}'s forward.url` });
}

export interface WebhookForwardTargetOptions {
  readonly packageName: string;
  readonly target: WebhookTarget;
  /** Why this node cannot send (authorizationEnv names a variable that is not set here), or null. */
  readonly problem: string | null;
}

export class WebhookForwardTarget implements ForwardTarget {
  readonly type = "webhook";
  readonly batchesInFlightMax = 1;

  constructor(private readonly options: WebhookForwardTargetOptions) {}

  start(): void {}

  stop(): void {}

  send(batch: readonly OutboxEntry[]): Promise<SendOutcome> {
    // Without its credentials the POST would only be refused; wait for the node to be fixed.
    if (this.options.problem !== null) return Promise.resolve({ kind: "retry", reason: this.options.problem });
    return sendToWebhook(this.options.target, this.options.packageName, batch);
  }

  /** Nothing to forget: one POST at a time, and it has settled when the forwarder drops it. */
  abandon(): void {}

  committed(): void {}

  status(): TargetStatus {
    return { type: "webhook", url: this.options.target.url };
  }

  alarm(): string | null {
    return this.options.problem;
  }
}
