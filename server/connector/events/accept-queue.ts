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
 * A node starts an entry only while its events proposed and not yet applied stay within
 * acceptBatching.inFlightEventsMax, or when it has none in flight (then one entry goes, up to the
 * entry limits); the rest wait here and go together once room frees. The Raft log is one FIFO
 * queue, so this bound is what lets a cursor move or lease renewal commit within a turn or two of
 * the pipeline during an ingest burst instead of behind megabytes of events. Waiting is bounded in
 * bytes and in time; past either, 503 and retry (never proposed, so a retry is safe). Packages take
 * strict turns: one that got room goes to the back of the line, and one that has none holds the
 * front until room frees, so busy packages cannot keep the bound filled forever.
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
  readonly enqueuedAtMs: number;
  readonly resolve: (outcome: AcceptOutcome) => void;
  readonly reject: (error: unknown) => void;
}

/** One package's waiting requests, oldest first; `head` is the first not yet proposed. */
interface Line {
  readonly items: Waiting[];
  head: number;
}

export interface AcceptQueueStats {
  /** Requests this node has taken (each proposed alone or with others, or still waiting). */
  readonly requests: number;
  readonly entries: number;
  /** Events proposed by this node and not yet applied. */
  readonly inFlightEvents: number;
  /** Requests waiting for room, and their bytes (an upper bound of their encoded size). */
  readonly waitingRequests: number;
  readonly waitingBytes: number;
}

export type AcceptQueueLimits = { readonly [K in keyof typeof acceptBatching]: number };

/** A line's head is dropped from its array once it is this long and past half of it. */
const lineCompactAtItems = 1024;

export class AcceptQueue {
  /** In turn order: the package at the front goes first; one that got room goes to the back. */
  private readonly waiting = new Map<string, Line>();
  private flushScheduled = false;
  private stopped = false;
  private requests = 0;
  private entries = 0;
  private inFlightEvents = 0;
  private waitingRequests = 0;
  private waitingBytes = 0;
  private readonly limits: AcceptQueueLimits;

  /** `group` is null while the node starts or stops: the requests then fail as "no leader" (503, retry). */
  constructor(private readonly deps: { readonly group: () => Group | null; readonly state: ReplicatedState; readonly nowMs: () => number; readonly limits?: AcceptQueueLimits }) {
    this.limits = deps.limits ?? acceptBatching;
    assert(this.limits.inFlightEventsMax >= 1 && this.limits.waitingBytesMax >= 1 && this.limits.waitingMsMax >= 1, "the accept queue lets something through");
  }

  /** Resolves with this request's own outcome; rejects with the group's error (no leader, ...). */
  submit(packageName: string, segment: AcceptSegment): Promise<AcceptOutcome> {
    assert(segment.events.length > 0 && segment.events.length === segment.eventKeys.length, "a request brings events, one key slot each");
    if (this.stopped) return Promise.reject(new NotLeaderError(null));
    // An upper bound of the encoded size (a UTF-16 unit is at most 3 UTF-8 bytes).
    let bytes = 16 + (segment.requestKey?.length ?? 0) * 3;
    for (let i = 0; i < segment.events.length; i++) bytes += 16 + segment.events[i]!.length + (segment.eventKeys[i]?.length ?? 0) * 3;
    if (this.waitingBytes > 0 && this.waitingBytes + bytes > this.limits.waitingBytesMax) {
      return Promise.reject(new ProposalDroppedError(`${this.waitingBytes} bytes of requests already wait for the group on this node (waitingBytesMax ${this.limits.waitingBytesMax}); retry`));
    }
    return new Promise((resolve, reject) => {
      let line = this.waiting.get(packageName);
      if (line === undefined) this.waiting.set(packageName, (line = { items: [], head: 0 }));
      line.items.push({ segment, bytes, enqueuedAtMs: this.deps.nowMs(), resolve, reject });
      this.requests++;
      this.waitingRequests++;
      this.waitingBytes += bytes;
      this.scheduleFlush();
    });
  }

