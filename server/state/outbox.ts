/**
 * @module The replicated per-package outbox: events accepted by any node wait here, in order, until
 * the package's holder has delivered them and moved the package's cursor. Deterministic on every
 * node; the cursor moves only under the package's current epoch, so a deposed holder (an old epoch)
 * can never skip events a new holder still has to send.
 *
 * Accepting is all or nothing, bounded by a per-package budget (a full outbox refuses with an error,
 * never drops), and idempotent: an Idempotency-Key or a source's `source_event_id` seen within the
 * dedup window gets the ids it got the first time instead of new events. The window is part of the
 * replicated state (persisted, in order), so every node, restarted or not, decides alike.
 *
 * An event reaches the disk once if it is delivered before its log entry is compacted, which is the
 * usual case: a flush writes, for undelivered events, only a small "run" row pointing into the log
 * entry that carried them (log index, position, first seq, count), and boot reads the events back
 * from those entries. Only when the compaction point passes an entry that still holds undelivered
 * events are they copied into event rows, in the same transaction that may delete the entry. (Writing
 * every backlog event as a row at each flush cost a third of the batched ingest rate while the
 * forwarder lagged: 38k against 55k events/s with those rows switched off.)
 *
 * Dead letters: an event the target refused on its own (the forwarder isolates it by halving the
 * refused batch) would block every later event of its package. The holder moves it out with a
 * `dead-letter` op: only under the current epoch, only the first undelivered event, so the cursor
 * steps over it as if delivered and the event, with the target's answer, waits in the package's dead
 * letters (bounded: the oldest go first, counted in `deadLettersDropped`) until an operator requeues
 * it. A `requeue` op puts dead letters back at the end of the outbox as new events (new seqs and
 * ids), all or nothing, within the package's budget like any accept.
 */
import { assert, unreachable } from "../assert.ts";
import { deadLetterLimits, outboxLimits } from "../constants.ts";
import { decodeOprEvent, encodeOprEvent } from "../connector/events/event-codec.ts";
import type { SqlStatement, SqlValue } from "../storage/sql-writer.ts";
import { multiRow } from "../storage/multi-row.ts";
import type { PackageAssignment } from "./config-state.ts";
import type { AcceptBatch, AcceptSegment, BatchResult, DeadLetterEntry, DeadLetterReason, DeadLetterRow, OutboxContext, OutboxEntry, OutboxOp, OutboxResult, OutboxRows, RequeueResult, SegmentResult } from "./outbox-types.ts";
import { PendingEvent } from "./pending-event.ts";
import {
  acceptedEvents,
  chunkBytes,
  chunkEventBytes,
  chunkEventId,
  chunkIndexAfter,
  chunkEvents,
  deleteDeadLetters,
  deleteKeysBefore,
  deleteRun,
  deleteRunsThrough,
  deleteThrough,
  emptyBox,
  fromRow,
  insertDeadLetters,
  insertEntries,
  insertKey,
  insertRuns,
  heldEvent,
  newChunk,
  storedRow,
  upsertPackage,
  type Chunk,
  type HeldEvent,
  type PackageOutbox,
  type Run,
  type StoredDeadLetter,
} from "./outbox-rows.ts";

/** Undelivered events: every seq after the cursor is held (in the package's chunks). */
function backlogOf(box: PackageOutbox): number {
  return box.nextSeq - 1 - box.cursor;
}

/** Events a batch stores, gathered segment by segment, then kept as chunks (outbox-rows.ts). */
interface Staged {
  readonly events: Uint8Array[];
  readonly positions: number[];
}


export class Outbox {
  private readonly deadLettersPerPackageMax: number;
  private readonly deadLetterBytesMax: number;

  /** Tests shrink the budgets; production uses outboxLimits and deadLetterLimits. */
  constructor(
    private readonly eventsPerPackageMax: number = outboxLimits.eventsPerPackageMax,
    bounds: { readonly deadLettersPerPackageMax?: number; readonly deadLetterBytesMax?: number } = {},
  ) {
    this.deadLettersPerPackageMax = bounds.deadLettersPerPackageMax ?? deadLetterLimits.perPackageMax;
    this.deadLetterBytesMax = bounds.deadLetterBytesMax ?? deadLetterLimits.bytesPerPackageMax;
    assert(this.deadLettersPerPackageMax >= 1 && this.deadLetterBytesMax >= 1, "a package keeps at least one dead letter");
  }

