/**
 * @module The replicated key-value module: an in-memory map that is the authoritative view for
 * reads, and the SQL that keeps its durable form. Deterministic: the same entries give the same map
 * and the same statements on every node.
 *
 * A value is written to disk once, in the Raft log entry that put it, and stays there: the durable
 * state is the kv table plus every log entry still on disk, replayed in log order at boot. The kv
 * table holds only what the log cannot give back:
 * - tombstones (value null): a deleted key, so an older retained entry cannot bring it back;
 * - values moved out of compacted entries that were mostly dead (cleaning, entry-liveness.ts).
 * Replay skips a write at or below the key's kv row (the row is newer). Writing every value into
 * the table as well doubled the bytes each write costs (a B-tree upsert, then its WAL checkpoint)
 * and held batched writes to 66k entries/s; without it, 100k+ (bench/replication.bench.ts).
 */
import { assert } from "../assert.ts";
import { multiRow, type MultiRowShape } from "../storage/multi-row.ts";
import type { SqlStatement, SqlValue } from "../storage/sql-writer.ts";
import { EntryLiveness, type IndexRuns } from "./entry-liveness.ts";

export interface KvRecord {
  readonly value: Uint8Array;
  readonly modIndex: number;
}

/** Where a record's value is durable: its kv row, or the log entry at modIndex. */
interface StoredRecord extends KvRecord {
  readonly inRow: boolean;
}

/** A kv table row as loaded at boot. */
export interface KvRow {
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly modIndex: number;
}

export interface KvFlushLimits {
  /** Log entries at or below this are compacted: only those holding live values stay. */
  readonly compactedThrough: number;
  /** Entry rows deleted per flush. */
  readonly deleteRowsMax: number;
  /** Compacted entries examined per flush. */
  readonly scanStepsMax: number;
  /** Values moved out of mostly-dead entries per flush. */
  readonly cleanValuesMax: number;
  /** Garbage in retained entries tolerated beyond the live size. */
  readonly garbageSlackBytes: number;
  /** Tombstones expired per flush. */
  readonly tombstonesMax: number;
  /**
   * Tombstones kept before the oldest retained entries are cleaned whatever their garbage: a
   * tombstone expires only once every older entry is gone, and one old live value would pin them all.
   */
  readonly tombstonesSlack: number;
}

const upsertRows: MultiRowShape = {
  head: "INSERT INTO kv (key, value, mod_index) VALUES",
  columns: 3,
  tail: "ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_index = excluded.mod_index",
};
const expireTombstone = "DELETE FROM kv WHERE key = ? AND value IS NULL AND mod_index < ?";
const staleRows: MultiRowShape = { head: "DELETE FROM kv WHERE value IS NOT NULL AND (key, mod_index) IN (VALUES", columns: 2, tail: ")" };
const deleteEntryRun = "DELETE FROM raft_entries WHERE idx >= ? AND idx <= ?";

export class KvTable {
  private readonly records = new Map<string, StoredRecord>();
  private liveness = new EntryLiveness(0);
  /** Keys deleted since the last flush → the deleting entry's index. */
  private readonly pendingTombstones = new Map<string, number>();
  /** Tombstones on disk, key → index, in ascending index: each expires once no older entry is left. */
  private readonly tombstones = new Map<string, number>();
  /** Value rows superseded by a later put (key → the row's index): deleted with the next flush. */
  private readonly staleRows = new Map<string, number>();
  private newestTombstone = 0;
  /** Boot only: the kv row of each key, so replay can skip what a row already supersedes. */
  private rowIndexes: Map<string, number> | null = null;

  get(key: string): KvRecord | undefined {
    return this.records.get(key);
  }

  get size(): number {
    return this.records.size;
  }

  entries(): IterableIterator<[string, KvRecord]> {
    return this.records.entries();
  }

