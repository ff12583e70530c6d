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
import type { SqlStatement } from "../storage/sql-writer.ts";
import type { PackageAssignment } from "./config-state.ts";

export interface OutboxEntry {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  readonly event: OprEvent;
}

export type OutboxOp =
  | {
      readonly op: "accept";
      readonly package: string;
      readonly atMs: number;
      /** Per request (an Idempotency-Key header), or null. */
      readonly requestKey: string | null;
      /** Per event (the source's source_event_id), or null; same length as `events`. */
      readonly eventKeys: ReadonlyArray<string | null>;
      readonly events: readonly OprEvent[];
    }
  | { readonly op: "forwarded"; readonly package: string; readonly epoch: number; readonly through: number };

export type OutboxResult = { readonly ok: true; readonly ids: readonly string[]; readonly duplicates: number } | { readonly ok: false; readonly error: string };

interface PackageOutbox {
  nextSeq: number;
  /** Delivered through this sequence number. */
  cursor: number;
  readonly entries: OutboxEntry[];
  /** Sequence numbers accepted since the last flush (rows to insert). */
  unwritten: OutboxEntry[];
  dirty: boolean;
}

const insertEntry = "INSERT INTO outbox_events (package, seq, document) VALUES (?, ?, ?)";
const deleteThrough = "DELETE FROM outbox_events WHERE package = ? AND seq <= ?";
const insertKey = "INSERT INTO outbox_keys (ord, key, ids) VALUES (?, ?, ?)";
const deleteKeysBefore = "DELETE FROM outbox_keys WHERE ord < ?";
const upsertPackage = "INSERT INTO outbox_packages (package, next_seq, cursor) VALUES (?, ?, ?) ON CONFLICT(package) DO UPDATE SET next_seq = excluded.next_seq, cursor = excluded.cursor";

export interface OutboxRows {
  readonly packages: ReadonlyArray<{ readonly name: string; readonly nextSeq: number; readonly cursor: number }>;
  readonly entries: ReadonlyArray<{ readonly name: string; readonly document: string }>;
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
    const result = op.op === "accept" ? (context.deployed.has(op.package) ? this.accept(op, index) : { ok: false as const, error: `package ${op.package} is not deployed (any more); nothing was accepted` }) : this.forwarded(op, context.holders);
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

  private accept(op: Extract<OutboxOp, { op: "accept" }>, index: number): OutboxResult {
    if (op.events.length !== op.eventKeys.length || op.events.length === 0) return { ok: false, error: "malformed accept: events and keys differ in number" };
    const requestKey = op.requestKey === null ? null : `r:${op.package}:${op.requestKey}`;
    const earlier = requestKey === null ? undefined : this.seen.get(requestKey)?.ids;
    if (earlier !== undefined) return { ok: true, ids: earlier, duplicates: earlier.length };
    const box = this.box(op.package);
    const fresh = op.events.filter((_, i) => op.eventKeys[i] === null || !this.seen.has(`e:${op.package}:${op.eventKeys[i]}`)).length;
    if (box.entries.length + fresh > this.eventsPerPackageMax) {
      return { ok: false, error: `outbox full: package ${op.package} holds ${box.entries.length} undelivered events (budget ${this.eventsPerPackageMax}); nothing was accepted` };
    }
    const ids: string[] = [];
    let duplicates = 0;
    for (const [i, event] of op.events.entries()) {
      const key = op.eventKeys[i] === null ? null : `e:${op.package}:${op.eventKeys[i]}`;
      const known = key === null ? undefined : this.seen.get(key)?.ids;
      if (known !== undefined) {
        ids.push(known[0]!);
        duplicates++;
        continue;
      }
      const entry: OutboxEntry = { seq: box.nextSeq++, id: `${index}.${i}`, acceptedAtMs: op.atMs, event };
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
  pending(name: string, afterSeq: number, max: number): OutboxEntry[] {
    const box = this.packages.get(name);
    if (box === undefined) return [];
    const out: OutboxEntry[] = [];
    for (const entry of box.entries) {
      if (entry.seq <= afterSeq) continue;
      out.push(entry);
      if (out.length >= max) break;
    }
    return out;
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
      for (const entry of box.unwritten) if (entry.seq > box.cursor) out.push({ sql: insertEntry, args: [name, entry.seq, JSON.stringify(entry)] });
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
      const entry = JSON.parse(row.document) as OutboxEntry;
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
      entries: [...this.packages].flatMap(([name, box]) => box.entries.map((entry) => ({ name, document: JSON.stringify(entry) }))),
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