  stats(): AcceptQueueStats {
    return { requests: this.requests, entries: this.entries, inFlightEvents: this.inFlightEvents, waitingRequests: this.waitingRequests, waitingBytes: this.waitingBytes };
  }

  /** Refuses what waits (never proposed: 503, retry) and whatever comes; entries in flight settle with the group. */
  stop(): void {
    this.stopped = true;
    for (const line of this.waiting.values()) this.reject(line, line.items.length - line.head, new NotLeaderError(null));
    this.waiting.clear();
    assert(this.waitingRequests === 0 && this.waitingBytes === 0, "nothing waits after stop");
  }

  /** On the next turn, so requests arriving meanwhile join the entry. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.stopped) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Proposes what fits the in-flight bound, package by package in turn order. A package with no
   * room stops the round (strict turns: packages behind it must not keep the bound filled forever).
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    const nowMs = this.deps.nowMs();
    for (const [packageName, line] of [...this.waiting]) {
      this.expire(line, nowMs);
      let proposed = false;
      while (line.head < line.items.length) {
        const { end, events } = this.nextBatch(line);
        if (this.inFlightEvents > 0 && this.inFlightEvents + events > this.limits.inFlightEventsMax) break;
        const batch = line.items.slice(line.head, end);
        line.head = end;
        proposed = true;
        void this.propose(packageName, batch, events, nowMs);
      }
      if (line.head === line.items.length) {
        this.waiting.delete(packageName);
        continue;
      }
      if (!proposed) return; // no room: it keeps its place at the front
      this.waiting.delete(packageName);
      this.waiting.set(packageName, line); // to the back of the line
      if (line.head >= lineCompactAtItems && line.head * 2 >= line.items.length) {
        line.items.splice(0, line.head);
        line.head = 0;
      }
    }
  }

  /** The next entry from this line: consecutive requests within the entry limits, at least one; where it ends and its events. */
  private nextBatch(line: Line): { end: number; events: number } {
    let events = 0;
    let bytes = 0;
    let end = line.head;
    for (; end < line.items.length; end++) {
      const w = line.items[end]!;
      const fits = events + w.segment.events.length <= this.limits.eventsPerEntryMax && bytes + w.bytes <= this.limits.bytesPerEntryMax;
      if (!fits && end > line.head) break;
      events += w.segment.events.length;
      bytes += w.bytes;
    }
    assert(end > line.head, "an entry carries at least one request");
    return { end, events };
  }

  /** Requests that waited for room past waitingMsMax: refused, never proposed (503, retry). */
  private expire(line: Line, nowMs: number): void {
    let expired = 0;
    while (line.head + expired < line.items.length && nowMs - line.items[line.head + expired]!.enqueuedAtMs >= this.limits.waitingMsMax) expired++;
    if (expired > 0) this.reject(line, expired, new ProposalDroppedError(`waited ${this.limits.waitingMsMax} ms for room among this node's entries in flight; never proposed, retry`));
  }

  /** Rejects the first `count` requests not yet proposed and takes them off the line. */
  private reject(line: Line, count: number, error: Error): void {
    assert(count >= 0 && line.head + count <= line.items.length, "only requests on the line are refused");
    const refused = line.items.slice(line.head, line.head + count);
    line.head += count;
    this.leave(refused);
    for (const w of refused) w.reject(error);
  }

  /** Requests leave the waiting line (proposed or refused), once each. */
  private leave(requests: readonly Waiting[]): void {
    for (const w of requests) {
      this.waitingRequests--;
      this.waitingBytes -= w.bytes;
    }
    assert(this.waitingRequests >= 0 && this.waitingBytes >= 0, "a request leaves the waiting line once");
  }

  private async propose(packageName: string, batch: readonly Waiting[], events: number, nowMs: number): Promise<void> {
    const { state } = this.deps;
    this.entries++;
    this.inFlightEvents += events;
    this.leave(batch);
    try {
      const group = this.deps.group();
      if (group === null) throw new NotLeaderError(null);
      const data = encodeCommand({ kind: "outbox", op: { op: "accept-batch", batch: { package: packageName, atMs: nowMs, segments: batch.map((w) => w.segment) } } });
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
