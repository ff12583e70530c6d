/**
 * @module A log store in memory, with the same contract as the libSQL one (the contract suite runs
 * both): for benchmarks of the consensus layer without disks, and for tests. "Durable" here means
 * "survives the RawNode", not the process.
 */
import type { Entry, HardState, Snapshot } from "../raft/types.ts";
import { emptyHardState, type LoadResult, type PersistBatch, type RaftLogStore } from "./raft-log-store.ts";
import { assert } from "../assert.ts";

export class MemoryLogStore implements RaftLogStore {
  private hardState: HardState = emptyHardState;
  private snapshot: Snapshot | null = null;
  private entries: Entry[] = [];
  private applied = 0;

  async load(): Promise<LoadResult> {
    const snapshotIndex = this.snapshot?.meta.index ?? 0;
    return {
      persisted: { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries], applied: Math.max(this.applied, snapshotIndex) },
      cutFromIndex: null,
    };
  }

  async save(batch: PersistBatch): Promise<void> {
    if (batch.snapshot !== null) {
      this.snapshot = batch.snapshot;
      this.entries = [];
      this.applied = batch.snapshot.meta.index;
    }
    const first = batch.entries[0];
    if (first !== undefined) {
      const offset = (this.snapshot?.meta.index ?? 0) + 1;
      assert(first.index >= offset && first.index <= offset + this.entries.length, () => `entry ${first.index} would leave a gap in the log`);
      this.entries.length = first.index - offset;
      for (const entry of batch.entries) this.entries.push(entry);
    }
    if (batch.hardState !== null) this.hardState = batch.hardState;
  }

  async compact(snapshot: Snapshot): Promise<void> {
    const previous = this.snapshot?.meta.index ?? 0;
    assert(snapshot.meta.index >= previous, "snapshots never move backwards");
    this.entries = this.entries.slice(snapshot.meta.index - previous);
    this.snapshot = snapshot;
  }

  async saveApplied(index: number): Promise<void> {
    assert(index >= this.applied, "applied index never decreases");
    this.applied = index;
  }

  close(): void {}
}
