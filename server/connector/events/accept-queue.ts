/**
 * @module Group commit for the event listener: requests for one package that arrive on this node in
 * the same turn of the event loop go to the group as one outbox entry (one proposal, one log entry,
 * one apply on every node) instead of one each. Each request stays its own segment of the entry, all
 * or nothing on its own, and is answered only once the entry is committed and applied, exactly as
 * if it had gone alone. Under load many requests share an entry; an idle node proposes at once
 * (the flush runs on the next turn, so a lone request waits for nothing).
 *
 * The same idea as the Raft driver's group commit of fsyncs, one level up: the per-entry costs
 * (forwarding to the leader, the entry's row, its apply on three nodes) are paid once per batch.
 *
 * A node keeps at most acceptBatching.inFlightEventsMax events proposed and not yet applied; the
 * rest wait here and go as the next entries once room frees. The Raft log is one FIFO queue, so
 * this bound is what lets a cursor move or lease renewal commit within a turn or two of the
 * pipeline during an ingest burst instead of behind megabytes of events (forwarding kept pace
 * with nothing otherwise). Waiting requests are bounded in bytes; past it, 503 and retry.
 * Packages take turns: one that got room goes to the back of the line.
 */
import { AssertionError, assert } from "../../assert.ts";
import { acceptBatching } from "../../constants.ts";
import type { Group } from "../../node/group.ts";
import { NotLeaderError, ProposalDroppedError } from "../../node/driver-errors.ts";
import { encodeCommand } from "../../state/command-codec.ts";
import type { AcceptSegment, SegmentResult } from "../../state/outbox-types.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";

export type AcceptOutcome =
  | SegmentResult
  /** The package is no longer deployed (the whole entry was refused by the state machine). */
  | { readonly ok: false; readonly error: string; readonly notDeployed: true }
  /** Committed, but this node cannot read the ids back (its state was replaced by a snapshot meanwhile). */
  | { readonly ok: false; readonly error: string; readonly lost: true };

interface Waiting {
  readonly segment: AcceptSegment;
  readonly bytes: number;
  readonly resolve: (outcome: AcceptOutcome) => void;
  readonly reject: (error: unknown) => void;
}

export interface AcceptQueueStats {
  readonly requests: number;
  readonly entries: number;
  /** Events proposed by this node and not yet applied. */
  readonly inFlightEvents: number;
  /** Requests waiting for room, and their bytes (an upper bound of their encoded size). */
  readonly waitingRequests: number;
  readonly waitingBytes: number;
}

export interface AcceptQueueLimits {
  readonly inFlightEventsMax: number;
  readonly waitingBytesMax: number;
}

export class AcceptQueue {
  private readonly waiting = new Map<string, Waiting[]>();
  private flushScheduled = false;
  private requests = 0;
  private entries = 0;
  private inFlightEvents = 0;
  private waitingRequests = 0;
  private waitingBytes = 0;
  private readonly limits: AcceptQueueLimits;

  /** `group` is null while the node starts or stops: the requests then fail as "no leader" (503, retry). */
  constructor(private readonly deps: { readonly group: () => Group | null; readonly state: ReplicatedState; readonly nowMs: () => number; readonly limits?: AcceptQueueLimits }) {
    this.limits = deps.limits ?? acceptBatching;
    assert(this.limits.inFlightEventsMax >= 1 && this.limits.waitingBytesMax >= 1, "the accept queue lets something through");
  }

  /** Resolves with this request's own outcome; rejects with the group's error (no leader, ...). */
  submit(packageName: string, segment: AcceptSegment): Promise<AcceptOutcome> {
    assert(segment.events.length > 0 && segment.events.length === segment.eventKeys.length, "a request brings events, one key slot each");
    // An upper bound of the encoded size (a UTF-16 unit is at most 3 UTF-8 bytes).
    let bytes = 16 + (segment.requestKey?.length ?? 0) * 3;
    for (let i = 0; i < segment.events.length; i++) bytes += 16 + segment.events[i]!.length + (segment.eventKeys[i]?.length ?? 0) * 3;
    if (this.waitingBytes > 0 && this.waitingBytes + bytes > this.limits.waitingBytesMax) {
      return Promise.reject(new ProposalDroppedError(`${this.waitingBytes} bytes of requests already wait for the group on this node (waitingBytesMax ${this.limits.waitingBytesMax}); retry`));
    }
    return new Promise((resolve, reject) => {
      let queue = this.waiting.get(packageName);
      if (queue === undefined) this.waiting.set(packageName, (queue = []));
      queue.push({ segment, bytes, resolve, reject });
      this.requests++;
      this.waitingRequests++;
      this.waitingBytes += bytes;
      this.scheduleFlush();
    });
  }

