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
 */
import { assert } from "../assert.ts";
import { outboxLimits } from "../constants.ts";
import type { OprEvent } from "../connector/events/event-record.ts";
import { decodeOprEvent, encodeOprEvent } from "../connector/events/event-codec.ts";
import { ByteReader, ByteWriter } from "./binary.ts";
import type { SqlStatement, SqlValue } from "../storage/sql-writer.ts";
import { multiRow, type MultiRowShape } from "../storage/multi-row.ts";
import type { PackageAssignment } from "./config-state.ts";

/** An undelivered event as the forwarder sees it (decoded on demand from its stored bytes). */
export interface OutboxEntry {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  readonly event: OprEvent;
}

/** As held: the event stays in its binary form (event-codec.ts) until a holder forwards it. */
interface StoredEntry {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  readonly bytes: Uint8Array;
}

/** One listener request inside an accept batch: all or nothing on its own. */
export interface AcceptSegment {
  /** The request's Idempotency-Key header, or null. */
  readonly requestKey: string | null;
  /** Per event (the source's source_event_id), or null; same length as `events`. */
  readonly eventKeys: ReadonlyArray<string | null>;
  /** Each event in its binary form (event-codec.ts). */
  readonly events: readonly Uint8Array[];
}

/** Concurrent listener requests for one package, coalesced into one log entry. */
export interface AcceptBatch {
  readonly package: string;
  readonly atMs: number;
  readonly segments: readonly AcceptSegment[];
}

export type OutboxOp =
  /** One request, events as objects: the JSON form (command kind 7) of earlier builds, still applied. */
  | {
      readonly op: "accept";
      readonly package: string;
      readonly atMs: number;
      readonly requestKey: string | null;
      readonly eventKeys: ReadonlyArray<string | null>;
      readonly events: readonly OprEvent[];
    }
  /** The binary form (command kind 8): many requests in one entry. */
  | { readonly op: "accept-batch"; readonly batch: AcceptBatch }
  | { readonly op: "forwarded"; readonly package: string; readonly epoch: number; readonly through: number };

export type SegmentResult = { readonly ok: true; readonly ids: readonly string[]; readonly duplicates: number } | { readonly ok: false; readonly error: string };
export type BatchResult = { readonly ok: true; readonly segments: readonly SegmentResult[] } | { readonly ok: false; readonly error: string };
export type OutboxResult = SegmentResult | BatchResult;

interface PackageOutbox {
  nextSeq: number;
  /** Delivered through this sequence number. */
  cursor: number;
  readonly entries: StoredEntry[];
  /** Sequence numbers accepted since the last flush (rows to insert). */
  unwritten: StoredEntry[];
  dirty: boolean;
}

const insertEntries: MultiRowShape = { head: "INSERT INTO outbox_events (package, seq, document) VALUES", columns: 3, tail: "" };
const deleteThrough = "DELETE FROM outbox_events WHERE package = ? AND seq <= ?";
const insertKey = "INSERT INTO outbox_keys (ord, key, ids) VALUES (?, ?, ?)";
const deleteKeysBefore = "DELETE FROM outbox_keys WHERE ord < ?";
const upsertPackage = "INSERT INTO outbox_packages (package, next_seq, cursor) VALUES (?, ?, ?) ON CONFLICT(package) DO UPDATE SET next_seq = excluded.next_seq, cursor = excluded.cursor";

/** The durable form: table rows, and the same in snapshots. A row's document is binary (`storedRow`), or JSON from earlier builds. */
export interface OutboxRows {
  readonly packages: ReadonlyArray<{ readonly name: string; readonly nextSeq: number; readonly cursor: number }>;
  readonly entries: ReadonlyArray<{ readonly name: string; readonly document: Uint8Array | string }>;
  readonly keys: ReadonlyArray<{ readonly ord: number; readonly key: string; readonly ids: string }>;
}

export class Outbox {
  /** Tests shrink the budget; production uses outboxLimits. */
  constructor(private readonly eventsPerPackageMax: number = outboxLimits.eventsPerPackageMax) {}