  private readonly packages = new Map<string, PackageOutbox>();
  /** Dedup window: key → the ids it was given, oldest first (bounded by outboxLimits.dedupKeysMax). */
  private readonly seen = new Map<string, { readonly ord: number; readonly ids: readonly string[] }>();
  private nextOrd = 1;
  private keysUnwritten: Array<{ ord: number; key: string; ids: readonly string[] }> = [];
  private keysDirty = false;
  /** Results by log index, for the node that proposed them (bounded). */
  private readonly results = new Map<number, OutboxResult>();

  /** `deployed`: the packages of the current deployment (events for any other would never be forwarded). */
  apply(op: OutboxOp, index: number, context: OutboxContext): OutboxResult {
    const result = this.applyOp(op, index, context);
    this.results.set(index, result);
    if (this.results.size > outboxLimits.resultsKept) this.results.delete(this.results.keys().next().value!);
    return result;
  }

  private applyOp(op: OutboxOp, index: number, context: OutboxContext): OutboxResult {
    switch (op.op) {
      case "forwarded":
        return this.forwarded(op, context.holders);
      case "dead-letter":
        return this.deadLetter(op, index, context.holders);
      case "requeue":
        return this.requeue(op, index, context);
      case "accept":
      case "accept-batch": {
        const batch = op.op === "accept-batch" ? op.batch : { package: op.package, atMs: op.atMs, segments: [{ requestKey: op.requestKey, eventKeys: op.eventKeys, events: op.events.map(encodeOprEvent) }] };
        const accepted: BatchResult = context.deployed.has(batch.package) ? this.acceptBatch(batch, index, this.budgetOf(batch.package, context)) : { ok: false, error: `package ${batch.package} is not deployed (any more); nothing was accepted` };
        // The one-request form answers with its one segment, as it always did.
        return op.op === "accept" && accepted.ok ? accepted.segments[0]! : accepted;
      }
      default:
        return unreachable(op);
    }
  }

  private budgetOf(name: string, context: OutboxContext): number {
    return context.budgetBytes?.get(name) ?? outboxLimits.bytesPerPackageDefault;
  }

  /** What the entry at `index` produced, for the proposer once it has applied it; read once. */
  takeResult(index: number): OutboxResult | undefined {
    const result = this.results.get(index);
    this.results.delete(index);
    return result;
  }

  /**
   * Segments apply in order, each all or nothing (a full outbox refuses the segment that does not
   * fit, not its neighbours). Ids are `<log index>.<position in the entry>`: unique, and the same on
   * every node.
   */
  private acceptBatch(batch: AcceptBatch, index: number, budgetBytes: number): BatchResult {
    if (batch.segments.length === 0) return { ok: false, error: "malformed accept: no requests" };
    const box = this.box(batch.package);
    const staged: Staged = { events: [], positions: [] };
    const firstSeq = box.nextSeq;
    let position = 0;
    const segments = batch.segments.map((segment) => {
      const result = this.acceptSegment(box, batch, segment, { index, position, budgetBytes, staged });
      position += segment.events.length;
      return result;
    });
    // The stored events are views into the entry, which may sit in a transport frame that must not
    // stay pinned: they are copied into chunks of their own, one per run of consecutive positions
    // (a duplicate or a refused request breaks a run), holding only what was stored.
    const { events, positions } = staged;
    for (let from = 0, to = 1; from < events.length; from = to++) {
      while (to < events.length && positions[to] === positions[to - 1]! + 1) to++;
      const chunk = newChunk(events.slice(from, to), { firstSeq: firstSeq + from, acceptedAtMs: batch.atMs, index, position: positions[from]! });
      box.chunks.push(chunk);
      box.unwritten.push(chunk);
    }
    return { ok: true, segments };
  }

