/**
 * @module Which Raft log entries still hold a live value, and so must outlive log compaction.
 *
 * A key's value is stored once, in the log entry that wrote it (kv-table.ts). Compaction therefore
 * cannot drop every entry a snapshot covers: an entry below the compaction point stays while any
 * key's current value is in it (it is "retained"). This bookkeeping says which compacted entries can
 * go, which retained ones are worth rewriting (their live values moved into the kv table) because
 * they are mostly dead, and the lowest entry still on disk (tombstones older than it are no longer
 * needed). Pure: no I/O, the caller turns its answers into SQL.
 */
import { assert } from "../assert.ts";

interface Holder {
  /** Keys this entry wrote; some may have been overwritten since (the caller checks). */
  readonly keys: string[];
  /** How many of them still have their value here. */
  live: number;
  liveBytes: number;
  /** The entry's data size: what keeping it costs on disk. */
  readonly bytes: number;
}

/** Runs of log indexes [first, last] to delete, in ascending order. */
export type IndexRuns = Array<readonly [number, number]>;

export class EntryLiveness {
  /** Entries holding a live value, by index; insertion order is ascending index. */
  private readonly holders = new Map<number, Holder>();
  /**
   * Compacted entries have been looked at up to here: each at or below it is either retained (in
   * `holders`), waiting in `deadRetained` to be deleted, or already deleted.
   */
  private scannedThrough: number;
  /** Retained entries whose last live value went: delete them next. */
  private readonly deadRetained: number[] = [];
  private lastHeld = 0;
  /** Sums over the retained entries: the garbage they keep on disk is the difference. */
  private retainedBytes = 0;
  private retainedLiveBytes = 0;

  constructor(scannedThrough: number) {
    assert(scannedThrough >= 0, "log indexes are not negative");
    this.scannedThrough = scannedThrough;
  }

  /** The value of `key` (valueBytes with its key) now lives in entry `index`. */
  hold(index: number, key: string, valueBytes: number, entryBytes: number): void {
    assert(index > this.scannedThrough, () => `entry ${index} holds a value but was compacted (scanned through ${this.scannedThrough})`);
    let holder = this.holders.get(index);
    if (holder === undefined) {
      assert(index >= this.lastHeld, () => `entries are held in log order: ${index} after ${this.lastHeld}`);
      holder = { keys: [], live: 0, liveBytes: 0, bytes: entryBytes };
      this.holders.set(index, holder);
      this.lastHeld = index;
    }
    holder.keys.push(key);
    holder.live++;
    holder.liveBytes += valueBytes;
  }

  /**
   * Boot: replay held what it found. `storedCompacted`: the stored entries at or below the
   * compaction point, ascending; those holding nothing are deleted next, the rest are retained.
   */
  resumeAt(compactedThrough: number, storedCompacted: readonly number[]): void {
    assert(this.scannedThrough === 0 && this.deadRetained.length === 0, "resume once, before any compaction");
    let storedHolders = 0;
    for (const index of storedCompacted) {
      assert(index <= compactedThrough, () => `stored entry ${index} is above the compaction point ${compactedThrough}`);
      const holder = this.holders.get(index);
      if (holder === undefined) {
        this.deadRetained.push(index);
        continue;
      }
      storedHolders++;
      this.retainedBytes += holder.bytes;
      this.retainedLiveBytes += holder.liveBytes;
    }
    let heldCompacted = 0;
    for (const held of this.holders.keys()) {
      if (held > compactedThrough) break;
      heldCompacted++;
    }
    assert(heldCompacted === storedHolders, "every compacted entry holding a value was replayed from storage");
    this.scannedThrough = compactedThrough;
  }

  /**
   * Whether a flush is worth running for upkeep alone: a newly compacted range to look at, cleaning
   * due, or at least `batchRows` dead entries to delete (one DELETE per entry per Ready cost about
   * 10% of throughput at 64 clients; smaller backlogs wait for the next periodic flush).
   */
  hasBacklog(compactedThrough: number, options: { readonly slackBytes: number; readonly batchRows: number }): boolean {
    return this.deadRetained.length >= options.batchRows || this.scannedThrough < compactedThrough || this.worthCleaning(options.slackBytes) !== null;
  }

  /** The oldest retained entry, whatever its garbage: cleaning it lets old tombstones expire. */
  oldestRetained(): { readonly index: number; readonly keys: readonly string[] } | null {
    for (const [index, holder] of this.holders) return index <= this.scannedThrough ? { index, keys: holder.keys } : null;
    return null;
  }

  /** A value that lived in entry `index` was overwritten, deleted or moved out. */
  release(index: number, valueBytes: number): void {
    const holder = this.holders.get(index);
    assert(holder !== undefined && holder.live > 0, () => `entry ${index} holds no live value to release`);
    holder.live--;
    holder.liveBytes -= valueBytes;
    const retained = index <= this.scannedThrough;
    if (retained) this.retainedLiveBytes -= valueBytes;
    if (holder.live > 0) return;
    this.holders.delete(index);
    if (!retained) return;
    this.retainedBytes -= holder.bytes;
    this.deadRetained.push(index);
  }

  /**
   * Entries at or below `compactedThrough` that hold no live value, as runs to delete: at most
   * `rowsMax` indexes, looking at no more than `stepsMax` new compacted entries.
   */
  takeDead(compactedThrough: number, limits: { readonly rowsMax: number; readonly stepsMax: number }): IndexRuns {
    const dead = this.deadRetained.splice(0, limits.rowsMax);
    const runs: IndexRuns = dead.sort((a, b) => a - b).map((index) => [index, index] as const);
    let rows = dead.length;
    const scanEnd = Math.min(compactedThrough, this.scannedThrough + limits.stepsMax);
    let runStart = 0;
    while (this.scannedThrough < scanEnd && rows < limits.rowsMax) {
      const index = ++this.scannedThrough;
      const holder = this.holders.get(index);
      if (holder !== undefined) {
        this.retainedBytes += holder.bytes;
        this.retainedLiveBytes += holder.liveBytes;
        if (runStart > 0) runs.push([runStart, index - 1]);
        runStart = 0;
        continue;
      }
      if (runStart === 0) runStart = index;
      rows++;
    }
    if (runStart > 0) runs.push([runStart, this.scannedThrough]);
    return runs;
  }

  /**
   * The oldest retained entry, when the retained entries keep more garbage than live data (and more
   * than `slackBytes`): rewriting it bounds the disk to about twice the live size.
   */
  worthCleaning(slackBytes: number): { readonly index: number; readonly keys: readonly string[] } | null {
    const garbage = this.retainedBytes - this.retainedLiveBytes;
    if (garbage <= Math.max(this.retainedLiveBytes, slackBytes)) return null;
    for (const [index, holder] of this.holders) {
      if (index > this.scannedThrough) return null;
      return { index, keys: holder.keys };
    }
    return null;
  }

  /** The lowest log index that may still be on disk. */
  lowestPresent(): number {
    let lowest = this.scannedThrough + 1;
    for (const index of this.deadRetained) lowest = Math.min(lowest, index);
    for (const index of this.holders.keys()) return Math.min(lowest, index);
    return lowest;
  }

  /** Whether entry `index` holds a live value (for tests and assertions). */
  holds(index: number): boolean {
    return this.holders.has(index);
  }

  get retained(): { readonly bytes: number; readonly liveBytes: number } {
    return { bytes: this.retainedBytes, liveBytes: this.retainedLiveBytes };
  }
}
