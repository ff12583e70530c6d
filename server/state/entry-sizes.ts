/**
 * @module How much data the log entries still on disk hold, as running sums, so the state machine
 * can tell what a range of kept entries costs: the outbox keeps undelivered events in their entries
 * only while the entries it keeps past the compaction point stay under a bound. Pure.
 */
import { assert } from "../assert.ts";

export class EntrySizes {
  /** Noted indexes, ascending, from `head` on; `sums[i]` is the data through `indexes[i]`. */
  private indexes: number[] = [];
  private sums: number[] = [];
  private head = 0;
  /** The data of everything forgotten (or before the first note). */
  private forgottenSum = 0;
  private lastIndex = 0;

  /** Entry `index` holds `bytes` of data; indexes are noted in ascending order (gaps allowed). */
  note(index: number, bytes: number): void {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, "an entry's size is a byte count");
    assert(index > this.lastIndex, () => `entry sizes are noted in log order: ${index} after ${this.lastIndex}`);
    this.sums.push(this.sumThrough(this.lastIndex) + bytes);
    this.indexes.push(index);
    this.lastIndex = index;
  }

  /** The data of the noted entries in [from, to]. */
  bytesIn(from: number, to: number): number {
    return to < from ? 0 : this.sumThrough(to) - this.sumThrough(from - 1);
  }

  /**
   * The lowest index m such that the noted entries in (m, to] hold at most `bytesMax`: entries at
   * or below m are the ones to let go. 0 when everything fits.
   */
  keepWithin(to: number, bytesMax: number): number {
    assert(bytesMax >= 0, "a byte bound is not negative");
    const target = this.sumThrough(to) - bytesMax;
    if (target <= this.forgottenSum) return 0;
    // The first noted entry whose running sum reaches the target: letting go through it suffices.
    let lo = this.head;
    let hi = this.indexes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sums[mid]! >= target) hi = mid;
      else lo = mid + 1;
    }
    return this.indexes[lo]!;
  }

  /** Entries at or below `index` are deleted: their sizes are no longer needed. */
  forgetThrough(index: number): void {
    while (this.head < this.indexes.length && this.indexes[this.head]! <= index) this.forgottenSum = this.sums[this.head++]!;
    // Drop the forgotten prefix now and then, not on every call (amortized O(1) per note).
    if (this.head > 1024 && this.head * 2 > this.indexes.length) {
      this.indexes = this.indexes.slice(this.head);
      this.sums = this.sums.slice(this.head);
      this.head = 0;
    }
  }

  /** A snapshot replaced the log: nothing before it is on disk any more. */
  reset(): void {
    this.indexes = [];
    this.sums = [];
    this.head = 0;
    this.forgottenSum = 0;
    this.lastIndex = 0;
  }

  /** The running sum through the last noted index at or below `index`. */
  private sumThrough(index: number): number {
    let lo = this.head;
    let hi = this.indexes.length - 1;
    if (hi < lo || this.indexes[lo]! > index) return this.forgottenSum;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.indexes[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.sums[lo]!;
  }
}