  private acceptSegment(box: PackageOutbox, batch: AcceptBatch, segment: AcceptSegment, at: { index: number; position: number; budgetBytes: number; staged: Staged }): SegmentResult {
    const { events, eventKeys } = segment;
    if (events.length !== eventKeys.length || events.length === 0) return { ok: false, error: "malformed accept: events and keys differ in number" };
    const requestKey = segment.requestKey === null ? null : `r:${batch.package}:${segment.requestKey}`;
    const earlier = requestKey === null ? undefined : this.seen.get(requestKey)?.ids;
    if (earlier !== undefined) return { ok: true, ids: earlier, duplicates: earlier.length };
    const keyOf = (i: number) => (eventKeys[i] === null ? null : `e:${batch.package}:${eventKeys[i]}`);
    // What the budget must make room for. An edge, deterministic on every node: once the dedup
    // window is full, remembering this request's first new keys can evict a key a later event of
    // the same request matched here, and that event is then stored too: the request can exceed the
    // budget by at most its own size.
    let fresh = 0;
    let freshBytes = 0;
    for (let i = 0; i < events.length; i++) {
      if (keyOf(i) !== null && this.seen.has(keyOf(i)!)) continue;
      fresh++;
      freshBytes += events[i]!.length;
    }
    const full = this.overBudget(batch.package, box, { events: fresh, bytes: freshBytes, budgetBytes: at.budgetBytes });
    if (full !== null) return { ok: false, error: `${full}; nothing was accepted` };
    const ids: string[] = [];
    let duplicates = 0;
    for (let i = 0; i < events.length; i++) {
      const key = keyOf(i);
      const known = key === null ? undefined : this.seen.get(key)?.ids;
      if (known !== undefined) {
        ids.push(known[0]!);
        duplicates++;
        continue;
      }
      const id = `${at.index}.${at.position + i}`;
      box.nextSeq++;
      box.bytes += events[i]!.length;
      at.staged.events.push(events[i]!);
      at.staged.positions.push(at.position + i);
      ids.push(id);
      if (key !== null) this.remember(key, [id]);
    }
    box.dirty = true;
    if (requestKey !== null) this.remember(requestKey, ids);
    return { ok: true, ids, duplicates };
  }

  /** Only the package's current holder epoch may move its cursor, and only forward. */
  private forwarded(op: Extract<OutboxOp, { op: "forwarded" }>, holders: ReadonlyMap<string, PackageAssignment>): OutboxResult {
    const holder = holders.get(op.package);
    if (holder === undefined || holder.epoch !== op.epoch) return { ok: false, error: `stale epoch ${op.epoch} for package ${op.package} (current ${holder?.epoch ?? "none"})` };
    const box = this.box(op.package);
    if (op.through <= box.cursor) return { ok: true, ids: [], duplicates: 0 };
    if (op.through >= box.nextSeq) return { ok: false, error: `cursor ${op.through} is past the last accepted event ${box.nextSeq - 1}` };
    this.deliver(box, op.through);
    box.dirty = true;
    return { ok: true, ids: [], duplicates: 0 };
  }

  /** Moves the cursor to `through` (within the held events): their bytes leave the budget, and the chunks all delivered go. */
  private deliver(box: PackageOutbox, through: number): void {
    assert(through > box.cursor && through < box.nextSeq, "the cursor moves forward over held events");
    let drop = 0;
    let delivered = 0;
    for (const chunk of box.chunks) {
      const from = chunkIndexAfter(chunk, box.cursor);
      const to = Math.min(chunkEvents(chunk), through + 1 - chunk.firstSeq);
      if (to <= 0) break;
      box.bytes -= chunkBytes(chunk, from, to);
      delivered += to - from;
      if (to < chunkEvents(chunk)) break;
      drop++;
    }
    assert(delivered === through - box.cursor, "the chunks hold every event after the cursor");
    assert(box.bytes >= 0, "a package's stored bytes never go negative");
    box.chunks.splice(0, drop);
    box.cursor = through;
  }

  /** The first held event, or undefined. */
  private head(box: PackageOutbox): HeldEvent | undefined {
    const chunk = box.chunks[0];
    return chunk === undefined ? undefined : heldEvent(chunk, box.cursor + 1 - chunk.firstSeq);
  }

  /** Why `more` does not fit the package's budget, or null. */
  private overBudget(name: string, box: PackageOutbox, more: { readonly events: number; readonly bytes: number; readonly budgetBytes: number }): string | null {
    const held = backlogOf(box);
    if (held + more.events <= this.eventsPerPackageMax && box.bytes + more.bytes <= more.budgetBytes) return null;
    return `outbox full: package ${name} holds ${held} undelivered events, ${box.bytes} bytes (budget ${this.eventsPerPackageMax} events, ${more.budgetBytes} bytes)`;
  }

