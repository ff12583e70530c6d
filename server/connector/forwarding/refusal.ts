/**
 * @module What the forwarder does with the outcome of its oldest batch (pure; table-tested in
 * test/connector/forwarding/refusal.test.ts). A refusal either says "this content" (400, 413, 415,
 * 422: something in the batch is unacceptable, or the batch is too large) or "this target or its
 * configuration" (401, 403, 404, 405, 410, a redirect, any other 4xx): sending other events will not
 * help, so only the first kind is narrowed down.
 *
 * Narrowing is a bisect: a refused batch of n events is followed by its first half (at most n/2
 * events), and so on while refused, so one poison event among n costs about log2(n) refusals. A
 * single event refused on its own is poison: it goes to the dead letters (a Raft op, outbox.ts),
 * so the events behind it are no longer blocked. A batch that goes through restores the normal
 * size. A "target" refusal keeps the alarm-and-backoff of every refused batch: bisecting it would
 * dead-letter the whole backlog because of, say, a wrong password. For the same reason a run of
 * poison events with no delivery between them (`poisonRunMax`) is taken for a target that refuses
 * everything with a content status (a misconfigured endpoint answering 400 to all): alarm and
 * back off, dead-letter nothing more, until something goes through.
 */
import { assert, unreachable } from "../../assert.ts";
import type { SendOutcome } from "./forward-target.ts";

/** Poison events in a row, with no delivery between them, before the target itself is suspected. */
export const poisonRunMax = 3;

/** The statuses that blame the batch's content, not the target or how it is configured. */
const contentStatuses: ReadonlySet<number> = new Set([400, 413, 415, 422]);

export type RefusalBlame = "content" | "target";

export function refusalBlame(status: number): RefusalBlame {
  return contentStatuses.has(status) ? "content" : "target";
}

export type BatchDecision =
  /** Delivered: the cursor moves over the batch. */
  | { readonly kind: "advance" }
  /** Not delivered, worth the same batch again after a backoff (network, timeout, 408, 429, 5xx). */
  | { readonly kind: "retry" }
  /** Refused because of the target or its configuration: alarm, back off, send the same batch again. */
  | { readonly kind: "alarm" }
  /** Refused content, more than one event: send at most `batchEventsMax` (half) next, at once. */
  | { readonly kind: "bisect"; readonly batchEventsMax: number }
  /** Refused content, one event: it is poison; move it to the dead letters. */
  | { readonly kind: "dead-letter"; readonly seq: number };

/**
 * `batch`: the oldest batch in flight, whose outcome this is (first seq and number of events).
 * `poisonRun`: events dead-lettered since the last delivery.
 */
export function decideBatch(outcome: SendOutcome, batch: { readonly first: number; readonly count: number }, poisonRun = 0): BatchDecision {
  assert(Number.isSafeInteger(batch.count) && batch.count >= 1, "a batch holds at least one event");
  assert(Number.isSafeInteger(batch.first) && batch.first >= 1, "sequence numbers start at 1");
  switch (outcome.kind) {
    case "delivered":
      return { kind: "advance" };
    case "retry":
      return { kind: "retry" };
    case "refused":
      if (refusalBlame(outcome.status) === "target" || poisonRun >= poisonRunMax) return { kind: "alarm" };
      if (batch.count === 1) return { kind: "dead-letter", seq: batch.first };
      return { kind: "bisect", batchEventsMax: Math.floor(batch.count / 2) };
    default:
      return unreachable(outcome);
  }
}

/**
 * Events per batch after `decision`: normal again once a batch goes through, half the refused batch
 * while bisecting, unchanged otherwise (after a dead letter too: the next event may be poison as well,
 * and a single one that goes through restores the normal size at once).
 */
export function batchEventsAfter(decision: BatchDecision, sizes: { readonly current: number; readonly normal: number }): number {
  assert(sizes.current >= 1 && sizes.current <= sizes.normal, "the batch size lies between 1 and the normal size");
  let next: number;
  if (decision.kind === "advance") next = sizes.normal;
  else if (decision.kind === "bisect") next = Math.min(decision.batchEventsMax, sizes.current);
  else next = sizes.current;
  assert(next >= 1 && next <= sizes.normal, "the batch size stays between 1 and the normal size");
  return next;
}