  private readonly packages = new Map<string, PackageOutbox>();
  /** Dedup window: key → the ids it was given, oldest first (bounded by outboxLimits.dedupKeysMax). */
  private readonly seen = new Map<string, { readonly ord: number; readonly ids: readonly string[] }>();
  private nextOrd = 1;
  private keysUnwritten: Array<{ ord: number; key: string; ids: readonly string[] }> = [];
  private keysDirty = false;
  /** Results by log index, for the node that proposed them (bounded). */
  private readonly results = new Map<number, OutboxResult>();

  /** `deployed`: the packages of the current deployment (events for any other would never be forwarded). */
  apply(op: OutboxOp, index: number, context: { readonly holders: ReadonlyMap<string, PackageAssignment>; readonly deployed: ReadonlySet<string> }): OutboxResult {
    let result: OutboxResult;
    if (op.op === "forwarded") result = this.forwarded(op, context.holders);
    else {
      const batch = op.op === "accept-batch" ? op.batch : { package: op.package, atMs: op.atMs, segments: [{ requestKey: op.requestKey, eventKeys: op.eventKeys, events: op.events.map(encodeOprEvent) }] };
      const accepted: BatchResult = context.deployed.has(batch.package) ? this.acceptBatch(batch, index) : { ok: false, error: `package ${batch.package} is not deployed (any more); nothing was accepted` };
      // The one-request form answers with its one segment, as it always did.
      result = op.op === "accept" && accepted.ok ? accepted.segments[0]! : accepted;
    }
    this.results.set(index, result);
    if (this.results.size > outboxLimits.resultsKept) this.results.delete(this.results.keys().next().value!);
    return result;
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
  private acceptBatch(batch: AcceptBatch, index: number): BatchResult {
    if (batch.segments.length === 0) return { ok: false, error: "malformed accept: no requests" };
    const box = this.box(batch.package);
    let position = 0;
    const segments = batch.segments.map((segment) => {
      const result = this.acceptSegment(box, batch, segment, { index, position });
      position += segment.events.length;
      return result;
    });
    return { ok: true, segments };
  }

  private acceptSegment(box: PackageOutbox, batch: AcceptBatch, segment: AcceptSegment, at: { index: number; position: number }): SegmentResult {
    const { events, eventKeys } = segment;
    if (events.length !== eventKeys.length || events.length === 0) return { ok: false, error: "malformed accept: events and keys differ in number" };
    const requestKey = segment.requestKey === null ? null : `r:${batch.package}:${segment.requestKey}`;
    const earlier = requestKey === null ? undefined : this.seen.get(requestKey)?.ids;
    if (earlier !== undefined) return { ok: true, ids: earlier, duplicates: earlier.length };
    const keyOf = (i: number) => (eventKeys[i] === null ? null : `e:${batch.package}:${eventKeys[i]}`);
    let fresh = 0;
    for (let i = 0; i < events.length; i++) if (keyOf(i) === null || !this.seen.has(keyOf(i)!)) fresh++;
    if (box.entries.length + fresh > this.eventsPerPackageMax) {
      return { ok: false, error: `outbox full: package ${batch.package} holds ${box.entries.length} undelivered events (budget ${this.eventsPerPackageMax}); nothing was accepted` };
    }
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
      const entry: StoredEntry = { seq: box.nextSeq++, id: `${at.index}.${at.position + i}`, acceptedAtMs: batch.atMs, bytes: events[i]! };
      box.entries.push(entry);
      box.unwritten.push(entry);
      ids.push(entry.id);
      if (key !== null) this.remember(key, [entry.id]);
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
    let drop = 0;
    while (drop < box.entries.length && box.entries[drop]!.seq <= op.through) drop++;
    box.entries.splice(0, drop);
    box.cursor = op.through;
    box.dirty = true;
    return { ok: true, ids: [], duplicates: 0 };
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
    if (box === undefined) this.packages.set(name, (box = { nextSeq: 1, cursor: 0, entries: [], unwritten: [], dirty: false }));
    return box;
  }

  /** Undelivered events of a package after `afterSeq`, at most `max`, in order. */
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
    for (const entry of box.entries) {
      if (entry.seq <= afterSeq) continue;
      bytes += entry.bytes.length;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push({ seq: entry.seq, id: entry.id, acceptedAtMs: entry.acceptedAtMs, event: decodeOprEvent(entry.bytes) });
      if (out.length >= max) break;
    }
    return out;
  }