  /**
   * The holder, under its current epoch, moves the first undelivered event (the only one it may
   * judge: everything before it is delivered) to the dead letters; the cursor steps over it.
   */
  private deadLetter(op: Extract<OutboxOp, { op: "dead-letter" }>, index: number, holders: ReadonlyMap<string, PackageAssignment>): OutboxResult {
    const holder = holders.get(op.package);
    if (holder === undefined || holder.epoch !== op.epoch) return { ok: false, error: `stale epoch ${op.epoch} for package ${op.package} (current ${holder?.epoch ?? "none"})` };
    const box = this.packages.get(op.package);
    const head = box === undefined ? undefined : this.head(box);
    if (box === undefined || head === undefined || head.seq !== op.seq) {
      return { ok: false, error: `seq ${op.seq} is not the first undelivered event of package ${op.package} (cursor ${box?.cursor ?? 0}); nothing was moved` };
    }
    if (op.reason.message.length > deadLetterLimits.reasonCharsMax) return { ok: false, error: `dead-letter reason exceeds ${deadLetterLimits.reasonCharsMax} characters; nothing was moved` };
    assert(head.seq === box.cursor + 1, "undelivered events follow the cursor without a gap");
    this.deliver(box, head.seq);
    // A copy: the event is a view into its chunk's buffer, which a dead letter must not pin.
    this.addDeadLetter(box, { seq: head.seq, id: head.id, acceptedAtMs: head.acceptedAtMs, bytes: head.bytes.slice(), reason: { status: op.reason.status, message: op.reason.message }, index, atMs: op.atMs });
    box.dirty = true;
    return { ok: true, ids: [head.id], duplicates: 0 };
  }

  /** Appends in seq order; past either bound the oldest leave, counted (the newest always stays). */
  private addDeadLetter(box: PackageOutbox, letter: StoredDeadLetter): void {
    assert((box.deadLetters.at(-1)?.seq ?? 0) < letter.seq, "dead letters are kept in seq order");
    box.deadLetters.push(letter);
    box.deadLetterBytes += letter.bytes.length;
    box.deadUnwritten.set(letter.seq, letter);
    while (box.deadLetters.length > this.deadLettersPerPackageMax || (box.deadLetters.length > 1 && box.deadLetterBytes > this.deadLetterBytesMax)) {
      const oldest = box.deadLetters.shift()!;
      box.deadLetterBytes -= oldest.bytes.length;
      this.forgetDeadLetter(box, oldest.seq);
      box.deadLettersDropped++;
    }
    assert(box.deadLetterBytes >= 0, "dead letter bytes never go negative");
  }

  private forgetDeadLetter(box: PackageOutbox, seq: number): void {
    if (!box.deadUnwritten.delete(seq)) box.deadRemoved.push(seq);
  }

  /**
   * Dead letters back into the outbox, in seq order, as new events at its end: new seqs, and ids
   * `<log index>.<position in the requeue>`. All or nothing: every named seq must be a dead letter
   * and all must fit the package's budget. Stored as rows (the op carries seqs, not the events).
   */
  private requeue(op: Extract<OutboxOp, { op: "requeue" }>, index: number, context: OutboxContext): RequeueResult {
    if (!context.deployed.has(op.package)) return { ok: false, error: `package ${op.package} is not deployed (any more); nothing was requeued` };
    const box = this.packages.get(op.package);
    const letters = box?.deadLetters ?? [];
    let chosen: StoredDeadLetter[];
    if (op.seqs === "all") chosen = letters;
    else {
      const wanted = new Set(op.seqs);
      if (wanted.size !== op.seqs.length) return { ok: false, error: "seqs: a seq appears more than once; nothing was requeued" };
      chosen = letters.filter((d) => wanted.has(d.seq));
      if (chosen.length !== wanted.size) {
        const known = new Set(chosen.map((d) => d.seq));
        const missing = op.seqs.filter((seq) => !known.has(seq));
        return { ok: false, error: `seqs ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ` and ${missing.length - 10} more` : ""} are not dead letters of package ${op.package} (requeued or dropped before?); nothing was requeued` };
      }
    }
    if (box === undefined || chosen.length === 0) return { ok: true, requeued: [] };
    const full = this.overBudget(op.package, box, { events: chosen.length, bytes: chosen.reduce((sum, d) => sum + d.bytes.length, 0), budgetBytes: this.budgetOf(op.package, context) });
    if (full !== null) return { ok: false, error: `${full}; nothing was requeued` };
    const leaving = new Set(chosen.map((d) => d.seq));
    box.deadLetters = letters.filter((d) => !leaving.has(d.seq));
    for (const letter of chosen) box.deadLetterBytes -= letter.bytes.length;
    assert(box.deadLetterBytes >= 0, "dead letter bytes never go negative");
    // Index 0: the requeue entry carries seqs, not the events, so they are stored as rows.
    const chunk = newChunk(
      chosen.map((letter) => letter.bytes),
      { firstSeq: box.nextSeq, acceptedAtMs: op.atMs, index: 0, position: 0, ids: chosen.map((_, position) => `${index}.${position}`) },
    );
    const requeued = chosen.map((letter, position) => {
      this.forgetDeadLetter(box, letter.seq);
      return { from: letter.seq, seq: chunk.firstSeq + position, id: chunkEventId(chunk, position) };
    });
    box.nextSeq += chosen.length;
    box.bytes += chunk.buffer.length;
    box.chunks.push(chunk);
    box.unwritten.push(chunk);
    box.dirty = true;
    return { ok: true, requeued };
  }

