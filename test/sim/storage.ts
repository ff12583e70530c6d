/**
 * @module One node's durable storage: what survives a crash. The shell writes a Ready's snapshot,
 * entries and hard state as one atomic, fsynced transaction (Raft §5: before any message of that
 * Ready leaves), and applies committed entries to the state machine with the applied index in the
 * same transaction. Anything a crashed node had only in memory, including a Ready it had taken
 * but not yet persisted, is gone: a restart sees exactly `persisted()`.
 */
import { assert } from "../../server/assert.ts";
import type { ConfState, Entry, HardState, PersistedState, Snapshot } from "../../server/raft/types.ts";
import { StateMachine } from "./state-machine.ts";

/** How the checkers read a node's durable log without depending on the storage class. */
export interface LogView {
  readonly snapshotIndex: number;
  lastIndex(): number;
  /** Term at `index`: the snapshot's term at its own index, -1 if compacted or absent. */
  termAt(index: number): number;
}

export const noTerm = -1;

export class DurableStorage implements LogView {
  hardState: HardState = { term: 0, votedFor: null, commit: 0 };
  snapshot: Snapshot | null = null;
  /** Entries after the snapshot (or from index 1), contiguous. */
  entries: Entry[] = [];
  /** The state machine, durable together with its applied index (= sm.applied). */
  sm = new StateMachine();
  /** False until the first write: a node that crashes before it is restarted as brand new. */
  written = false;

  get snapshotIndex(): number {
    return this.snapshot?.meta.index ?? 0;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  termAt(index: number): number {
    const snapshotIndex = this.snapshotIndex;
    if (index === snapshotIndex) return this.snapshot?.meta.term ?? 0;
    if (index < snapshotIndex) return noTerm;
    return this.entries[index - snapshotIndex - 1]?.term ?? noTerm;
  }

  entryAt(index: number): Entry | undefined {
    return this.entries[index - this.snapshotIndex - 1];
  }

  /** A snapshot from the leader replaces the log and the state machine (etcd ApplySnapshot). */
  installSnapshot(snapshot: Snapshot, sm: StateMachine): void {
    assert(sm.applied === snapshot.meta.index, "snapshot image must end at the snapshot index");
    this.snapshot = snapshot;
    this.entries = [];
    this.sm = sm;
    this.written = true;
  }

  /** Ready.entries: delete every stored entry with index ≥ entries[0].index, then append. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const snapshotIndex = this.snapshotIndex;
    assert(first.index > snapshotIndex, `append at ${first.index} reaches into snapshot ${snapshotIndex}`);
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    this.entries.length = first.index - snapshotIndex - 1;
    for (let i = 0; i < entries.length; i += 1) {
      const entry = entries[i] as Entry;
      assert(entry.index === first.index + i, "Ready entries must be contiguous");
      this.entries.push(entry);
    }
    this.written = true;
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
    this.written = true;
  }

  /** Shell-initiated compaction at the applied index: the snapshot holds the state machine image. */
  compact(meta: { index: number; term: number; confState: ConfState }, data: Uint8Array): void {
    assert(meta.index > this.snapshotIndex && meta.index <= this.sm.applied, "compaction point out of range");
    assert(this.termAt(meta.index) === meta.term, "compaction term must match the log");
    this.entries = this.entries.slice(meta.index - this.snapshotIndex);
    this.snapshot = { meta: { index: meta.index, term: meta.term, confState: meta.confState }, data };
  }

  persisted(): PersistedState {
    return {
      hardState: this.hardState,
      snapshot: this.snapshot,
      entries: this.entries.slice(),
      applied: this.sm.applied,
    };
  }
}