  /** Values from entry `index` (of `entryBytes` data). */
  put(items: ReadonlyArray<{ key: string; value: Uint8Array }>, index: number, entryBytes: number): void {
    assert(index > 0, "kv writes come from log entries");
    for (const { key, value } of items) {
      if (this.supersededByRow(key, index)) continue;
      this.release(key);
      this.records.set(key, { value, modIndex: index, inRow: false });
      this.liveness.hold(index, key, value.length + key.length, entryBytes);
      this.pendingTombstones.delete(key);
    }
  }

  delete(key: string, index: number): boolean {
    if (this.supersededByRow(key, index)) return false;
    const existed = this.release(key);
    // A key with no value here has no older write left to resurrect (its own tombstone covers it).
    if (existed) this.pendingTombstones.set(key, index);
    return this.records.delete(key);
  }

  private release(key: string): boolean {
    const previous = this.records.get(key);
    if (previous === undefined) return false;
    if (!previous.inRow) this.liveness.release(previous.modIndex, previous.value.length + key.length);
    else this.staleRows.set(key, previous.modIndex);
    return true;
  }

  private supersededByRow(key: string, index: number): boolean {
    const rowIndex = this.rowIndexes?.get(key);
    return rowIndex !== undefined && rowIndex >= index;
  }

  /**
   * Boot, step 1: the kv rows. Step 2 replays every log entry still on disk up to the applied index
   * through put/delete; step 3 is `endReplay`.
   */
  beginReplay(rows: readonly KvRow[]): void {
    assert(this.records.size === 0 && this.rowIndexes === null, "replay starts from nothing");
    this.rowIndexes = new Map();
    const tombstones: Array<[string, number]> = [];
    for (const row of rows) {
      this.rowIndexes.set(row.key, row.modIndex);
      if (row.value === null) tombstones.push([row.key, row.modIndex]);
      else this.records.set(row.key, { value: row.value, modIndex: row.modIndex, inRow: true });
    }
    for (const [key, index] of tombstones.sort((a, b) => a[1] - b[1])) this.tombstones.set(key, index);
    this.newestTombstone = tombstones.at(-1)?.[1] ?? 0;
  }

  /** `storedCompacted`: the stored entries replay read at or below `compactedThrough`, ascending. */
  endReplay(compactedThrough: number, storedCompacted: readonly number[]): void {
    assert(this.rowIndexes !== null, "endReplay without beginReplay");
    this.rowIndexes = null;
    // Deletes replay found uncovered by a row (data written before tombstones existed) stay
    // pending: the next flush writes their tombstones.
    this.liveness.resumeAt(compactedThrough, storedCompacted);
  }

  /**
   * Whether log upkeep needs a flush now rather than at the next periodic one: enough of it is
   * waiting to be worth a statement (deletion then keeps pace with any write rate).
   */
  upkeepDue(limits: KvFlushLimits): boolean {
    const batchRows = Math.max(1, Math.floor(limits.deleteRowsMax / 2));
    if (this.pendingTombstones.size >= batchRows || this.staleRows.size >= batchRows) return true;
    if (this.liveness.hasBacklog(limits.compactedThrough, { slackBytes: limits.garbageSlackBytes, batchRows })) return true;
    const lowest = this.liveness.lowestPresent();
    for (const index of this.tombstones.values()) return index < lowest || (this.tombstones.size > limits.tombstonesSlack && this.liveness.oldestRetained() !== null);
    return false;
  }

  /**
   * The SQL for everything since the last flush, and the upkeep of the compacted log: dead entries
   * deleted, mostly-dead ones cleaned, old tombstones expired. Bounded per call by `limits`.
   */
  flush(out: SqlStatement[], limits: KvFlushLimits): void {
    this.deleteStaleRows(out);
    this.writeTombstones(out);
    this.clean(out, limits);
    const runs = this.liveness.takeDead(limits.compactedThrough, { rowsMax: limits.deleteRowsMax, stepsMax: limits.scanStepsMax });
    deleteRuns(runs, out);
    this.expireTombstones(out, limits.tombstonesMax);
  }