  /** The highest sequence number accepted for a package so far (0 before the first). */
  lastSeq(name: string): number {
    return (this.packages.get(name)?.nextSeq ?? 1) - 1;
  }

  status(): Array<{ package: string; backlog: number; cursor: number; oldestAcceptedAtMs: number | null }> {
    return [...this.packages].map(([name, box]) => ({ package: name, backlog: box.entries.length, cursor: box.cursor, oldestAcceptedAtMs: box.entries[0]?.acceptedAtMs ?? null }));
  }

  get unflushed(): boolean {
    if (this.keysDirty) return true;
    for (const box of this.packages.values()) if (box.dirty) return true;
    return false;
  }

  flush(out: SqlStatement[]): void {
    for (const [name, box] of this.packages) {
      if (!box.dirty) continue;
      const rows: SqlValue[] = [];
      for (const entry of box.unwritten) if (entry.seq > box.cursor) rows.push(name, entry.seq, storedRow(entry));
      multiRow(insertEntries, rows, out);
      out.push({ sql: deleteThrough, args: [name, box.cursor] }, { sql: upsertPackage, args: [name, box.nextSeq, box.cursor] });
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

  /** Boot or snapshot restore. The dedup window is rebuilt from the undelivered events only. */
  load(rows: OutboxRows): void {
    this.packages.clear();
    this.seen.clear();
    this.results.clear();
    this.keysUnwritten = [];
    this.keysDirty = false;
    for (const k of [...rows.keys].sort((a, b) => a.ord - b.ord)) this.seen.set(k.key, { ord: k.ord, ids: JSON.parse(k.ids) as string[] });
    this.nextOrd = (rows.keys.reduce((max, k) => Math.max(max, k.ord), 0) || 0) + 1;
    for (const p of rows.packages) this.packages.set(p.name, { nextSeq: p.nextSeq, cursor: p.cursor, entries: [], unwritten: [], dirty: false });
    for (const row of rows.entries) {
      const entry = fromRow(row.document);
      const box = this.box(row.name);
      assert(entry.seq > box.cursor && entry.seq < box.nextSeq, `outbox row ${row.name}/${entry.seq} outside (${box.cursor}, ${box.nextSeq})`);
      box.entries.push(entry);
    }
    for (const box of this.packages.values()) box.entries.sort((a, b) => a.seq - b.seq);
  }

  toRows(): OutboxRows {
    return {
      keys: [...this.seen].map(([key, { ord, ids }]) => ({ ord, key, ids: JSON.stringify(ids) })),
      packages: [...this.packages].map(([name, box]) => ({ name, nextSeq: box.nextSeq, cursor: box.cursor })),
      entries: [...this.packages].flatMap(([name, box]) => box.entries.map((entry) => ({ name, document: storedRow(entry) }))),
    };
  }

  /** After a snapshot restore: everything is written again (the caller deletes the old rows). */
  markAllDirty(): void {
    this.keysUnwritten = [...this.seen].map(([key, { ord, ids }]) => ({ ord, key, ids }));
    this.keysDirty = true;
    for (const box of this.packages.values()) {
      box.unwritten = [...box.entries];
      box.dirty = true;
    }
  }
}

/** A row's document: [seq f64][id][acceptedAtMs f64][event bytes]. */
function storedRow(entry: StoredEntry): Uint8Array {
  return new ByteWriter(32 + entry.id.length + entry.bytes.length).f64(entry.seq).text(entry.id).f64(entry.acceptedAtMs).bytes(entry.bytes).finish();
}

/** Binary rows, or the JSON documents of earlier builds (re-encoded, so an upgrade loses nothing). */
function fromRow(document: Uint8Array | string): StoredEntry {
  if (typeof document === "string") {
    const legacy = JSON.parse(document) as OutboxEntry;
    return { seq: legacy.seq, id: legacy.id, acceptedAtMs: legacy.acceptedAtMs, bytes: encodeOprEvent(legacy.event) };
  }
  const reader = new ByteReader(document);
  const entry = { seq: reader.f64("outbox seq"), id: reader.text("outbox id"), acceptedAtMs: reader.f64("outbox accepted at"), bytes: reader.bytes("outbox event") };
  reader.end("outbox row");
  return entry;
}
