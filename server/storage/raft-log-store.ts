/**
 * @module The durable home of a node's Raft state: the contract every log store keeps, and the
 * checks run when a log is loaded. Implementations: libsql-log-store.ts (production) and
 * memory-log-store.ts (benchmarks and tests), both held to one contract suite.
 *
 * Contract, for one Ready: `save()` makes snapshot + entries + hard state durable atomically,
 * before any message of that Ready is sent. A received snapshot replaces the whole log and moves the
 * applied index to the snapshot (the state machine is restored from it in the same step).
 */
import type { Entry, EntryType, HardState, PersistedState, Snapshot } from "../raft/types.ts";
import { assert } from "../assert.ts";

export interface PersistBatch {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader (not one taken locally: that is `compact`). */
  readonly snapshot: Snapshot | null;
}

export interface LoadResult {
  readonly persisted: PersistedState;
  /** First index of an uncommitted tail cut because it failed its checksum, or null. */
  readonly cutFromIndex: number | null;
}

export interface RaftLogStore {
  load(): Promise<LoadResult>;
  save(batch: PersistBatch): Promise<void>;
  /** A snapshot taken locally at `snapshot.meta.index` (≤ applied): drop the entries it covers. */
  compact(snapshot: Snapshot): Promise<void>;
  /** Records the applied index alone (state machines that have no tables of their own). */
  saveApplied(index: number): Promise<void>;
  close(): void;
}

/** The log holds committed entries that fail their checks: the node must not start on it. */
export class CorruptLogError extends Error {
  override readonly name = "CorruptLogError";
}

export const emptyHardState: HardState = { term: 0, votedFor: null, commit: 0 };

export const entryTypeCode: Record<EntryType, number> = { normal: 0, "conf-change": 1 };
export const entryTypeOf = (code: number): EntryType => {
  if (code === 0) return "normal";
  if (code === 1) return "conf-change";
  throw new CorruptLogError(`unknown entry type code ${code}`);
};

const header = new DataView(new ArrayBuffer(17));
const headerBytes = new Uint8Array(header.buffer);

/** CRC-32 over index, term, type and data: the same input always gives the same checksum. */
export function entryChecksum(index: number, term: number, type: number, data: Uint8Array): number {
  header.setFloat64(0, index);
  header.setFloat64(8, term);
  header.setUint8(16, type);
  return Bun.hash.crc32(data, Bun.hash.crc32(headerBytes));
}

export function snapshotChecksum(snapshot: Snapshot): number {
  const meta = new TextEncoder().encode(JSON.stringify(snapshot.meta));
  return Bun.hash.crc32(snapshot.data, Bun.hash.crc32(meta));
}

export interface StoredEntry extends Entry {
  readonly checksum: number;
}

/**
 * Verifies a loaded log: contiguous from the snapshot, every checksum right. A bad entry at or
 * below the commit index is corruption of acknowledged data: refuse. A bad entry above it was never
 * counted by this node's commit; it and everything after it are cut, and the leader re-sends them.
 */
export function verifyLog(options: {
  readonly hardState: HardState;
  readonly snapshotIndex: number;
  readonly entries: readonly StoredEntry[];
}): { entries: Entry[]; cutFromIndex: number | null } {
  const { hardState, snapshotIndex, entries } = options;
  const good: Entry[] = [];
  for (const stored of entries) {
    const expectedIndex = snapshotIndex + good.length + 1;
    const intact =
      stored.index === expectedIndex && entryChecksum(stored.index, stored.term, entryTypeCode[stored.type], stored.data) === stored.checksum;
    if (!intact) {
      if (expectedIndex <= hardState.commit) {
        throw new CorruptLogError(`log entry ${expectedIndex} is missing or fails its checksum, and it is committed (commit ${hardState.commit})`);
      }
      return { entries: good, cutFromIndex: expectedIndex };
    }
    if (good.length > 0) assert(stored.term >= good[good.length - 1]!.term, () => `log terms decrease at index ${stored.index}`);
    good.push({ index: stored.index, term: stored.term, type: stored.type, data: stored.data });
  }
  const lastIndex = snapshotIndex + good.length;
  if (hardState.commit > lastIndex) {
    throw new CorruptLogError(`commit index ${hardState.commit} is beyond the last stored entry ${lastIndex}`);
  }
  return { entries: good, cutFromIndex: null };
}