  private deleteStaleRows(out: SqlStatement[]): void {
    if (this.staleRows.size === 0) return;
    const args: SqlValue[] = [];
    for (const [key, index] of this.staleRows) args.push(key, index);
    this.staleRows.clear();
    multiRow(staleRows, args, out);
  }

  private writeTombstones(out: SqlStatement[]): void {
    if (this.pendingTombstones.size === 0) return;
    const written = [...this.pendingTombstones].sort((a, b) => a[1] - b[1]);
    this.pendingTombstones.clear();
    const args: SqlValue[] = [];
    let outOfOrder = false;
    for (const [key, index] of written) {
      args.push(key, null, index);
      outOfOrder ||= index < this.newestTombstone;
      this.newestTombstone = Math.max(this.newestTombstone, index);
      // Delete, then set: the Map's order stays ascending by index.
      this.tombstones.delete(key);
      this.tombstones.set(key, index);
    }
    multiRow(upsertRows, args, out);
    // Only replayed deletes of data from before tombstones existed can be older than a row's.
    if (outOfOrder) this.resortTombstones();
  }

  private resortTombstones(): void {
    const sorted = [...this.tombstones].sort((a, b) => a[1] - b[1]);
    this.tombstones.clear();
    for (const [key, index] of sorted) this.tombstones.set(key, index);
  }

  /**
   * Moves the live values of the oldest retained entries into kv rows: while they keep more garbage
   * than allowed, or while too many tombstones wait for them to go.
   */
  private clean(out: SqlStatement[], limits: KvFlushLimits): void {
    const args: SqlValue[] = [];
    for (;;) {
      if (args.length / 3 >= limits.cleanValuesMax) break;
      const target = this.liveness.worthCleaning(limits.garbageSlackBytes) ?? (this.tombstones.size > limits.tombstonesSlack ? this.liveness.oldestRetained() : null);
      if (target === null) break;
      for (const key of target.keys) {
        const record = this.records.get(key);
        if (record === undefined || record.inRow || record.modIndex !== target.index) continue;
        args.push(key, record.value, record.modIndex);
        this.records.set(key, { ...record, inRow: true });
        this.liveness.release(target.index, record.value.length + key.length);
      }
      assert(!this.liveness.holds(target.index), () => `cleaned entry ${target.index} still holds a value`);
    }
    if (args.length > 0) multiRow(upsertRows, args, out);
  }

  private expireTombstones(out: SqlStatement[], max: number): void {
    const lowest = this.liveness.lowestPresent();
    let expired = 0;
    for (const [key, index] of this.tombstones) {
      if (expired >= max || index >= lowest) break;
      out.push({ sql: expireTombstone, args: [key, lowest] });
      this.tombstones.delete(key);
      expired++;
    }
  }

  /** Deletes since the last flush: the flush has rows to write. */
  get dirtyCount(): number {
    return this.pendingTombstones.size;
  }

  /**
   * Replaces the whole table (a snapshot received): every value goes into its kv row, since the
   * log entries before `index` are all deleted with it.
   */
  restore(rows: Iterable<[string, KvRecord]>, index: number, out: SqlStatement[]): void {
    this.records.clear();
    this.pendingTombstones.clear();
    this.tombstones.clear();
    this.newestTombstone = 0;
    this.staleRows.clear();
    this.liveness = new EntryLiveness(index);
    out.push({ sql: "DELETE FROM kv", args: [] });
    const args: SqlValue[] = [];
    for (const [key, record] of rows) {
      this.records.set(key, { value: record.value, modIndex: record.modIndex, inRow: true });
      args.push(key, record.value, record.modIndex);
    }
    if (args.length > 0) multiRow(upsertRows, args, out);
  }

  /** For tests: how much retained log the table keeps, and how much of it is live. */
  get retainedLog(): { readonly bytes: number; readonly liveBytes: number } {
    return this.liveness.retained;
  }
}

function deleteRuns(runs: IndexRuns, out: SqlStatement[]): void {
  for (const [first, last] of runs) out.push({ sql: deleteEntryRun, args: [first, last] });
}