  stats(): AcceptQueueStats {
    return { requests: this.requests, entries: this.entries, inFlightEvents: this.inFlightEvents, waitingRequests: this.waitingRequests, waitingBytes: this.waitingBytes };
  }

  /** On the next turn, so requests arriving meanwhile join the entry. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Proposes what fits the in-flight bound, package by package; the rest waits for room. */
  private flush(): void {
    this.flushScheduled = false;
    for (const [packageName, queue] of [...this.waiting]) {
      let taken = 0;
      for (const batch of slices(queue)) {
        const events = eventsOf(batch);
        if (this.inFlightEvents > 0 && this.inFlightEvents + events > this.limits.inFlightEventsMax) break;
        taken += batch.length;
        void this.propose(packageName, batch, events);
      }
      if (taken === 0) continue; // no room: it keeps its place in the line
      this.waiting.delete(packageName);
      if (taken < queue.length) this.waiting.set(packageName, queue.slice(taken)); // to the back of the line
    }
  }

  private async propose(packageName: string, batch: readonly Waiting[], events: number): Promise<void> {
    const { state, nowMs } = this.deps;
    this.entries++;
    this.inFlightEvents += events;
    for (const w of batch) {
      this.waitingRequests--;
      this.waitingBytes -= w.bytes;
    }
    assert(this.waitingRequests >= 0 && this.waitingBytes >= 0, "a request leaves the waiting line once");
    try {
      const group = this.deps.group();
      if (group === null) throw new NotLeaderError(null);
      const data = encodeCommand({ kind: "outbox", op: { op: "accept-batch", batch: { package: packageName, atMs: nowMs(), segments: batch.map((w) => w.segment) } } });
      const { index, result } = await group.propose(data);
      if (!result.ok) {
        const notDeployed = result.error.includes("not deployed");
        for (const w of batch) w.resolve(notDeployed ? { ok: false, error: result.error, notDeployed: true } : { ok: false, error: result.error });
        return;
      }
      await group.waitApplied(index);
      const outcome = state.outbox.takeResult(index);
      if (outcome === undefined || !outcome.ok || !("segments" in outcome)) {
        for (const w of batch) w.resolve({ ok: false, error: "accepted, but this node lost track of the ids; retry with the same Idempotency-Key", lost: true });
        return;
      }
      assert(outcome.segments.length === batch.length, "one result per request in the entry");
      batch.forEach((w, i) => w.resolve(outcome.segments[i]!));
    } catch (error) {
      if (error instanceof AssertionError) throw error; // a bug: crash, never a 5xx (STYLE §4.1)
      for (const w of batch) w.reject(error);
    } finally {
      this.inFlightEvents -= events;
      assert(this.inFlightEvents >= 0, "in-flight events are released once per entry");
      if (this.waiting.size > 0) this.scheduleFlush();
    }
  }
}

function eventsOf(batch: readonly Waiting[]): number {
  let events = 0;
  for (const w of batch) events += w.segment.events.length;
  return events;
}

/** Consecutive runs within the entry limits; a request larger than them goes alone. */
function slices(queue: readonly Waiting[]): Waiting[][] {
  const out: Waiting[][] = [];
  let current: Waiting[] = [];
  let events = 0;
  let bytes = 0;
  for (const w of queue) {
    const fits = events + w.segment.events.length <= acceptBatching.eventsPerEntryMax && bytes + w.bytes <= acceptBatching.bytesPerEntryMax;
    if (!fits && current.length > 0) {
      out.push(current);
      current = [];
      events = 0;
      bytes = 0;
    }
    current.push(w);
    events += w.segment.events.length;
    bytes += w.bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}