  /** Keys only ever enter once, in log order; the oldest leaves first. */
  private remember(key: string, ids: readonly string[]): void {
    assert(!this.seen.has(key), "a dedup key is remembered once");
    const ord = this.nextOrd++;
    this.seen.set(key, { ord, ids });
    this.keysUnwritten.push({ ord, key, ids });
    this.keysDirty = true;
    if (this.seen.size > outboxLimits.dedupKeysMax) this.seen.delete(this.seen.keys().next().value!);
  }

  private box(name: string): PackageOutbox {
    let box = this.packages.get(name);
    if (box === undefined) this.packages.set(name, (box = emptyBox(1, 0, 0)));
    return box;
  }

  /**
   * Undelivered events of a package after `afterSeq`, in order: at most `max`, and at most about
   * `bytesMax` of stored event bytes (the first event always comes, however large, so a batch
   * always makes progress).
   */
  pending(name: string, afterSeq: number, max: number, bytesMax: number = Infinity): OutboxEntry[] {
    const box = this.packages.get(name);
    if (box === undefined) return [];
    const out: OutboxEntry[] = [];
    let bytes = 0;
    const after = Math.max(afterSeq, box.cursor);
    for (const chunk of box.chunks) {
      const count = chunkEvents(chunk);
      if (chunk.firstSeq + count - 1 <= after) continue;
      for (let i = chunkIndexAfter(chunk, after); i < count; i++) {
        const event = chunkEventBytes(chunk, i);
        bytes += event.length;
        if (out.length > 0 && bytes > bytesMax) return out;
        out.push(new PendingEvent(chunk.firstSeq + i, chunkEventId(chunk, i), chunk.acceptedAtMs, event));
        if (out.length >= max) return out;
      }
    }
    return out;
  }

  /** The highest sequence number accepted for a package so far (0 before the first). */
  lastSeq(name: string): number {
    return (this.packages.get(name)?.nextSeq ?? 1) - 1;
  }

  status(): Array<{ package: string; backlog: number; backlogBytes: number; cursor: number; oldestAcceptedAtMs: number | null }> {
    return [...this.packages].map(([name, box]) => ({ package: name, backlog: backlogOf(box), backlogBytes: box.bytes, cursor: box.cursor, oldestAcceptedAtMs: box.chunks[0]?.acceptedAtMs ?? null }));
  }

  /** Per package: dead letters held, dropped past the bound, and the latest one's reason. */
  deadLetterStatus(): Array<{ package: string; deadLetters: number; deadLetterBytes: number; deadLettersDropped: number; lastDeadLetter: { seq: number; reason: DeadLetterReason; atMs: number } | null }> {
    return [...this.packages].map(([name, box]) => {
      const last = box.deadLetters.at(-1);
      const lastDeadLetter = last === undefined ? null : { seq: last.seq, reason: last.reason, atMs: last.atMs };
      return { package: name, deadLetters: box.deadLetters.length, deadLetterBytes: box.deadLetterBytes, deadLettersDropped: box.deadLettersDropped, lastDeadLetter };
    });
  }

  /** Whether the package has ever had an event (or a restored row): its outbox and dead letters exist. */
  has(name: string): boolean {
    return this.packages.has(name);
  }

