/**
 * @module What one subscribed WebSocket consumer has and what it still owes an ack for. Pure.
 *
 * Acks are cumulative: `through` says the consumer has every event up to that sequence number. So
 * its `after` at subscribe (events it kept from an earlier connection, perhaps to another holder)
 * and every ack raise one watermark, `ackedThrough`; events at or below it are never sent to this
 * consumer again. A batch counts as delivered once an ack covers its last event; an ack into the
 * middle of a batch is kept (the rest is what a re-send carries) but does not settle it.
 *
 * A cumulative ack is only safe if the consumer's stream has no gap: so each batch must continue
 * right after the last event sent (`continues`), or right after the committed cursor when that is
 * further (events up to the cursor were delivered, to this consumer or one before it, and are gone
 * from the outbox). Abandoned batches go again, so the next one continues after the watermark. An
 * ack beyond the last event ever sent on this connection is a broken consumer, not a number to
 * trust; a late ack of an abandoned batch is not: the consumer did get those events, in order.
 */
import { assert } from "../../assert.ts";
import type { OutboxEntry } from "../../state/outbox-types.ts";

export interface SentBatch {
  readonly batch: number;
  readonly first: number;
  readonly last: number;
}

export type AckResult = { readonly ok: true; readonly settled: readonly number[] } | { readonly ok: false; readonly error: string };

export class AckWindow {
  private acked: number;
  /** The next batch continues after this: the last event sent and not abandoned. acked <= sent. */
  private sent: number;
  /** Highest sequence number sent on this connection, abandoned batches included. sent <= ackable. */
  private ackable: number;
  private nextBatch = 1;
  /** Oldest first, contiguous, all after `acked`; the last one ends at `sent`. */
  private readonly inFlight: SentBatch[] = [];

  constructor(
    after: number,
    private readonly inFlightMax: number,
  ) {
    assert(Number.isSafeInteger(after) && after >= 0, "after is a sequence number");
    assert(Number.isInteger(inFlightMax) && inFlightMax >= 1, "at least one batch may be in flight");
    this.acked = after;
    this.sent = after;
    this.ackable = after;
  }

  get ackedThrough(): number {
    return this.acked;
  }

  get sentThrough(): number {
    return this.sent;
  }

  /** The number `open` gives the next batch. */
  get nextBatchNumber(): number {
    return this.nextBatch;
  }

  get batchesInFlight(): number {
    return this.inFlight.length;
  }

  /** The entries of a batch this consumer does not have yet (those after its watermark). */
  lacking(entries: readonly OutboxEntry[]): readonly OutboxEntry[] {
    let from = 0;
    while (from < entries.length && entries[from]!.seq <= this.acked) from++;
    return from === 0 ? entries : entries.slice(from);
  }

  /** Whether a batch from `first` leaves no gap in what the consumer has, given the committed `cursor`. */
  continues(first: number, cursor: number): boolean {
    assert(Number.isSafeInteger(cursor) && cursor >= 0, "cursor is a sequence number");
    return first === Math.max(this.sent, cursor) + 1;
  }

  /** Records a batch about to be sent; returns its number (1, 2, ... per consumer). */
  open(first: number, last: number): number {
    assert(first > this.acked && last >= first, () => `batch ${first}..${last} must lie after the consumer's watermark ${this.acked}`);
    assert(first > this.sent, () => `batch ${first}..${last} overlaps what was sent (through ${this.sent})`);
    assert(this.inFlight.length < this.inFlightMax, () => `at most ${this.inFlightMax} batches in flight`);
    const batch = this.nextBatch++;
    this.inFlight.push({ batch, first, last });
    this.sent = last;
    this.ackable = Math.max(this.ackable, last);
    return batch;
  }

  /** An ack through `through`: the batches it settles, oldest first, or why it is a protocol error. */
  ack(through: number): AckResult {
    if (!Number.isSafeInteger(through) || through < 0) return { ok: false, error: "through must be a sequence number" };
    if (through > this.ackable) return { ok: false, error: `ack through ${through} is beyond the last event sent (${this.ackable})` };
    this.acked = Math.max(this.acked, through);
    // A late ack of an abandoned batch: the next batch continues after it.
    this.sent = Math.max(this.sent, this.acked);
    let settledCount = 0;
    while (settledCount < this.inFlight.length && this.inFlight[settledCount]!.last <= this.acked) settledCount++;
    const settled = this.inFlight.splice(0, settledCount).map((b) => b.batch);
    assert(this.acked <= this.sent && this.sent <= this.ackable, "a consumer never has more than was sent");
    return { ok: true, settled };
  }

  /** Forgets the batches in flight (they failed, and go again from the watermark); returns their numbers. */
  abandon(): readonly number[] {
    this.sent = this.acked;
    return this.inFlight.splice(0).map((b) => b.batch);
  }
}
