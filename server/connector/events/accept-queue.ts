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
 */
import { AssertionError, assert } from "../../assert.ts";
import { acceptBatching } from "../../constants.ts";
import type { Group } from "../../node/group.ts";
import { NotLeaderError } from "../../node/driver-errors.ts";
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
}

export class AcceptQueue {
  private readonly waiting = new Map<string, Waiting[]>();
  private flushScheduled = false;
  private requests = 0;
  private entries = 0;

  /** `group` is null while the node starts or stops: the requests then fail as "no leader" (503, retry). */
  constructor(private readonly deps: { readonly group: () => Group | null; readonly state: ReplicatedState; readonly nowMs: () => number }) {}

  /** Resolves with this request's own outcome; rejects with the group's error (no leader, ...). */
  submit(packageName: string, segment: AcceptSegment): Promise<AcceptOutcome> {
    assert(segment.events.length > 0 && segment.events.length === segment.eventKeys.length, "a request brings events, one key slot each");
    // An upper bound of the encoded size (a UTF-16 unit is at most 3 UTF-8 bytes).
    let bytes = 16 + (segment.requestKey?.length ?? 0) * 3;
    for (let i = 0; i < segment.events.length; i++) bytes += 16 + segment.events[i]!.length + (segment.eventKeys[i]?.length ?? 0) * 3;
    return new Promise((resolve, reject) => {
      let queue = this.waiting.get(packageName);
      if (queue === undefined) this.waiting.set(packageName, (queue = []));
      queue.push({ segment, bytes, resolve, reject });
      this.requests++;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  stats(): AcceptQueueStats {
    return { requests: this.requests, entries: this.entries };
  }

  private flush(): void {
    this.flushScheduled = false;
    const queues = [...this.waiting];
    this.waiting.clear();
    for (const [packageName, queue] of queues) for (const batch of slices(queue)) void this.propose(packageName, batch);
  }

  private async propose(packageName: string, batch: readonly Waiting[]): Promise<void> {
    const { state, nowMs } = this.deps;
    this.entries++;
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
    }
  }
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