  /** A package's dead letters after `afterSeq`, at most `max`, in seq order. */
  deadLetters(name: string, afterSeq: number, max: number): DeadLetterEntry[] {
    assert(max >= 1, "a page holds at least one dead letter");
    const letters = this.packages.get(name)?.deadLetters ?? [];
    // Binary search for the first seq after `afterSeq` (the list is in seq order).
    let low = 0;
    let high = letters.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (letters[middle]!.seq <= afterSeq) low = middle + 1;
      else high = middle;
    }
    return letters.slice(low, low + max).map((d) => ({ seq: d.seq, id: d.id, acceptedAtMs: d.acceptedAtMs, event: decodeOprEvent(d.bytes), reason: d.reason, index: d.index, atMs: d.atMs }));
  }

  get unflushed(): boolean {
    if (this.keysDirty) return true;
    for (const box of this.packages.values()) if (box.dirty) return true;
    return false;
  }

  /** The lowest log index a run of undelivered events points into (Infinity when none): the log must keep it. */
  lowestRunIndex(): number {
    let lowest = Number.POSITIVE_INFINITY;
    for (const box of this.packages.values()) if (box.runs.length > 0) lowest = Math.min(lowest, box.runs[0]!.index);
    return lowest;
  }

  /**
   * Writes what changed since the last flush. Undelivered events of entries at or below
   * `rowsThrough` go into event rows (the caller picks it: the compaction point, less what the log
   * may keep, replicated-state.ts), about `materializeEventsMax` per flush, whole runs, oldest first;
   * the log keeps every entry a run still points into (`lowestRunIndex`). Other events are kept
   * only as runs.
   */
  flush(out: SqlStatement[], rowsThrough: number, materializeEventsMax: number = outboxLimits.materializeEventsPerFlushMax): void {
    assert(materializeEventsMax >= 1, "each flush materializes something");
    const budget = { eventsLeft: materializeEventsMax };
    for (const [name, box] of this.packages) {
      const materialized = this.materializeRuns(name, box, rowsThrough, out, budget);
      if (!box.dirty && !materialized) continue;
      const rows: SqlValue[] = [];
      const runs: Run[] = [];
      for (const chunk of box.unwritten) {
        const from = chunkIndexAfter(chunk, box.cursor);
        const count = chunkEvents(chunk);
        if (from >= count) continue;
        if (chunk.index <= rowsThrough) {
          for (let i = from; i < count; i++) rows.push(name, chunk.firstSeq + i, storedRow(heldEvent(chunk, i)));
          continue;
        }
        runs.push({ firstSeq: chunk.firstSeq + from, count: count - from, index: chunk.index, position: chunk.position + from });
      }
      multiRow(insertEntries, rows, out);
      multiRow(insertRuns, runs.flatMap((r) => [name, r.firstSeq, r.count, r.index, r.position]), out);
      box.runs.push(...runs);
      while (box.runs.length > 0 && box.runs[0]!.firstSeq + box.runs[0]!.count - 1 <= box.cursor) box.runs.shift();
      out.push({ sql: deleteThrough, args: [name, box.cursor] }, { sql: deleteRunsThrough, args: [name, box.cursor] }, { sql: upsertPackage, args: [name, box.nextSeq, box.cursor, box.deadLettersDropped] });
      this.flushDeadLetters(name, box, out);
      box.unwritten = [];
      box.dirty = false;
    }
    if (!this.keysDirty) return;
    const oldest = this.seen.values().next().value?.ord ?? this.nextOrd;
    for (const k of this.keysUnwritten) if (k.ord >= oldest) out.push({ sql: insertKey, args: [k.ord, k.key, JSON.stringify(k.ids)] });
    out.push({ sql: deleteKeysBefore, args: [oldest] });
    this.keysUnwritten = [];
    this.keysDirty = false;
  }

  /** New dead letters become rows; those that left (requeued, dropped) lose theirs. A seq never comes back, so the order does not matter. */
  private flushDeadLetters(name: string, box: PackageOutbox, out: SqlStatement[]): void {
    const rows: SqlValue[] = [];
    for (const d of box.deadUnwritten.values()) rows.push(name, d.seq, d.id, d.acceptedAtMs, d.bytes, d.reason.status, d.reason.message, d.index, d.atMs);
    multiRow(insertDeadLetters, rows, out);
    multiRow(deleteDeadLetters, box.deadRemoved.flatMap((seq) => [name, seq]), out);
    box.deadUnwritten.clear();
    box.deadRemoved = [];
  }

  /** Runs of entries at or below `rowsThrough` become event rows (seq order is log order: a prefix), within the flush's budget. */
  private materializeRuns(name: string, box: PackageOutbox, rowsThrough: number, out: SqlStatement[], budget: { eventsLeft: number }): boolean {
    if (box.runs.length === 0 || box.runs[0]!.index > rowsThrough || budget.eventsLeft <= 0) return false;
    const rows: SqlValue[] = [];
    let at = 0;
    while (box.runs.length > 0 && box.runs[0]!.index <= rowsThrough && budget.eventsLeft > 0) {
      const run = box.runs.shift()!;
      const from = Math.max(run.firstSeq, box.cursor + 1);
      const lastSeq = run.firstSeq + run.count - 1;
      // Only events still undelivered are written, and only they use the budget. Whole runs: a
      // flush may pass the budget by at most one entry's events (acceptBatching.eventsPerEntryMax).
      for (; at < box.chunks.length && from <= lastSeq; at++) {
        const chunk = box.chunks[at]!;
        const count = chunkEvents(chunk);
        if (chunk.firstSeq + count - 1 < from) continue;
        if (chunk.firstSeq > lastSeq) break;
        for (let i = Math.max(0, from - chunk.firstSeq); i < count && chunk.firstSeq + i <= lastSeq; i++) {
          rows.push(name, chunk.firstSeq + i, storedRow(heldEvent(chunk, i)));
          budget.eventsLeft--;
        }
        if (chunk.firstSeq + count - 1 > lastSeq) break; // the next run starts inside this chunk
      }
      out.push({ sql: deleteRun, args: [name, run.firstSeq] });
    }
    multiRow(insertEntries, rows, out);
    return true;
  }

  /**
   * Boot or snapshot restore. `entryData` gives the stored log entry a run points into (boot reads
   * them; a run whose entry is gone is a broken invariant: compaction materializes runs first).
   */
  load(rows: OutboxRows, entryData: (index: number) => Uint8Array | undefined = () => undefined): void {
    this.packages.clear();
    this.seen.clear();
    this.results.clear();
    this.keysUnwritten = [];
    this.keysDirty = false;
    for (const k of [...rows.keys].sort((a, b) => a.ord - b.ord)) this.seen.set(k.key, { ord: k.ord, ids: JSON.parse(k.ids) as string[] });
    this.nextOrd = (rows.keys.reduce((max, k) => Math.max(max, k.ord), 0) || 0) + 1;
    for (const p of rows.packages) this.packages.set(p.name, emptyBox(p.nextSeq, p.cursor, p.deadLettersDropped ?? 0));
    const loaded = new Map<string, Chunk[]>();
    const add = (name: string, chunk: Chunk) => {
      let chunks = loaded.get(name);
      if (chunks === undefined) loaded.set(name, (chunks = []));
      chunks.push(chunk);
    };
    // Event rows: consecutive seqs accepted at the same time share a chunk (ids kept as stored).
    const events = rows.entries.map((row) => ({ name: row.name, event: fromRow(row.document) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.event.seq - b.event.seq));
    for (let from = 0, to = 1; from < events.length; from = to++) {
      const first = events[from]!;
      const follows = (i: number) => events[i]!.name === first.name && events[i]!.event.seq === first.event.seq + (i - from) && events[i]!.event.acceptedAtMs === first.event.acceptedAtMs;
      while (to < events.length && follows(to)) to++;
      const group = events.slice(from, to).map((e) => e.event);
      add(first.name, newChunk(group.map((e) => e.bytes), { firstSeq: first.event.seq, acceptedAtMs: first.event.acceptedAtMs, index: 0, position: 0, ids: group.map((e) => e.id) }));
    }
    for (const run of rows.runs ?? []) {
      const data = entryData(run.index);
      assert(data !== undefined, () => `outbox run ${run.name}/${run.firstSeq} points at log entry ${run.index}, which is not stored`);
      const { atMs, events: views } = acceptedEvents(data);
      assert(run.count >= 1 && run.position >= 0 && run.position + run.count <= views.length, () => `outbox run ${run.name}/${run.firstSeq} lies outside entry ${run.index}`);
      add(run.name, newChunk(views.slice(run.position, run.position + run.count), { firstSeq: run.firstSeq, acceptedAtMs: atMs, index: run.index, position: run.position }));
      const box = this.box(run.name);
      if (run.firstSeq + run.count - 1 > box.cursor) box.runs.push({ firstSeq: run.firstSeq, count: run.count, index: run.index, position: run.position });
    }
    for (const [name, box] of this.packages) {
      const chunks = loaded.get(name) ?? [];
      box.runs.sort((a, b) => a.firstSeq - b.firstSeq);
      // A run may end in delivered events, and a first chunk may start in them.
      let held = 0;
      for (const chunk of chunks.sort((a, b) => a.firstSeq - b.firstSeq)) {
        const count = chunkEvents(chunk);
        if (chunk.firstSeq + count - 1 <= box.cursor) continue;
        const expected = box.chunks.length === 0 ? box.cursor + 1 : box.chunks.at(-1)!.firstSeq + chunkEvents(box.chunks.at(-1)!);
        assert(chunk.firstSeq === expected || (box.chunks.length === 0 && chunk.firstSeq < expected), () => `outbox ${name}: events from ${chunk.firstSeq} where ${expected} comes next (each event is stored once, as a row or in a run, without gaps)`);
        const from = chunkIndexAfter(chunk, box.cursor);
        box.chunks.push(chunk);
        held += count - from;
        box.bytes += chunkBytes(chunk, from, count);
      }
      assert(held === backlogOf(box), () => `outbox ${name} holds ${held} events after cursor ${box.cursor}, not all up to ${box.nextSeq - 1}`);
    }
    this.loadDeadLetters(rows.deadLetters ?? []);
  }

  /** Not trimmed to the bound here (a node that did not restart trims at the next move, alike). */
  private loadDeadLetters(rows: readonly DeadLetterRow[]): void {
    for (const row of [...rows].sort((a, b) => a.seq - b.seq)) {
      const box = this.box(row.name);
      assert(row.seq <= box.cursor, () => `dead letter ${row.name}/${row.seq} is past the cursor ${box.cursor}`);
      assert((box.deadLetters.at(-1)?.seq ?? 0) < row.seq, () => `dead letter ${row.name}/${row.seq} is stored once`);
      box.deadLetters.push({ seq: row.seq, id: row.id, acceptedAtMs: row.acceptedAtMs, bytes: row.event.slice(), reason: { status: row.status, message: row.reason }, index: row.index, atMs: row.atMs });
      box.deadLetterBytes += row.event.length;
    }
  }

  toRows(): OutboxRows {
    return {
      keys: [...this.seen].map(([key, { ord, ids }]) => ({ ord, key, ids: JSON.stringify(ids) })),
      packages: [...this.packages].map(([name, box]) => ({ name, nextSeq: box.nextSeq, cursor: box.cursor, deadLettersDropped: box.deadLettersDropped })),
      entries: [...this.packages].flatMap(([name, box]) => this.held(box).map((event) => ({ name, document: storedRow(event) }))),
      deadLetters: [...this.packages].flatMap(([name, box]) =>
        box.deadLetters.map((d) => ({ name, seq: d.seq, id: d.id, acceptedAtMs: d.acceptedAtMs, event: d.bytes, status: d.reason.status, reason: d.reason.message, index: d.index, atMs: d.atMs })),
      ),
    };
  }

  /** Every event after the cursor, in order (for snapshots: not on a hot path). */
  private held(box: PackageOutbox): HeldEvent[] {
    const out: HeldEvent[] = [];
    for (const chunk of box.chunks) for (let i = chunkIndexAfter(chunk, box.cursor); i < chunkEvents(chunk); i++) out.push(heldEvent(chunk, i));
    return out;
  }

  /** After a snapshot restore: everything is written again (the caller deletes the old rows). */
  markAllDirty(): void {
    this.keysUnwritten = [...this.seen].map(([key, { ord, ids }]) => ({ ord, key, ids }));
    this.keysDirty = true;
    for (const box of this.packages.values()) {
      box.unwritten = [...box.chunks];
      box.runs = [];
      box.deadUnwritten.clear();
      for (const d of box.deadLetters) box.deadUnwritten.set(d.seq, d);
      box.deadRemoved = [];
      box.dirty = true;
    }
  }
}

