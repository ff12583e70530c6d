/**
 * @module The one interface the forwarder delivers through, whatever the package's target is: OMi's
 * event web service (omi-sender.ts), a generic JSON webhook (webhook-sender.ts) or a consumer
 * subscribed over WebSocket (websocket-target.ts). The forwarder (event-forwarder.ts) owns the
 * order, the retries and the cursor; a target only says what became of one batch.
 *
 * Outcomes mean the same for every target: `delivered` moves the cursor (through Raft, under the
 * holder's epoch), `retry` keeps the batch first in line and backs off, `refused` says sending the
 * same batch again will not help: by its status (refusal.ts) the forwarder either narrows the batch
 * down to the refused event and moves that one to the dead letters (the content is refused), or
 * raises an alarm and backs off until someone acts (the target or its configuration is wrong).
 */
import type { ForwardType } from "../../config/model/types.ts";
import type { OutboxEntry } from "../../state/outbox-types.ts";

export type SendOutcome =
  /** `status` is the HTTP status of the answer, for targets that speak HTTP. */
  | { readonly kind: "delivered"; readonly status?: number }
  | { readonly kind: "retry"; readonly reason: string }
  | { readonly kind: "refused"; readonly status: number; readonly reason: string };

/** What a WebSocket consumer looks like from the holder, for status. */
export interface ConsumerStatus {
  readonly remote: string;
  readonly connectedAtMs: number;
  /**
   * Highest sequence number sent to this consumer and not abandoned (or the `after` it subscribed
   * with): the next batch starts right after it (or after the cursor).
   */
  readonly sentThrough: number;
  /** The consumer has everything through this (its `after`, then its acks). */
  readonly ackedThrough: number;
  readonly batchesInFlight: number;
}

export type TargetStatus =
  | { readonly type: "omi"; readonly url: string | null }
  | { readonly type: "webhook"; readonly url: string }
  | { readonly type: "websocket"; readonly consumerConnected: boolean; readonly consumer: ConsumerStatus | null };

/** What the forwarder gives its target at start. */
export interface TargetHooks {
  /** Ends the forwarder's backoff pause at once: the target can take a batch now (a consumer subscribed). */
  readonly wake: () => void;
  /** The highest sequence number accepted for the package in this node's state (0 before the first). */
  readonly lastSeq: () => number;
}

export interface ForwardTarget {
  readonly type: ForwardType;
  /**
   * Batches the forwarder may have sent and not yet settled. 1 for HTTP targets: a POST that fails
   * must not be overtaken by the next one, or the receiver would see events out of order.
   */
  readonly batchesInFlightMax: number;
  /** The forwarder starts (once) and stops the target with itself. */
  start(hooks: TargetHooks): void;
  stop(): void;
  /**
   * Delivers one batch: undelivered outbox entries, in sequence order, at least one. Each batch
   * starts right after the previous one still in flight, or right after the cursor.
   */
  send(batch: readonly OutboxEntry[]): Promise<SendOutcome>;
  /**
   * The forwarder dropped every batch in flight (one failed; they go again from the cursor): the
   * target forgets them too, so what it tracks per receiver stays in step with the forwarder.
   */
  abandon(): void;
  /** The package's cursor is committed through `through` (the forwarder's Raft move applied). */
  committed(through: number): void;
  status(): TargetStatus;
  /** A standing problem of this target on this node (missing configuration), shown as an alarm. */
  alarm(): string | null;
}
