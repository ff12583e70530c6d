/**
 * @module The Raft log store on libSQL: one write transaction (one WAL sync, off the thread: see
 * sql-writer.ts) per Ready, however many entries it carries: group commit. `statementsFor()` is public so the layer
 * that owns the state machine can add its own statements to the same atomic transaction.
 *
 * Writes go through SqlWriter with fixed SQL text (prepared once) rather than drizzle's builder,
 * which re-renders the same queries every Ready; the SQL below names the columns of schema.ts.
 * Reads at boot use drizzle.
 */
import { asc, eq, gt, gte } from "drizzle-orm";
import { raftApplied, raftEntries, raftHardState, raftSnapshot } from "./schema.ts";
import type { Database, OpenDatabase } from "./database.ts";
import type { ConfState, HardState, Snapshot } from "../raft/types.ts";
import {
  CorruptLogError,
  emptyHardState,
  entryChecksum,
  entryTypeCode,
  entryTypeOf,
  snapshotChecksum,
  verifyLog,
  type LoadResult,
  type PersistBatch,
  type RaftLogStore,
} from "./raft-log-store.ts";
import { multiRow, type MultiRowShape } from "./multi-row.ts";
import type { SqlStatement, SqlValue } from "./sql-writer.ts";
import { assert } from "../assert.ts";

const singletonId = 1;
const entryRows: MultiRowShape = { head: "INSERT INTO raft_entries (idx, term, type, data, checksum) VALUES", columns: 5, tail: "" };
const sql = {
  truncateFrom: "DELETE FROM raft_entries WHERE idx >= ?",
  deleteAllEntries: "DELETE FROM raft_entries",
  hardState: "INSERT INTO raft_hard_state (id, term, voted_for, commit_index) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET term = excluded.term, voted_for = excluded.voted_for, commit_index = excluded.commit_index",
  applied: "INSERT INTO raft_applied (id, applied_index) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET applied_index = excluded.applied_index",
  snapshot: "INSERT INTO raft_snapshot (id, idx, term, conf_state, data, checksum) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET idx = excluded.idx, term = excluded.term, conf_state = excluded.conf_state, data = excluded.data, checksum = excluded.checksum",
} as const;

export class LibsqlLogStore implements RaftLogStore {
  private readonly db: Database;
  private compactedIndex = 0;

  constructor(private readonly open: OpenDatabase) {
    this.db = open.db;
  }

  async load(): Promise<LoadResult> {
    const [hardRow] = await this.db.select().from(raftHardState).where(eq(raftHardState.id, singletonId));
    const hardState: HardState = hardRow ? { term: hardRow.term, votedFor: hardRow.votedFor, commit: hardRow.commit } : emptyHardState;
    const snapshot = await this.loadSnapshot();
    const snapshotIndex = snapshot?.meta.index ?? 0;
    this.compactedIndex = snapshotIndex;
    const rows = await this.db.select().from(raftEntries).where(gt(raftEntries.index, snapshotIndex)).orderBy(asc(raftEntries.index));
    const stored = rows.map((r) => ({ index: r.index, term: r.term, type: entryTypeOf(r.type), data: new Uint8Array(r.data), checksum: r.checksum }));
    const { entries, cutFromIndex } = verifyLog({ hardState, snapshotIndex, entries: stored });
    if (cutFromIndex !== null) await this.db.delete(raftEntries).where(gte(raftEntries.index, cutFromIndex));
    const [appliedRow] = await this.db.select().from(raftApplied).where(eq(raftApplied.id, singletonId));
    const applied = Math.max(appliedRow?.applied ?? 0, snapshotIndex);
    assert(applied <= Math.max(hardState.commit, snapshotIndex), () => `applied ${applied} is beyond commit ${hardState.commit}`);
    return { persisted: { hardState, snapshot, entries, applied }, cutFromIndex };
  }

  private async loadSnapshot(): Promise<Snapshot | null> {
    const [row] = await this.db.select().from(raftSnapshot).where(eq(raftSnapshot.id, singletonId));
    if (row === undefined) return null;
    const snapshot: Snapshot = {
      meta: { index: row.index, term: row.term, confState: JSON.parse(row.confState) as ConfState },
      data: new Uint8Array(row.data),
    };
    if (snapshotChecksum(snapshot) !== row.checksum) throw new CorruptLogError(`snapshot at index ${row.index} fails its checksum`);
    return snapshot;
  }

  async save(batch: PersistBatch): Promise<void> {
    const statements = this.statementsFor(batch);
    if (statements.length > 0) await this.open.writer.commit(statements, { durable: true });
  }

  statementsFor(batch: PersistBatch): SqlStatement[] {
    const statements: SqlStatement[] = [];
    if (batch.snapshot !== null) {
      statements.push(snapshotStatement(batch.snapshot), { sql: sql.deleteAllEntries, args: [] }, this.appliedStatement(batch.snapshot.meta.index));
      this.compactedIndex = Math.max(this.compactedIndex, batch.snapshot.meta.index);
    }
    const first = batch.entries[0];
    if (first !== undefined) {
      statements.push({ sql: sql.truncateFrom, args: [first.index] });
      const args: SqlValue[] = [];
      for (const e of batch.entries) {
        const type = entryTypeCode[e.type];
        args.push(e.index, e.term, type, e.data, entryChecksum(e.index, e.term, type, e.data));
      }
      multiRow(entryRows, args, statements);
    }
    if (batch.hardState !== null) {
      const hs = batch.hardState;
      statements.push({ sql: sql.hardState, args: [hs.term, hs.votedFor, hs.commit] });
    }
    return statements;
  }

  /**
   * Durably records the snapshot: the entries it covers leave the Raft log (load() starts after
   * it). Their rows are deleted by the state machine's flushes, which keep those still holding a
   * live value (server/state/kv-table.ts).
   */
  async compact(snapshot: Snapshot): Promise<void> {
    assert(snapshot.meta.index > this.compactedIndex, "compaction only moves forward");
    await this.open.writer.commit([snapshotStatement(snapshot)], { durable: true });
    this.compactedIndex = snapshot.meta.index;
  }

  async saveApplied(index: number): Promise<void> {
    await this.open.writer.commit([this.appliedStatement(index)], { durable: true });
  }

  /** For appliers that write their own tables: the statement that moves the applied index. */
  appliedStatement(index: number): SqlStatement {
    assert(index >= 0, "applied index is never negative");
    return { sql: sql.applied, args: [index] };
  }

  /**
   * One write transaction for statements from `statementsFor` and the state machine. `durable`:
   * fsynced before it returns; otherwise only safe for what the durable log can redo (database.ts).
   */
  async commit(statements: SqlStatement[], options: { durable: boolean }): Promise<void> {
    await this.open.writer.commit(statements, options);
  }

  close(): void {
    this.open.close();
  }
}

function snapshotStatement(snapshot: Snapshot): SqlStatement {
  const { index, term, confState } = snapshot.meta;
  return { sql: sql.snapshot, args: [index, term, JSON.stringify(confState), snapshot.data, snapshotChecksum(snapshot)] };
}
